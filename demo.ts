/**
 * `npm run demo`: the whole system on the local cluster, as users run it (issue 8).
 *
 * 1. Starts (or reuses) the local cluster (cluster/: control plane, kwok's fake node and, where
 *    the machine allows, a real node with containerd).
 * 2. With a real node: builds (or finds cached) the images (`npm run images`: images/) and loads
 *    them into the node's containerd; installs the operator from `dist/manifests/operator.k8s.yaml`
 *    (`cdk8s synth` writes it, on every run) with only the controller's image changed to the local one, and waits
 *    until the controller runs as a pod in `mcp-system` (its ServiceAccount, leader election Lease).
 *    The namespace `mcp-system` is annotated to place its pods on the real node (cluster/realnode).
 *    Without a real node: the same manifests minus the Deployment, and `kubemcp controller` as a
 *    local process, as before.
 * 3. Applies the seeds' sample MCPServers (their images do not exist here: kwok's node runs their
 *    pods, so their state is kwok's, never a Ready on the real node).
 * 4. With a real node: one MCPServer `kube-mcp` in namespace `kubemcp-demo` running the kubemcp
 *    image itself (`kubemcp serve`, Streamable HTTP, read-only, ServiceAccount with read RBAC),
 *    Ready on the real node; an MCP SDK client calls it through `kubectl port-forward` and the gateway, with a token of
 *    ServiceAccount demo-caller (edit) bound to the server's status.url, and
 *    prints `tools/list` and one tool call's answer.
 *    Beside it, `everything`: npm's `@modelcontextprotocol/server-everything` (image
 *    localhost/kubemcp/everything), a stdio MCP server with `command`, served through the in-pod
 *    bridge; Ready and Verified by the operator pod, and its `tools/list` and an `echo` call printed
 *    through its Service.
 * 5. Prints `kubectl get mcps -A` and each one's children, and leaves everything running.
 *
 * `npm run demo:down` (`tsx demo.ts down`) stops the demo's local controller (if any) by pid, then
 * the cluster (which removes the pods). The demo owns its processes: the cluster code knows
 * nothing of them.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { GROUP, PLURAL, VERSION } from './charts/api/schema.js';
import { CONTROLLER_NAME, OPERATOR_NAMESPACE } from './charts/operator.js';
import { loadSamples } from './charts/samples.js';
import {
  clusterDown,
  clusterUp,
  poll,
  pollProgress,
  REAL_NODE_NAME,
  REPO_ROOT,
  realNodeNamespace,
  realNodeStatus,
} from './cluster/index.js';
import { ensureImagesLoaded } from './images/cluster.js';
import { EVERYTHING_BIN, EVERYTHING_IMAGE, KUBEMCP_IMAGE } from './images/images.js';
import { connectThroughPortForward } from './mcp-server/port-forward.js';

const say = (s: string) => process.stdout.write(`${s}\n`);

/** The demo's own runtime dir (git-ignored): its controller's pid file and log. */
const DEMO_DIR = join(REPO_ROOT, '.demo');
/** The operator manifest `cdk8s synth` writes (main.ts). */
const OPERATOR_MANIFEST = join(REPO_ROOT, 'dist', 'manifests', 'operator.k8s.yaml');
/** Namespace of the demo's own MCPServer running kubemcp serve, on the real node. */
const DEMO_NS = 'kubemcp-demo';
/** The demo's MCPServer running the kubemcp image. */
const SERVE_NAME = 'kube-mcp';
/** The demo's bridged stdio MCPServer: npm's server-everything behind the in-pod bridge. */
const STDIO_NAME = 'everything';
/** The demo's caller: a ServiceAccount bound to `edit` in DEMO_NS, which may call its MCPServers. */
const CALLER_SA = 'demo-caller';
/** The value issue 17's intruder read from default/app-settings; the demo fails if a caller it does not belong to reads it. */
const APP_SECRET = 'sk-live-123';
/** The namespace of the pod that plays the issue's intruder (no ServiceAccount token mounted). */
const INTRUDER_NS = 'intruder';
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

