/**
 * metrics-server (`sigs.k8s.io/metrics-server` v0.8.0, built by ../build.sh from the wrapper
 * module ../node/metrics-server): the `metrics.k8s.io` API (`kubectl top`, the `top` tool of
 * `kubemcp serve`) for the real node. A host process beside the control plane, like kwok, not a
 * pod: it binds 127.0.0.1 on a port chosen at start and scrapes the real node's kubelet
 * (`/metrics/resource` at its InternalIP, the node end of the veth, which the host routes to) every
 * {@link METRIC_RESOLUTION}. kwok's node has no kubelet: `--node-selector=type=real` keeps it out
 * of the scrape, so no scrape of it fails (its NodeMetrics is simply absent, as `kubectl top node`
 * shows for any node without metrics: `<unknown>`).
 *
 * How the apiserver reaches it: the APIService `v1beta1.metrics.k8s.io` names the Service
 * `kube-system/metrics-server`, of type ExternalName with externalName 127.0.0.1 (the loopback
 * address the process binds; an IP is a valid DNS-1123 subdomain and needs no resolver). The
 * aggregator's default service resolver (k8s.io/apiserver/pkg/util/proxy ResolveCluster) turns an
 * ExternalName Service into `https://<externalName>:<APIService port>`, so nothing needs a
 * ClusterIP (the host has no route to the Service range, and no kube-proxy) nor
 * `--enable-aggregator-routing` (Endpoints may not hold a loopback address). The aggregator checks
 * the serving certificate: it asks for ServerName `metrics-server.kube-system.svc`
 * (kube-aggregator BuildTransportConfig), so the certificate is issued by the cluster CA for that
 * name and the APIService carries the CA as `caBundle` (upstream's manifest skips the check with
 * `insecureSkipTLSVerify`). The apiserver's front-proxy flags (kube-apiserver.ts) let it pass
 * the caller on; metrics-server authenticates and authorizes every request by delegation
 * (TokenReview, SubjectAccessReview, and the request-header CA from ConfigMap
 * kube-system/extension-apiserver-authentication).
 *
 * Its identity: a client certificate for user {@link METRICS_SERVER_USER} (not the admin
 * kubeconfig: it gets exactly the RBAC of upstream's manifests/base/rbac.yaml, bound to that user
 * instead of a ServiceAccount), used for the apiserver and for the kubelet (the kubelet's webhook
 * authorization asks for `get nodes/metrics`). The kubelet's serving certificate is checked
 * against the cluster CA (`--kubelet-certificate-authority`). Also created: ClusterRole
 * `system:aggregated-metrics-reader`, aggregated to view/edit/admin, so ordinary users (and the
 * gateway's impersonated callers) may read metrics.
 * Reference: https://github.com/kubernetes-sigs/metrics-server (v0.8.0: manifests/base,
 * cmd/metrics-server/app/options) and
 * https://kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  ApiException,
  ApiregistrationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type V1APIService,
  type V1PolicyRule,
  type V1Service,
} from '@kubernetes/client-node';
import { COMPONENT_READY_MS, KUBELET_PORT, LOOPBACK, REAL_NODE_SELECTOR } from '../paths.js';
import { clientExt, issueCert, pki, serverExt, writeKubeconfig } from '../pki.js';
import { createIdempotently } from '../kube.js';
import { freePorts, waitFor } from '../process.js';
import type { ProcessRecord } from '../state.js';
import type { StartContext } from './context.js';

/** The user of its client certificate (subject of its RBAC bindings). */
export const METRICS_SERVER_USER = 'metrics-server';
/** Name of its Service (namespace kube-system); the serving certificate names `<it>.kube-system.svc`. */
export const METRICS_SERVER_SERVICE = 'metrics-server';
/** The APIService it serves. */
export const METRICS_API_SERVICE = 'v1beta1.metrics.k8s.io';
/**
 * How often it scrapes the kubelet (`--metric-resolution`; at least 10 s, upstream's manifest
 * uses 15 s). A pod's CPU is a rate between two scrapes: its first PodMetrics appear after about two.
 */
