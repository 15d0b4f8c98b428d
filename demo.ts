/**
 * `npm run demo`: the whole system on the local control plane.
 * Starts (or reuses) the control plane, installs the operator manifests (CRD, namespace, RBAC),
 * runs `kubemcp controller` in the background, applies the seeds' sample MCPServers, waits until
 * they are Ready (kwok runs their pods), prints `kubectl get mcps` and each one's children, and
 * leaves everything running. `npm run demo:down` (`tsx demo.ts down`) stops the demo's controller
 * by pid, then the cluster. The demo owns its processes: the cluster code knows nothing of them.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { App } from 'cdk8s';
import { parse, stringify } from 'yaml';
import { GROUP, PLURAL, VERSION } from './charts/api/schema.js';
import { OperatorChart } from './charts/operator.js';
import { loadSamples } from './charts/samples.js';
import { clusterDown, clusterUp, REPO_ROOT } from './cluster/index.js';

const say = (s: string) => process.stdout.write(`${s}\n`);

/** The demo's own runtime dir (git-ignored): its controller's pid file and log. */
const DEMO_DIR = join(REPO_ROOT, '.demo');
/** PID file of the `kubemcp controller` this demo starts; `demo.ts down` stops it. */
const CONTROLLER_PID_FILE = join(DEMO_DIR, 'controller.pid');

/** Whether `pid` runs our `node ... cli.ts controller` (a reused pid must not be taken for it). */
function isController(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.findIndex((a) => a.endsWith('cli.ts') || a.endsWith('cli.js'));
    return i >= 0 && argv[i + 1] === 'controller';
  } catch {
    return false;
  }
}