/** Polls `probe` until it returns a value, at most `timeoutMs` (once a second; cluster/process.ts `poll`). */
const until = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> =>
  poll(what, probe, { timeoutMs, intervalMs: 1000 });

/**
 * One line of where a pod is on its way to Ready, for the demo's progress-following waits:
 * not created, unscheduled (the scheduler's message), each container's waiting reason, running or
 * terminated state and restart count.
 */
function podProgress(p: k8s.V1Pod | undefined): string {
  if (!p) return 'not created yet';
  const sched = p.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (sched?.status !== 'True') return `${p.metadata?.name} not scheduled${sched?.message ? `: ${sched.message}` : ''}`;
  const containers = (p.status?.containerStatuses ?? []).map((c) => {
    const st = c.state?.waiting
      ? `waiting ${c.state.waiting.reason ?? ''}`
      : c.state?.terminated
        ? `terminated ${c.state.terminated.reason ?? ''} (exit ${c.state.terminated.exitCode})`
        : c.state?.running
          ? `running${c.ready ? ', ready' : ', not ready'}`
          : 'unknown';
    return `${c.name} ${st}, ${c.restartCount} restarts`;
  });
  return `${p.metadata?.name} on ${p.spec?.nodeName} ${p.status?.phase}${containers.length ? `: ${containers.join('; ')}` : ': no container started yet'}`;
}

/** Starts `kubemcp controller` as a detached local process (no real node), unless one runs. */
function startLocalController(kubeconfig: string): void {
  const runningPid = runningController();
  if (runningPid !== undefined) {
    say(`reusing the running local controller (pid ${runningPid})`);
    return;
  }
  mkdirSync(DEMO_DIR, { recursive: true });
  const logFile = join(DEMO_DIR, 'kubemcp-controller.log');
  const out = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'cli.ts',
      'controller',
      '--kubeconfig',
      kubeconfig,
      '--no-leader-elect',
      '--verify',
      'off',
      '--health-port',
      '0',
      '--metrics-port',
      '0',
    ],
    {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  child.unref();
  writeFileSync(CONTROLLER_PID_FILE, String(child.pid));
  say(`started kubemcp controller as a local process (pid ${child.pid}, log ${logFile})`);
}

