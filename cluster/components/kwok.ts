/**
 * kwok: plays the kubelet for the fake node {@link NODE_NAME}, so Deployments, ReplicaSets and
 * Pods go through the real controllers and scheduler and their pods become Running/Ready without
 * any container runtime. kwok also serves pod logs (a fixed, CRI-formatted file) through the
 * apiserver's usual `pods/log` path. Stages and CRDs come from sigs.k8s.io/kwok@v0.8.0.
 * Reference: https://kwok.sigs.k8s.io/docs/user/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  type V1CustomResourceDefinition,
  type V1Node,
} from '@kubernetes/client-node';
import {
  COMPONENT_READY_MS,
  CRD_ESTABLISHED_MS,
  CRDS_DIR,
  FAKE_POD_LOG_PATH,
  KWOK_NODE_ANNOTATION,
  KWOK_WORK_DIR,
  LOOPBACK,
  NODE_LEASE_SECONDS,
  NODE_NAME,
  NODE_READY_MS,
  POD_CIDR,
  STAGES_DIR,
} from '../paths.js';
import { pki, writeKubeconfig } from '../pki.js';
import { createIdempotently, loadYamlDir, nodeIsReady } from '../kube.js';
import { waitFor } from '../process.js';
import type { ProcessRecord } from '../state.js';
import { waitHealthz, type StartContext } from './context.js';

/** Environment kwok runs with: its own work dir, so a user's `~/.kwok/kwok.yaml` is never read. */
export const KWOK_ENV = { KWOK_WORKDIR: KWOK_WORK_DIR };

/**
 * Applies kwok's CRDs and stages, starts kwok and creates node {@link NODE_NAME}; returns at once
 * with kwok's record and a promise that resolves when kwok's /healthz answers 200 and the node is
 * Ready (rejects naming kwok's log).
 */
export async function startKwok(
  ctx: StartContext,
  kc: KubeConfig,
): Promise<{ proc: ProcessRecord; ready: Promise<void> }> {
  fs.mkdirSync(KWOK_WORK_DIR, { recursive: true });
  const kubeconfig = pki('kwok.kubeconfig');
  writeKubeconfig(kubeconfig, ctx.server, 'admin', 'kwok');
  // CRDs and stages first (with --enable-crds=Stage it reads stages only from the API).
  await applyKwokResources(kc);
  ctx.log('applied kwok CRDs, stages and ClusterLogs');
  const port = ctx.ports.kwok;
  const proc = await ctx.launch(
    'kwok',
    path.join(ctx.binDir, 'kwok'),
    [
      `--kubeconfig=${kubeconfig}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
      '--enable-crds=Stage,Logs,ClusterLogs',
      `--cidr=${POD_CIDR}`,
      `--node-ip=${LOOPBACK}`,
      // The node's Hostname address. Must not be empty: node-initialize then writes
      // `addresses: null` whenever it re-runs (e.g. after the node went NotReady), wiping the
      // InternalIP the apiserver needs for pods/log.
      `--node-name=${NODE_NAME}`,
      `--node-port=${port}`,
      `--server-address=${LOOPBACK}:${port}`,
      `--tls-cert-file=${pki('loopback-serving.crt')}`,
      `--tls-private-key-file=${pki('loopback-serving.key')}`,
      // kwok's own default is 0 (no Lease). Without a renewed Lease the node-lifecycle
      // controller marks the node Unknown ~50 s after start (taints it, and kwok's
      // node-initialize stage then rewrites its status), since node-heartbeat-with-lease only
      // refreshes the status every ~10-20 min.
      `--node-lease-duration-seconds=${NODE_LEASE_SECONDS}`,
    ],
    KWOK_ENV,
  );
  const core = kc.makeApiClient(CoreV1Api);
  await createIdempotently(`Node ${NODE_NAME}`, () => core.createNode({ body: fakeNode() }));
  const ready = Promise.all([
    waitHealthz(
      'kwok',
      `https://${LOOPBACK}:${port}/healthz`,
      fs.readFileSync(pki('ca.crt')),
      COMPONENT_READY_MS,
      proc,
    ).then(() => ctx.log('kwok is healthy')),
    waitFor(
      'kwok',
      `Node ${NODE_NAME} to become Ready`,
      NODE_READY_MS,
      async () => (nodeIsReady(await core.readNode({ name: NODE_NAME })) ? true : undefined),
      proc,
    ).then(() => ctx.log(`node ${NODE_NAME} is Ready`)),
  ]).then(() => undefined);
  return { proc, ready };
}

/**
 * Applies kwok's CRDs ({@link CRDS_DIR}), waits until they are Established, then creates the
 * Stage objects ({@link STAGES_DIR}) and a ClusterLogs object serving {@link FAKE_POD_LOG_PATH}
 * as every container's log. Custom objects are created through their plural REST path (taken
 * from the CRDs), which is served as soon as the CRD is Established, without waiting for
 * discovery to catch up.
 * @throws Error naming the object that could not be created in time.
 */
async function applyKwokResources(kc: KubeConfig): Promise<void> {
  const apiext = kc.makeApiClient(ApiextensionsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const crds = loadYamlDir(CRDS_DIR) as V1CustomResourceDefinition[];
  for (const crd of crds) {
    await createIdempotently(`CRD ${crd.metadata?.name}`, () => apiext.createCustomResourceDefinition({ body: crd }));
  }
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    await waitFor('kube-apiserver', `CRD ${name} to be Established`, CRD_ESTABLISHED_MS, async () => {
      const live = await apiext.readCustomResourceDefinition({ name });
      return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }

  /** Creates a cluster-scoped custom object of one of the CRDs above. */
  const createCustom = async (obj: KubernetesObject): Promise<void> => {
    const [group = '', version = ''] = (obj.apiVersion ?? '').split('/');
    const crd = crds.find((c) => c.spec.group === group && c.spec.names.kind === obj.kind);
    if (!crd || crd.spec.scope !== 'Cluster')
      throw new Error(`no cluster-scoped CRD in ${CRDS_DIR} for ${obj.apiVersion} ${obj.kind}`);
    await createIdempotently(`${obj.kind}/${obj.metadata?.name}`, () =>
      custom.createClusterCustomObject({ group, version, plural: crd.spec.names.plural, body: obj }),
    );
  };
  for (const stage of loadYamlDir(STAGES_DIR)) await createCustom(stage);
  fs.writeFileSync(
    FAKE_POD_LOG_PATH,
    `${new Date().toISOString()} stdout F kwok: this container is simulated, it has no real output\n`,
  );
  await createCustom({
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'ClusterLogs',
    metadata: { name: 'default' },
    spec: { logs: [{ logsFile: FAKE_POD_LOG_PATH, follow: false }] },
  } as KubernetesObject);
}

/**
 * The fake node: annotated for kwok, labelled `type: kwok`, sized for scale tests: 2000 CPUs,
 * 4Ti memory, 10000 pods, i.e. 10,000 pods at the largest default request (streamable-http
 * 200m/256Mi), so the controller benchmark (4 x 1,000 MCPServers' pods at once: controller, two
 * raw appliers, a peer operator) measures the controller and not the scheduler refusing pods.
 * Node status may be set on create; kwok's node-initialize stage keeps capacity/allocatable.
 */
function fakeNode(): V1Node {
  const resources = { cpu: '2000', memory: '4Ti', pods: '10000', 'ephemeral-storage': '100Ti' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: NODE_NAME,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake' },
      labels: {
        type: 'kwok',
        'kubernetes.io/hostname': NODE_NAME,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
      },
    },
    status: { allocatable: resources, capacity: resources },
  };
}
