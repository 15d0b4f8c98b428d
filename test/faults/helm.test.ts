/**
 * The operator's Helm chart (issue 20; charts/helm.ts, written by `npm run synth`), with helm
 * v4.3.1 built like the cluster's other binaries (cluster/tools/helm): `helm lint`; `helm template`
 * with the default values gives exactly the objects of the OperatorChart construct that writes
 * dist/manifests/operator.k8s.yaml (the Namespace aside: Helm installs into `--namespace`); values
 * reach the controller's arguments; and against the local cluster's apiserver `helm install`,
 * `helm upgrade` (a changed value rolls the controller) and `helm uninstall` (the CRD stays, as
 * Helm's convention for CRDs says).
 *
 * Run alone after the other suites (test/run.ts runs test/faults/ alone): the chart's
 * cluster-scoped objects (ClusterRoles, the ClusterRoleBinding) have fixed names that the other
 * suites and a running demo use too, so the release takes them over (`--take-ownership`) and the
 * test puts back, as they were, those that existed before it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { App } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { KUBECONFIG_PATH, readState } from '../../cluster/index.js';
import { HELM_CHART_NAME, helmChartFiles } from '../../charts/helm.js';
import { CONTROLLER_NAME, OperatorChart } from '../../charts/operator.js';
import { apply, createNamespace, deleteTestNamespace, kubeConfig, waitFor } from '../kube.js';

const run = promisify(execFile);
const kc = kubeConfig();
const apps = kc.makeApiClient(k8s.AppsV1Api);
const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
type Obj = k8s.KubernetesObject & { metadata: k8s.V1ObjectMeta };
/** The controller Deployment's fields the tests read. */
type Dep = Obj & {
  spec: {
    template: {
      spec: { containers: Array<{ args: string[]; image: string; resources: { limits?: Record<string, string> } }> };
    };
  };
};
const deployment = (m: Map<string, Obj>) => [...m.values()].find((o) => o.kind === 'Deployment') as Dep;

let helmBin: string;
let chartDir: string;
let tmp: string;
let releaseNs: string;
let watched: string;
/** Cluster-scoped objects of the chart that existed before the test (put back afterwards). */
const before: Obj[] = [];

const helm = async (...args: string[]) =>
  (
    await run(helmBin, args, {
      env: {
        ...process.env,
        KUBECONFIG: process.env.KUBECONFIG ?? KUBECONFIG_PATH,
        HELM_CACHE_HOME: tmp,
        HELM_CONFIG_HOME: tmp,
        HELM_DATA_HOME: tmp,
      },
      maxBuffer: 1 << 24,
      timeout: 180_000,
    })
  ).stdout;

/** Objects of a multi-document YAML text, by `kind/namespace/name`. */
function byKey(text: string): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const d of parseAllDocuments(text)) {
    const o = d.toJS() as Obj | null;
    if (o?.kind) out.set(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
  }
  return out;
}

const controllerArgs = (text: string) => deployment(byKey(text)).spec.template.spec.containers[0]!.args;

beforeAll(async () => {
  const bin = readState()?.binDir;
  helmBin = bin ? path.join(bin, 'helm') : '';
  if (!existsSync(helmBin))
    throw new Error(`helm is not built at ${helmBin || '<no cluster state>'}: run bash cluster/build.sh`);
  tmp = mkdtempSync(path.join(tmpdir(), 'kubemcp-helm-'));
  chartDir = path.join(tmp, HELM_CHART_NAME);
  for (const [file, text] of Object.entries(helmChartFiles())) {
    const p = path.join(chartDir, file);
    await run('mkdir', ['-p', path.dirname(p)]);
    writeFileSync(p, text);
  }
  for (const o of new OperatorChart(new App({ outdir: '/dev/null' }), 'operator').toJson() as Obj[]) {
    if (o.metadata.namespace || o.kind === 'Namespace' || o.kind === 'CustomResourceDefinition') continue;
    const found = await objects.read(o as never).catch(() => undefined);
    if (found) before.push(found as Obj);
  }
  releaseNs = await createNamespace(kc, 'helm-op');
  watched = await createNamespace(kc, 'helm-watched');
});