async function main(): Promise<void> {
  say('== local cluster');
  const info = await clusterUp();
  say(`${info.reused ? 'reusing' : 'started'} the local cluster at ${info.server}`);
  const node = realNodeStatus();
  const real = node.available;
  say(
    real
      ? `real node ${REAL_NODE_NAME} is Ready (containerd, runc, CNI, kubelet, kube-proxy, kube-network-policies, CoreDNS)`
      : `no real node (${node.reason?.message ?? 'unknown reason'}): kwok's node only, the controller runs as a local process`,
  );
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const ssa = (o: object) =>
    objects.patch(
      k8s.loadYaml<k8s.KubernetesObject>(stringify(o)),
      undefined,
      undefined,
      'kubemcp-demo',
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);

  if (real) {
    say('\n== images (npm run images: buildah, cached; the first build takes about 10 minutes)');
    const set = ensureImagesLoaded();
    for (const i of [set.kubemcp, set.pause, set.everything])
      say(`  ${i.ref} ${i.built ? 'built' : 'cached'}, loaded into containerd`);
  }

  say(
    `\n== operator from ${OPERATOR_MANIFEST.replace(`${REPO_ROOT}/`, '')}${real ? ` (image -> ${KUBEMCP_IMAGE})` : ' (without its Deployment)'}`,
  );
  // Synthesized on every run, so the operator deployed is the chart as it is now (a manifest left
  // by an earlier run would install an older controller command, flags or RBAC).
  const r = spawnSync('npx', ['cdk8s', 'synth', '--no-check-upgrade'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error('cdk8s synth failed (npm run synth)');
  const docs = parseAllDocuments(readFileSync(OPERATOR_MANIFEST, 'utf8'))
    .map((d) => d.toJSON() as k8s.KubernetesObject | null)
    .filter((o): o is k8s.KubernetesObject => o !== null);
  if (real) {
    // Placement only: pods created in mcp-system go to the real node (PodNodeSelector annotation).
    await core.createNamespace({ body: realNodeNamespace(OPERATOR_NAMESPACE) }).catch(() => undefined);
    await core.patchNamespace(
      {
        name: OPERATOR_NAMESPACE,
        body: { metadata: { annotations: realNodeNamespace(OPERATOR_NAMESPACE).metadata!.annotations } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const pid = runningController();
    if (pid !== undefined) {
      process.kill(pid, 'SIGTERM');
      rmSync(CONTROLLER_PID_FILE, { force: true });
      say(`stopped the earlier demo's local controller (pid ${pid}): the operator pod takes over`);
    }
  }
  for (const o of docs) {
    if (o.kind === 'Deployment') {
      if (!real) continue;
      // The only changes to the manifest: the controller's image, and the same image for the
      // bridge of bridged stdio MCPServers (the chart passes its own image as --bridge-image).
      const c = (o as k8s.V1Deployment).spec!.template.spec!.containers[0]!;
      c.image = KUBEMCP_IMAGE;
      c.args = (c.args ?? []).map((a) => (a.startsWith('--bridge-image=') ? `--bridge-image=${KUBEMCP_IMAGE}` : a));
    }
    await ssa(o);
    say(`  applied ${o.kind}/${o.metadata?.name}`);
  }
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  await until('the CRD Established', 60_000, async () => {
    const crd = await ext.readCustomResourceDefinition({ name: `${PLURAL}.${GROUP}` });
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
  });

  if (real) {
    // Waits that follow progress (issue 20): they fail only when nothing moves for 3 minutes
    // (a slow machine keeps waiting), naming what they waited on and the last state seen.
    const progress = { idleMs: 180_000, maxMs: 20 * 60_000, intervalMs: 1000, onState: (s: string) => say(`  ${s}`) };
    const operatorPod = async (): Promise<k8s.V1Pod | undefined> =>
      (
        await core.listNamespacedPod({
          namespace: OPERATOR_NAMESPACE,
          labelSelector: 'app.kubernetes.io/name=kubemcp,app.kubernetes.io/component=controller',
        })
      ).items.find((p) => !p.metadata?.deletionTimestamp);
    const pod = await pollProgress(
      'the operator pod Ready in mcp-system',
      async () => {
        const p = await operatorPod();
        if (p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          return { done: p, state: '' };
        return { state: `operator pod: ${podProgress(p)}` };
      },
      progress,
    );
    const lease = await pollProgress(
      'the leader-election Lease',
      async () => {
        const l = await kc
          .makeApiClient(k8s.CoordinationV1Api)
          .readNamespacedLease({ name: CONTROLLER_NAME, namespace: OPERATOR_NAMESPACE })
          .catch(() => undefined);
        if (l?.spec?.holderIdentity?.startsWith(pod.metadata!.name!)) return { done: l, state: '' };
        const p = await operatorPod();
        return {
          state: `Lease ${CONTROLLER_NAME}: ${l ? `held by ${l.spec?.holderIdentity ?? 'nobody'}` : 'not created yet'}; operator pod: ${podProgress(p)}`,
        };
      },
      progress,
    );
    say(
      `operator pod ${OPERATOR_NAMESPACE}/${pod.metadata!.name} Ready on ${pod.spec?.nodeName} (image ${pod.spec?.containers[0]?.image}, ServiceAccount ${pod.spec?.serviceAccountName}), holds Lease ${CONTROLLER_NAME} as ${lease.spec?.holderIdentity}`,
    );
  } else {
    say('\n== controller');
    startLocalController(info.kubeconfig);
  }

  say('\n== seed sample MCPServers (their images do not exist here: kwok runs their pods)');
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

  if (real) {
    say(
      `\n== MCPServer ${DEMO_NS}/${SERVE_NAME}: the kubemcp image itself (kubemcp serve, read-only) on the real node`,
    );
    await core.createNamespace({ body: realNodeNamespace(DEMO_NS) }).catch(() => undefined);
    // kube-mcp acts as its caller (spec.auth.impersonate, issue 17): its own ServiceAccount gets no
    // read right at all, only the impersonation binding the operator makes for it.
    await ssa({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SERVE_NAME, namespace: DEMO_NS } });
    // What issue 17's intruder read: a ConfigMap of another namespace the demo's caller may not see.
    await ssa({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'app-settings', namespace: 'default' },
      data: { api_key: APP_SECRET },
    });
    // The demo's caller (issue 17): `edit` in the namespace may call its MCPServers (the operator's
    // callers' ClusterRole is aggregated into edit); its tokens are bound to each server's status.url.
    await ssa({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: CALLER_SA, namespace: DEMO_NS } });
    await ssa({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${CALLER_SA}-edit`, namespace: DEMO_NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'ServiceAccount', name: CALLER_SA, namespace: DEMO_NS }],
    });
    await ssa({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'MCPServer',
      metadata: { name: SERVE_NAME, namespace: DEMO_NS },
      spec: {
        image: KUBEMCP_IMAGE,
        transport: 'streamable-http',
        port: 3001,
        serviceAccount: SERVE_NAME,
        config: { readOnly: 'true' },
        auth: { impersonate: true },
      },
    });
    wanted.push({ name: SERVE_NAME, namespace: DEMO_NS });
    say(
      `  applied MCPServer ${DEMO_NS}/${SERVE_NAME} (spec.auth.impersonate: it acts as each caller; its ServiceAccount ${SERVE_NAME} may only impersonate)`,
    );

    say(
      `\n== MCPServer ${DEMO_NS}/${STDIO_NAME}: a stdio MCP server (npm's server-everything) behind the in-pod bridge`,
    );
    const stdioSpec = {
      image: EVERYTHING_IMAGE,
      transport: 'stdio',
      port: 3001,
      command: [EVERYTHING_BIN],
      args: ['stdio'],
    };
    await ssa({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'MCPServer',
      metadata: { name: STDIO_NAME, namespace: DEMO_NS },
      spec: stdioSpec,
    });
    wanted.push({ name: STDIO_NAME, namespace: DEMO_NS });
    say(`  applied MCPServer ${DEMO_NS}/${STDIO_NAME}: ${JSON.stringify(stdioSpec)}`);
  }

  // With the real node, the operator verifies every MCPServer with an MCP handshake: only the
  // kubemcp one can be Ready; the seed samples end in an honest state (on kwok nothing answers
  // the handshake; in mcp-system, a real-node namespace, their image does not exist), which the
  // demo waits for and prints. Without it (local controller, --verify off) all of them turn Ready.
  const mustBeReady = real
    ? wanted.filter((w) => (w.name === SERVE_NAME || w.name === STDIO_NAME) && w.namespace === DEMO_NS)
    : wanted;
  say(
    `\n== waiting for ${mustBeReady.map((w) => `${w.namespace}/${w.name}`).join(', ')} Ready${real ? ', and a Ready condition with its reason on the others' : ''}`,
  );
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  type Cond = { type: string; status: string; reason?: string };
  type Obj = {
    metadata: { name: string; namespace: string };
    spec: { replicas?: number; transport?: string };
    status?: {
      phase?: string;
      readyReplicas?: number;
      endpoint?: string;
      conditions?: Cond[];
      tools?: { count: number };
    };
  };
  let list: Obj[] = [];
  const find = (w: { name: string; namespace: string }) =>
    list.find((o) => o.metadata.name === w.name && o.metadata.namespace === w.namespace);
  await until('the MCPServers settled', 300_000, async () => {
    list = (
      (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as { items: Obj[] }
    ).items;
    const notReady = mustBeReady.filter((w) => find(w)?.status?.phase !== 'Ready');
    const unsettled = wanted.filter(
      (w) =>
        !find(w)?.status?.conditions?.some(
          (c) => c.type === 'Ready' && c.reason && c.reason !== 'Verifying' && c.reason !== 'WaitingForPods',
        ),
    );
    if (notReady.length || unsettled.length)
      throw new Error(
        `not Ready yet: ${notReady.map((w) => `${w.namespace}/${w.name}`).join(', ') || '-'}; no settled status yet: ${unsettled.map((w) => `${w.namespace}/${w.name}`).join(', ') || '-'}`,
      );
    return true;
  });

  say('\n$ kubectl get mcps -A');
  try {
    const { stdout } = await promisify(execFile)(
      join(info.state.binDir, 'kubectl'),
      ['--kubeconfig', info.kubeconfig, 'get', 'mcps', '-A'],
      { timeout: 60_000 },
    );
    say(stdout.trimEnd());
  } catch (err) {
    say(`(kubectl failed: ${(err as Error).message})`);
  }

  for (const w of wanted) {
    const sel = `app.kubernetes.io/instance=${w.name}`;
    const [deps, svcs, cms, pods] = await Promise.all([
      apps.listNamespacedDeployment({ namespace: w.namespace, labelSelector: sel }),
      core.listNamespacedService({ namespace: w.namespace, labelSelector: sel }),
      core.listNamespacedConfigMap({ namespace: w.namespace, labelSelector: sel }),
      core.listNamespacedPod({ namespace: w.namespace, labelSelector: sel }),
    ]);
    say(`\n${w.namespace}/${w.name}:`);
    for (const d of deps.items)
      say(`  deployment/${d.metadata!.name}  ${d.status?.readyReplicas ?? 0}/${d.spec!.replicas} ready`);
    for (const s of svcs.items) say(`  service/${s.metadata!.name}  ${s.spec!.clusterIP}:${s.spec!.ports![0]!.port}`);
    for (const c of cms.items) say(`  configmap/${c.metadata!.name}  keys: ${Object.keys(c.data ?? {}).join(', ')}`);
    for (const p of pods.items) say(`  pod/${p.metadata!.name}  ${p.status?.phase} on ${p.spec?.nodeName}`);
  }

  if (real) {
    const kubectlBin = join(info.state.binDir, 'kubectl');
    /** An MCP client of `name` through `kubectl port-forward`, as the demo's caller (no token: `anonymous`). */
    const connect = async (name: string, anonymous = false) => {
      const url = `http://${name}.${DEMO_NS}.svc.cluster.local:3001/mcp`;
      const token = anonymous
        ? undefined
        : (
            await core.createNamespacedServiceAccountToken({
              name: CALLER_SA,
              namespace: DEMO_NS,
              body: { spec: { audiences: [url], expirationSeconds: 600 } },
            })
          ).status!.token;
      return connectThroughPortForward({
        kubectl: kubectlBin,
        kubeconfig: info.kubeconfig,
        namespace: DEMO_NS,
        name,
        port: 3001,
        token,
      });
    };
    say(
      `\n== MCP client (ServiceAccount ${DEMO_NS}/${CALLER_SA}, token for audience status.url) -> kubectl port-forward svc/${SERVE_NAME} -> gateway (TokenReview, SubjectAccessReview) -> kubemcp serve`,
    );
    const forwarded = await until('the MCP handshake through the gateway', 60_000, () => connect(SERVE_NAME));
    const client = forwarded.client;
    try {
      const tools = (await client.listTools()).tools;
      say(`tools/list: ${tools.length} tools (read-only)`);
      for (const t of tools) say(`  ${t.name.padEnd(22)} ${(t.description ?? '').split('. ')[0]!.slice(0, 90)}`);
      // kube-mcp acts as the caller: RBAC decides, per caller (demo-caller has edit in DEMO_NS only).
      const show = async (name: string, args: Record<string, unknown>) => {
        say(`\ntools/call ${name} ${JSON.stringify(args)}:`);
        const r = await client.callTool({ name, arguments: args });
        const text = (r.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? '').join('\n');
        say(text.replace(/^/gm, '  '));
        return { isError: !!r.isError, text };
      };
      await show('list-resources', { kind: 'pods', namespace: DEMO_NS });
      const all = await show('list-resources', { kind: 'configmaps', allNamespaces: true });
      const other = await show('get-resource', { kind: 'configmap', namespace: 'default', name: 'app-settings' });
      for (const r of [all, other])
        if (!r.isError || r.text.includes(APP_SECRET))
          throw new Error(`kube-mcp answered beyond its caller's RBAC: ${r.text.slice(0, 300)}`);
      say(`  (refused by the apiserver as ${CALLER_SA}: kube-mcp sent the call with Impersonate-User, not as itself)`);
    } finally {
      await forwarded.close();
    }
    const intruder = await connect(SERVE_NAME, true).then(
      async (f) => (await f.close(), 'connected (unexpected)'),
      (e: Error) => e.message.split('\n')[0]!.slice(0, 200),
    );
    say(`\nthe same without a token (an intruder): ${intruder}`);

    // Issue 17's intruder: a pod of another namespace, without a token, reaching for the Service
    // and for the server container's own port on the pod IP (around the gateway).
    say(`\n== a pod in namespace ${INTRUDER_NS} (no token mounted) -> ${SERVE_NAME}`);
    await core.createNamespace({ body: realNodeNamespace(INTRUDER_NS) }).catch(() => undefined);
    await ssa({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'intruder', namespace: INTRUDER_NS },
      spec: {
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'main',
            image: KUBEMCP_IMAGE,
            imagePullPolicy: 'IfNotPresent',
            command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
            resources: { requests: { cpu: '10m', memory: '32Mi' } },
            securityContext: { runAsNonRoot: true, runAsUser: 65534, allowPrivilegeEscalation: false },
          },
        ],
      },
    });
    await until('the intruder pod Ready', 120_000, async () => {
      const p = await core.readNamespacedPod({ namespace: INTRUDER_NS, name: 'intruder' });
      return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') || undefined;
    });
    /** `HTTP <status>` of a POST from the intruder pod to `url`, or `ERR <code>` (no answer within 4 s). */
    const fromIntruder = async (url: string) => {
      const script = `fetch(${JSON.stringify(url)}, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list-resources', arguments: { kind: 'configmaps', allNamespaces: true } } }), signal: AbortSignal.timeout(4000) })
        .then((r) => process.stdout.write('HTTP ' + r.status), (e) => process.stdout.write('ERR ' + (e.cause?.code ?? e.name)))`;
      const r = await promisify(execFile)(
        kubectlBin,
        ['--kubeconfig', info.kubeconfig, '-n', INTRUDER_NS, 'exec', 'intruder', '--', 'node', '-e', script],
        { timeout: 30_000 },
      );
      return r.stdout.trim();
    };
    const servePod = (
      await core.listNamespacedPod({ namespace: DEMO_NS, labelSelector: `app.kubernetes.io/instance=${SERVE_NAME}` })
    ).items.find((p) => p.status?.podIP && !p.metadata?.deletionTimestamp);
    const viaService = await fromIntruder(`http://${SERVE_NAME}.${DEMO_NS}.svc.cluster.local:3001/mcp`);
    say(
      `  tools/call list-resources via the Service: ${viaService}${viaService === 'HTTP 401' ? ' (the gateway: no bearer token)' : ''}`,
    );
    const around = await fromIntruder(`http://${servePod?.status?.podIP}:3001/mcp`);
    say(
      `  the same to the server container's own port on the pod IP (${servePod?.status?.podIP}:3001): ${around}${around === 'ERR TimeoutError' ? ` (dropped: NetworkPolicy ${DEMO_NS}/${SERVE_NAME} admits only the gateway's port)` : ''}`,
    );
    if (viaService !== 'HTTP 401' || !around.startsWith('ERR '))
      throw new Error(`the intruder pod was not refused (Service: ${viaService}, server port: ${around})`);
    say(`  by hand: kubectl -n ${DEMO_NS} port-forward svc/${SERVE_NAME} 3001 &
           TOKEN=$(kubectl -n ${DEMO_NS} create token ${CALLER_SA} --audience http://${SERVE_NAME}.${DEMO_NS}.svc.cluster.local:3001/mcp)
           # an MCP client on http://127.0.0.1:3001/mcp with the header "Authorization: Bearer $TOKEN"`);
    const gatewayPod = (
      await core.listNamespacedPod({ namespace: DEMO_NS, labelSelector: `app.kubernetes.io/instance=${SERVE_NAME}` })
    ).items.find((p) => p.status?.phase === 'Running');
    if (gatewayPod) {
      say(`\naudit lines (kubectl -n ${DEMO_NS} logs ${gatewayPod.metadata!.name} -c mcp-gateway):`);
      const logs = await promisify(execFile)(
        kubectlBin,
        ['--kubeconfig', info.kubeconfig, '-n', DEMO_NS, 'logs', gatewayPod.metadata!.name!, '-c', 'mcp-gateway'],
        { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
      ).then(
        (r) => r.stdout,
        () => '',
      );
      for (const l of logs
        .split('\n')
        .filter((x) => x.includes('"audit":"mcp"'))
        .slice(-5)) {
        const a = JSON.parse(l) as Record<string, unknown>;
        say(`  ${a.user ?? '(no identity)'} ${a.method}${a.tool ? ` ${a.tool}` : ''} -> ${a.status} ${a.outcome}`);
      }
    }

    say(
      `\n== MCP client -> Service ${DEMO_NS}/${STDIO_NAME} (kubectl port-forward, caller's token) -> mcp-bridge sidecar (gateway) -> FIFOs -> server-everything (stdio)`,
    );
    const obj = list.find((o) => o.metadata.name === STDIO_NAME && o.metadata.namespace === DEMO_NS);
    const verified = obj?.status?.conditions?.find((c) => c.type === 'Verified');
    say(
      `status: phase ${obj?.status?.phase}, Verified ${verified?.status} (${verified?.reason}), ${obj?.status?.tools?.count ?? '?'} tools, endpoint ${obj?.status?.endpoint}`,
    );
    const stdioForward = await until('the MCP handshake through the bridged Service', 60_000, () =>
      connect(STDIO_NAME),
    );
    const stdio = stdioForward.client;
    try {
      const v = stdio.getServerVersion();
      const tools = (await stdio.listTools()).tools;
      say(`initialize: ${v?.name} ${v?.version} (answered by the bridge from the process's one initialize)`);
      say(`tools/list: ${tools.length} tools`);
      for (const t of tools) say(`  ${t.name.padEnd(32)} ${(t.description ?? '').split('. ')[0]!.slice(0, 80)}`);
      const r = await stdio.callTool({ name: 'echo', arguments: { message: 'hello through the bridge' } });
      say(
        `\ntools/call echo {"message": "hello through the bridge"}: ${(r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('')}`,
      );
    } finally {
      await stdioForward.close();
    }
  }

  say(`\nThe cluster${real ? ' and the operator pod keep' : ' and the controller keep'} running. Explore with (kubectl is built beside the control plane):
  export KUBECONFIG=${info.kubeconfig} PATH=${info.state.binDir}:$PATH
  kubectl get mcps -A; kubectl get pods -A -o wide; kubectl -n ${OPERATOR_NAMESPACE} logs deploy/${CONTROLLER_NAME}
  kubectl describe mcps basic-mcpserver; kubectl scale mcps basic-mcpserver --replicas=3
Stop everything with:
  npm run demo:down`);
}

(process.argv[2] === 'down' ? down() : main()).catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