/** The pid in {@link CONTROLLER_PID_FILE} if it still runs our controller, else undefined. */
function runningController(): number | undefined {
  try {
    const pid = Number(readFileSync(CONTROLLER_PID_FILE, 'utf8'));
    return pid > 0 && isController(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** `demo.ts down`: stops the demo's controller by pid (SIGTERM, SIGKILL after 10 s), then the cluster. */
async function down(): Promise<void> {
  const pid = runningController();
  rmSync(CONTROLLER_PID_FILE, { force: true });
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 40 && isController(pid); i++) await new Promise((r) => setTimeout(r, 250));
    if (isController(pid)) process.kill(pid, 'SIGKILL');
    say(`stopped kubemcp controller (pid ${pid})`);
  }
  await clusterDown();
}

async function main(): Promise<void> {
  say('== control plane');
  const info = await clusterUp();
  say(`${info.reused ? 'reusing' : 'started'} the local control plane at ${info.server}`);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const ssa = (o: object) => objects.patch(k8s.loadYaml<k8s.KubernetesObject>(stringify(o)), undefined, undefined, 'kubemcp-demo', true, k8s.PatchStrategy.ServerSideApply);

  say('== operator manifests (CRD, namespace mcp-system, RBAC)');
  for (const o of new OperatorChart(new App({ outdir: '/dev/null' }), 'operator').toJson() as Array<{ kind: string; metadata: { name: string } }>) {
    if (o.kind === 'Deployment') continue; // the controller runs here as a local process (no image can be built on this machine)
    await ssa(o);
    say(`  applied ${o.kind}/${o.metadata.name}`);
  }
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (let i = 0; i < 60; i++) {
    const crd = await ext.readCustomResourceDefinition({ name: `${PLURAL}.${GROUP}` });
    if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
    await new Promise((r) => setTimeout(r, 500));
  }

  say('== controller');
  const runningPid = runningController();
  if (runningPid !== undefined) say(`reusing the running controller (pid ${runningPid})`);
  else {
    mkdirSync(DEMO_DIR, { recursive: true });
    const logFile = join(DEMO_DIR, 'kubemcp-controller.log');
    const out = openSync(logFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli.ts', 'controller', '--kubeconfig', info.kubeconfig, '--no-leader-elect', '--verify', 'off', '--health-port', '0', '--metrics-port', '0'], {
      cwd: new URL('.', import.meta.url).pathname,
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    child.unref();
    writeFileSync(CONTROLLER_PID_FILE, String(child.pid));
    say(`started kubemcp controller (pid ${child.pid}, log ${logFile})`);
  }

  say('== seed sample MCPServers');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const wanted: Array<{ name: string; namespace: string }> = [];
  const seen = new Set<string>();
  for (const s of loadSamples()) {
    const obj = parse(s.text) as { metadata: { name: string; namespace?: string } };
    obj.metadata.namespace ??= 'default';
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    // seed 001 and seed 003 both have a basic-mcpserver (and an advanced one): keep seed 001's, which the tutorial deploys.
    if (seen.has(key)) continue;
    seen.add(key);
    await core.createNamespace({ body: { metadata: { name: obj.metadata.namespace } } }).catch(() => undefined);
    await ssa(obj);
    wanted.push({ name: obj.metadata.name, namespace: obj.metadata.namespace });
    say(`  applied ${s.id} -> ${key}`);
  }

  say('== waiting for Ready (kwok runs the pods)');
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const deadline = Date.now() + 180_000;
  type Obj = { metadata: { name: string; namespace: string }; spec: { replicas?: number; transport?: string }; status?: { phase?: string; readyReplicas?: number; endpoint?: string } };
  let list: Obj[] = [];
  for (;;) {
    list = ((await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as { items: Obj[] }).items;
    const ready = wanted.filter((w) => list.find((o) => o.metadata.name === w.name && o.metadata.namespace === w.namespace)?.status?.phase === 'Ready');
    if (ready.length === wanted.length) break;
    if (Date.now() > deadline) throw new Error(`not Ready after 180 s: ${wanted.filter((w) => !ready.includes(w)).map((w) => `${w.namespace}/${w.name}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }

  say('\n$ kubectl get mcps -A');
  const rows = [['NAMESPACE', 'NAME', 'PHASE', 'READY', 'REPLICAS', 'TRANSPORT', 'ENDPOINT']];
  for (const o of list) rows.push([o.metadata.namespace, o.metadata.name, o.status?.phase ?? '', String(o.status?.readyReplicas ?? ''), String(o.spec.replicas ?? ''), o.spec.transport ?? '', o.status?.endpoint ?? '']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) say(r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd());

  const apps = kc.makeApiClient(k8s.AppsV1Api);
  for (const w of wanted) {
    const sel = `app.kubernetes.io/instance=${w.name}`;
    const [deps, svcs, cms, pods] = await Promise.all([
      apps.listNamespacedDeployment({ namespace: w.namespace, labelSelector: sel }),
      core.listNamespacedService({ namespace: w.namespace, labelSelector: sel }),
      core.listNamespacedConfigMap({ namespace: w.namespace, labelSelector: sel }),
      core.listNamespacedPod({ namespace: w.namespace, labelSelector: sel }),
    ]);
    say(`\n${w.namespace}/${w.name}:`);
    for (const d of deps.items) say(`  deployment/${d.metadata!.name}  ${d.status?.readyReplicas ?? 0}/${d.spec!.replicas} ready`);
    for (const s of svcs.items) say(`  service/${s.metadata!.name}  ${s.spec!.clusterIP}:${s.spec!.ports![0]!.port}`);
    for (const c of cms.items) say(`  configmap/${c.metadata!.name}  keys: ${Object.keys(c.data ?? {}).join(', ')}`);
    for (const p of pods.items) say(`  pod/${p.metadata!.name}  ${p.status?.phase} on ${p.spec?.nodeName}`);
  }

  say(`\nThe cluster and the controller keep running. Explore with (kubectl is built beside the control plane):
  export KUBECONFIG=${info.kubeconfig} PATH=${info.state.binDir}:$PATH
  kubectl get mcps -A; kubectl describe mcps basic-mcpserver; kubectl scale mcps basic-mcpserver --replicas=3
Stop everything with:
  npm run demo:down`);
}

(process.argv[2] === 'down' ? down() : main()).catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