export const METRIC_RESOLUTION = '15s';
/** Bound of the wait for the APIService to become Available (discovery through the aggregator answers). */
const AVAILABLE_WAIT_MS = COMPONENT_READY_MS;

const NAMESPACE = 'kube-system';
const SUBJECT = [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: METRICS_SERVER_USER }];

/** Creates the RBAC of upstream's manifests/base/rbac.yaml (v0.8.0), bound to {@link METRICS_SERVER_USER} (idempotent). */
async function applyRbac(kc: KubeConfig): Promise<void> {
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const clusterRole = (name: string, rules: V1PolicyRule[], labels?: Record<string, string>) =>
    createIdempotently(`ClusterRole ${name}`, () =>
      rbac.createClusterRole({ body: { metadata: { name, ...(labels ? { labels } : {}) }, rules } }),
    );
  const clusterBinding = (name: string, role: string) =>
    createIdempotently(`ClusterRoleBinding ${name}`, () =>
      rbac.createClusterRoleBinding({
        body: {
          metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: SUBJECT,
        },
      }),
    );
  await clusterRole(
    'system:aggregated-metrics-reader',
    [{ apiGroups: ['metrics.k8s.io'], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }],
    {
      'rbac.authorization.k8s.io/aggregate-to-view': 'true',
      'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
      'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
    },
  );
  await clusterRole('system:metrics-server', [
    { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
    { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
  ]);
  await clusterBinding('system:metrics-server', 'system:metrics-server');
  await clusterBinding('metrics-server:system:auth-delegator', 'system:auth-delegator');
  await createIdempotently(`RoleBinding ${NAMESPACE}/metrics-server-auth-reader`, () =>
    rbac.createNamespacedRoleBinding({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'metrics-server-auth-reader' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'Role',
          name: 'extension-apiserver-authentication-reader',
        },
        subjects: SUBJECT,
      },
    }),
  );
}

/** Creates `create()`'s object, or replaces the one there (409) with it, keeping its resourceVersion. */
async function createOrReplace<T extends { metadata?: { resourceVersion?: string } }>(
  what: string,
  create: () => Promise<unknown>,
  read: () => Promise<T>,
  replace: (resourceVersion: string | undefined) => Promise<unknown>,
): Promise<void> {
  await waitFor('kube-apiserver', `creation of ${what}`, AVAILABLE_WAIT_MS, async () => {
    try {
      await create();
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw err;
      await replace((await read()).metadata?.resourceVersion);
    }
    return true;
  });
}

/**
 * The ExternalName Service and the APIService that route `metrics.k8s.io` to 127.0.0.1:`port`
 * (see the module comment), created or replaced (a new start picks a new port).
 * @param caBundle PEM of the CA that signed the serving certificate
 */
export async function applyMetricsApiService(kc: KubeConfig, port: number, caBundle: Buffer): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const reg = kc.makeApiClient(ApiregistrationV1Api);
  const service: V1Service = {
    metadata: { name: METRICS_SERVER_SERVICE, namespace: NAMESPACE, labels: { 'k8s-app': 'metrics-server' } },
    spec: { type: 'ExternalName', externalName: LOOPBACK, ports: [{ name: 'https', port, protocol: 'TCP' }] },
  };
  await createOrReplace(
    `Service ${NAMESPACE}/${METRICS_SERVER_SERVICE}`,
    () => core.createNamespacedService({ namespace: NAMESPACE, body: service }),
    () => core.readNamespacedService({ name: METRICS_SERVER_SERVICE, namespace: NAMESPACE }),
    (resourceVersion) =>
      core.replaceNamespacedService({
        name: METRICS_SERVER_SERVICE,
        namespace: NAMESPACE,
        body: { ...service, metadata: { ...service.metadata, resourceVersion } },
      }),
  );
  const apiService: V1APIService = {
    metadata: { name: METRICS_API_SERVICE, labels: { 'k8s-app': 'metrics-server' } },
    spec: {
      group: 'metrics.k8s.io',
      version: 'v1beta1',
      service: { name: METRICS_SERVER_SERVICE, namespace: NAMESPACE, port },
      caBundle: caBundle.toString('base64'),
      groupPriorityMinimum: 100,
      versionPriority: 100,
    },
  };
  await createOrReplace(
    `APIService ${METRICS_API_SERVICE}`,
    () => reg.createAPIService({ body: apiService }),
    () => reg.readAPIService({ name: METRICS_API_SERVICE }),
    (resourceVersion) =>
      reg.replaceAPIService({
        name: METRICS_API_SERVICE,
        body: { ...apiService, metadata: { ...apiService.metadata, resourceVersion } },
      }),
  );
}