afterAll(async () => {
  await helm('uninstall', 'kubemcp', '-n', releaseNs, '--wait', '--timeout', '60s').catch(() => undefined);
  // Put back the cluster-scoped objects other suites (or a running demo) had before.
  for (const o of before) {
    const { name, labels, annotations } = o.metadata;
    await apply(objects, {
      ...o,
      metadata: {
        name,
        labels,
        annotations: Object.fromEntries(
          Object.entries(annotations ?? {}).filter(([k]) => !k.startsWith('meta.helm.sh/')),
        ),
      },
    }).catch(() => undefined);
  }
  for (const ns of [releaseNs, watched]) if (ns) await deleteTestNamespace(kc, ns);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the Helm chart of the operator', () => {
  it('passes helm lint', async () => {
    expect(await helm('lint', chartDir)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('renders with its default values exactly the OperatorChart objects of dist/manifests/operator.k8s.yaml (without the Namespace)', async () => {
    const rendered = byKey(await helm('template', 'kubemcp', chartDir, '--namespace', 'mcp-system', '--include-crds'));
    const manifests = byKey(
      (new OperatorChart(new App({ outdir: '/dev/null' }), 'operator').toJson() as Obj[])
        .filter((o) => o.kind !== 'Namespace')
        .map((o) => JSON.stringify(o))
        .join('\n---\n'),
    );
    expect([...rendered.keys()].sort()).toEqual([...manifests.keys()].sort());
    for (const [key, o] of manifests) expect({ key, o: rendered.get(key) }).toEqual({ key, o });
  });

  it('carries the values into the controller: image, gateway image, watched namespace, leader election, log level, resources', async () => {
    const text = await helm(
      'template',
      'kubemcp',
      chartDir,
      '--namespace',
      'ops',
      '--set',
      'image.repository=registry.example/kubemcp,image.tag=9.9.9,gatewayImage=registry.example/gw:1',
      '--set',
      'watchNamespace=team-a,leaderElection=false,logLevel=debug,replicas=1',
      '--set',
      'resources.limits.memory=300Mi',
    );
    const dep = deployment(byKey(text));
    const c = dep.spec.template.spec.containers[0]!;
    expect(dep.metadata.namespace).toBe('ops');
    expect(c.image).toBe('registry.example/kubemcp:9.9.9');
    expect(c.args).toEqual(
      expect.arrayContaining([
        '--no-leader-elect',
        '--leader-election-namespace=ops',
        '--bridge-image=registry.example/gw:1',
        '--log-level=debug',
        '--namespace=team-a',
      ]),
    );
    expect(c.resources.limits).toEqual({ cpu: '500m', memory: '300Mi' });
    expect(controllerArgs(await helm('template', 'kubemcp', chartDir))).not.toContain('--namespace=team-a');
  });

  it('installs, upgrades (a changed value rolls the controller) and uninstalls, leaving the CRD', async () => {
    await helm(
      'install',
      'kubemcp',
      chartDir,
      '-n',
      releaseNs,
      '--take-ownership',
      '--force-conflicts',
      '--set',
      `watchNamespace=${watched}`,
    );
    const dep = await waitFor(
      'the controller Deployment available',
      async () => {
        const d = await apps.readNamespacedDeployment({ name: CONTROLLER_NAME, namespace: releaseNs });
        return (d.status?.availableReplicas ?? 0) >= 1 ? d : undefined;
      },
      180_000,
      1000,
    );
    expect(dep.spec!.template.spec!.containers[0]!.args).toEqual(
      expect.arrayContaining(['--leader-elect', `--namespace=${watched}`, `--leader-election-namespace=${releaseNs}`]),
    );
    const gen = dep.metadata!.generation!;
    await helm(
      'upgrade',
      'kubemcp',
      chartDir,
      '-n',
      releaseNs,
      '--force-conflicts',
      '--reuse-values',
      '--set',
      'logLevel=debug',
    );
    const rolled = await waitFor(
      'the upgraded controller rolled out',
      async () => {
        const d = await apps.readNamespacedDeployment({ name: CONTROLLER_NAME, namespace: releaseNs });
        return (d.metadata!.generation ?? 0) > gen &&
          d.status?.observedGeneration === d.metadata!.generation &&
          (d.status?.updatedReplicas ?? 0) >= 1
          ? d
          : undefined;
      },
      180_000,
      1000,
    );
    expect(rolled.spec!.template.spec!.containers[0]!.args).toContain('--log-level=debug');
    const sets = await apps.listNamespacedReplicaSet({ namespace: releaseNs });
    expect(sets.items.length).toBeGreaterThanOrEqual(2); // a new ReplicaSet: the pods rolled
    expect(await helm('status', 'kubemcp', '-n', releaseNs)).toMatch(/REVISION: 2/);
    await helm('uninstall', 'kubemcp', '-n', releaseNs, '--wait', '--timeout', '120s');
    await waitFor(
      'the controller Deployment deleted',
      async () =>
        apps.readNamespacedDeployment({ name: CONTROLLER_NAME, namespace: releaseNs }).then(
          () => false,
          (e: { code?: number }) => e.code === 404,
        ),
      120_000,
      1000,
    );
    // Helm never deletes what crds/ installed.
    await expect(ext.readCustomResourceDefinition({ name: 'mcpservers.mcp.example.com' })).resolves.toBeDefined();
  }, 600_000);
});