/**
 * Starts metrics-server for the real node at `nodeIp` on a running control plane: its RBAC, client
 * and serving certificates and kubeconfig, the process (127.0.0.1, a free port), then its Service
 * and APIService. Returns its record and a promise that resolves when the APIService is
 * Available, i.e. the aggregator reached it and its discovery answered ({@link AVAILABLE_WAIT_MS}
 * at most; rejects naming its log and the APIService's last condition). The first NodeMetrics
 * follow one scrape later, PodMetrics two ({@link METRIC_RESOLUTION}).
 * @param bin the metrics-server binary (build.sh puts it in the node's bin dir)
 * @throws Error naming the object or the process that could not be created or started.
 */
export async function startMetricsServer(
  ctx: StartContext,
  kc: KubeConfig,
  bin: string,
): Promise<{ proc: ProcessRecord; ready: Promise<void> }> {
  await Promise.all([
    applyRbac(kc),
    issueCert('metrics-server', `/CN=${METRICS_SERVER_USER}`, clientExt),
    issueCert(
      'metrics-server-serving',
      `/CN=${METRICS_SERVER_SERVICE}.${NAMESPACE}.svc`,
      serverExt(`DNS:${METRICS_SERVER_SERVICE}.${NAMESPACE}.svc,IP:${LOOPBACK}`),
    ),
  ]);
  const kubeconfig = pki('metrics-server.kubeconfig');
  writeKubeconfig(kubeconfig, ctx.server, 'metrics-server', METRICS_SERVER_USER);
  const [port] = (await freePorts(1)) as [number];
  const proc = await ctx.launch('metrics-server', bin, [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${LOOPBACK}`,
    `--secure-port=${port}`,
    `--tls-cert-file=${pki('metrics-server-serving.crt')}`,
    `--tls-private-key-file=${pki('metrics-server-serving.key')}`,
    `--kubelet-certificate-authority=${pki('ca.crt')}`,
    '--kubelet-preferred-address-types=InternalIP',
    `--kubelet-port=${KUBELET_PORT}`,
    `--node-selector=${REAL_NODE_SELECTOR}`,
    `--metric-resolution=${METRIC_RESOLUTION}`,
    '--v=1',
  ]);
  await applyMetricsApiService(kc, port, fs.readFileSync(pki('ca.crt')));
  const reg = kc.makeApiClient(ApiregistrationV1Api);
  let last = 'not read yet';
  const ready = waitFor(
    'metrics-server',
    `APIService ${METRICS_API_SERVICE} to become Available`,
    AVAILABLE_WAIT_MS,
    async () => {
      const s = await reg.readAPIService({ name: METRICS_API_SERVICE });
      const c = s.status?.conditions?.find((x) => x.type === 'Available');
      last = c ? `${c.status} ${c.reason ?? ''}: ${c.message ?? ''}` : 'no Available condition';
      return c?.status === 'True' ? true : undefined;
    },
    proc,
  ).then(
    () => undefined,
    (err: Error) => {
      throw new Error(`${err.message}; APIService condition: ${last}`);
    },
  );
  return { proc, ready };
}

/** The metrics-server binary in the node's bin dir, when build.sh built it (it is optional there). */
export function metricsServerBinary(nodeBinDir: string): string | undefined {
  const bin = path.join(nodeBinDir, 'metrics-server');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
    return bin;
  } catch {
    return undefined;
  }
}
