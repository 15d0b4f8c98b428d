/**
 * Test helpers for talking to the local control plane (cluster/): a KubeConfig from
 * $KUBECONFIG (set by test/globalSetup.ts), server-side apply of plain JSON objects, and
 * bounded polling.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { CRD_NAME, mcpServerCrd } from '../charts/api/crd.js';
import { authDelegatorBindingName } from '../charts/mcpserver.js';
import { GROUP, PLURAL, VERSION } from '../charts/api/schema.js';
import { KUBECONFIG_PATH, poll, readState } from '../cluster/index.js';
import { connectThroughPortForward, type ForwardedClient } from '../mcp-server/port-forward.js';

/** KubeConfig of the local control plane. @throws when KUBECONFIG is not set. */
export function kubeConfig(): k8s.KubeConfig {
  const path = process.env.KUBECONFIG;
  if (!path)
    throw new Error('KUBECONFIG is not set: run the tests through jest (test/globalSetup.ts starts the control plane)');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/**
 * Turns plain JSON into client-node model instances, so that KubernetesObjectApi serializes
 * every field (plain JSON for built-in kinds loses fields whose JSON name differs from the
 * model's property, e.g. `x-kubernetes-*` in a CRD).
 */
export function typed<T extends k8s.KubernetesObject>(obj: object): T {
  return k8s.loadYaml<T>(stringify(obj));
}

/**
 * Server-side applies one object (PATCH application/apply-patch+yaml, force).
 * @param dryRun true sends `dryRun=All`: the apiserver validates and admits without persisting.
 * @throws the apiserver's error (ApiException with code and body) when it refuses the object.
 */
export async function apply<T extends k8s.KubernetesObject>(
  api: k8s.KubernetesObjectApi,
  obj: object,
  opts: { dryRun?: boolean; fieldManager?: string } = {},
): Promise<T> {
  return (await api.patch(
    typed(obj),
    undefined,
    opts.dryRun ? 'All' : undefined,
    opts.fieldManager ?? 'kubemcp-test',
    true,
    k8s.PatchStrategy.ServerSideApply,
  )) as T;
}

/** The message of an apiserver refusal (the Status body's `message`), or the error's own message. */
export function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return (err as Error).message;
}

/**
 * Polls `probe` until it returns a value other than undefined/false, at most `timeoutMs`
 * milliseconds and `timeoutMs / intervalMs` attempts (cluster/process.ts `poll`). Errors thrown by
 * probe count as "not yet".
 * @throws Error naming `what` and the last error when time runs out.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  return poll(
    what,
    async () => {
      const v = await probe();
      return v === false ? undefined : v;
    },
    { timeoutMs, intervalMs, describeError: apiMessage },
  );
}

/** Creates a namespace with a generated unique name (prefix + random suffix) and returns its name. */
export async function createNamespace(kc: k8s.KubeConfig, prefix: string): Promise<string> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const ns = await core.createNamespace({ body: { metadata: { generateName: `${prefix}-` } } });
  const name = ns.metadata!.name!;
  await waitFor(
    `default ServiceAccount in ${name}`,
    async () =>
      (await core.readNamespacedServiceAccount({ name: 'default', namespace: name }).catch(() => undefined)) !==
      undefined,
  );
  return name;
}

/**
 * A token of ServiceAccount `namespace/name` from the TokenRequest API (what `kubectl create token
 * --audience` makes), bound to `audiences` (empty: the apiserver's own), valid `expirationSeconds`.
 */
export async function serviceAccountToken(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  audiences: string[] = [],
  expirationSeconds = 600,
): Promise<string> {
  const tr = await kc.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences, expirationSeconds } },
  });
  return tr.status!.token;
}

/**
 * An MCP SDK client of MCPServer `namespace/name`'s Service, reached as a user reaches it from
 * outside the cluster (mcp-server/port-forward.ts: `kubectl port-forward svc/<name>`), sending a
 * token of ServiceAccount `namespace/sa` bound to `audience` (the MCPServer's status.url) unless
 * `sa` is undefined. `close` stops the client and kubectl.
 * @throws Error from kubectl or the SDK (e.g. HTTP 401/403 from the gateway).
 */
export async function connectAs(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  sa: string | undefined,
  audience: string,
  port: number | string = 'mcp',
): Promise<ForwardedClient> {
  const token = sa ? await serviceAccountToken(kc, namespace, sa, [audience]) : undefined;
  return connectWithToken(namespace, name, token, new URL(audience).pathname, port);
}

/**
 * Like {@link connectAs}, with a bearer token the caller made itself (undefined: none).
 * @throws Error from kubectl or the SDK (e.g. HTTP 401/403 from the gateway).
 */
export async function connectWithToken(
  namespace: string,
  name: string,
  token: string | undefined,
  urlPath = '/mcp',
  port: number | string = 'mcp',
): Promise<ForwardedClient> {
  const state = readState();
  if (!state) throw new Error('no local cluster state');
  return connectThroughPortForward({
    kubectl: path.join(state.binDir, 'kubectl'),
    kubeconfig: process.env.KUBECONFIG ?? KUBECONFIG_PATH,
    namespace,
    name,
    port,
    path: urlPath,
    token,
  });
}

/** A kubeconfig for `kc`'s cluster that authenticates with `token` only (user and context `user`). */
export function tokenKubeConfig(kc: k8s.KubeConfig, token: string, user = 'token-user'): k8s.KubeConfig {
  const cluster = kc.getCurrentCluster()!;
  const out = new k8s.KubeConfig();
  out.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cluster.name, user }],
    currentContext: user,
  });
  return out;
}

/** Installs (server-side applies) the MCPServer CRD and waits until it is Established. */
export async function installCrd(kc: k8s.KubeConfig): Promise<void> {
  await apply(k8s.KubernetesObjectApi.makeApiClient(kc), mcpServerCrd(), { fieldManager: 'kubemcp-test-crd' });
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  await waitFor('CRD Established', async () => {
    const crd = await ext.readCustomResourceDefinition({ name: CRD_NAME });
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
  });
}

/** `kubectl get` table output as one record per row, cut at the header's column offsets (empty cells stay empty). */
export function parseTable(out: string): Array<Record<string, string>> {
  const [header, ...rows] = out.replace(/\n+$/, '').split('\n');
  const starts = [...header!.matchAll(/\S+/g)].map((m) => [m[0], m.index!] as const);
  return rows.map((row) =>
    Object.fromEntries(
      starts.map(([name, start], i) => [
        name,
        row.slice(start, i + 1 < starts.length ? starts[i + 1]![1] : undefined).trim(),
      ]),
    ),
  );
}

const execFileAsync = promisify(execFile);

/**
 * Runs the local cluster's kubectl (built by cluster/build.sh) against $KUBECONFIG (else the
 * cluster's admin kubeconfig), bounded to 60 s and 16 MiB of output.
 * @returns its stdout. @throws when no cluster state exists or kubectl fails or times out.
 */
export async function kubectl(...args: string[]): Promise<string> {
  const state = readState();
  if (!state) throw new Error('no local cluster state');
  const { stdout } = await execFileAsync(
    path.join(state.binDir, 'kubectl'),
    ['--kubeconfig', process.env.KUBECONFIG ?? KUBECONFIG_PATH, ...args],
    { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
  return stdout;
}

/** A condition of an MCPServer's status, as the tests read it. */
export type McpCondition = { type: string; status: string; reason?: string; message?: string };

/** An MCPServer as the tests read it (the status fields they check). */
export type McpServerObject = {
  spec: Record<string, unknown>;
  status?: {
    phase?: string;
    readyReplicas?: number;
    replicas?: number;
    conditions?: McpCondition[];
    url?: string;
    endpoint?: string;
    serverInfo?: { name?: string };
    tools?: { count: number; names?: string[]; hash?: string };
  };
};

/** The condition `type` of an MCPServer's status, if any. */
export const mcpCondition = (o: McpServerObject | undefined, type: string): McpCondition | undefined =>
  o?.status?.conditions?.find((c) => c.type === type);

/**
 * Reads and server-side applies MCPServers of one namespace (apply uses {@link apply}'s field
 * manager, kubemcp-test). `get` throws the apiserver's error (e.g. 404) as client-node does.
 */
export function mcpServers(
  kc: k8s.KubeConfig,
  namespace: string,
): {
  get: (name: string) => Promise<McpServerObject>;
  apply: (name: string, spec: Record<string, unknown>) => Promise<void>;
} {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  return {
    get: async (name) =>
      (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace,
        name,
      })) as McpServerObject,
    apply: async (name, spec) => {
      await apply(objects, {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'MCPServer',
        metadata: { name, namespace },
        spec,
      });
    },
  };
}

/**
 * Removes a test namespace whose controller has stopped (or is being removed with it): the
 * finalizer of each MCPServer in it is dropped (nothing is left to run it, so the namespace would
 * stay Terminating for good) and each one's cluster-scoped gateway binding
 * (charts/mcpserver.ts authDelegatorBindingName) is deleted, then the namespace. Errors are
 * swallowed: it runs in afterAll, where the namespace may already be gone.
 */
/**
 * The ready endpoints (`ip:port`, first port of each slice) of Service `name` in `namespace`, as the
 * EndpointSlices list them for kube-proxy and the apiserver's service proxy.
 */
export async function readyEndpoints(kc: k8s.KubeConfig, namespace: string, name: string): Promise<string[]> {
  const slices = await kc.makeApiClient(k8s.DiscoveryV1Api).listNamespacedEndpointSlice({
    namespace,
    labelSelector: `kubernetes.io/service-name=${name}`,
  });
  const out: string[] = [];
  for (const s of slices.items) {
    const port = s.ports?.[0]?.port;
    for (const e of s.endpoints ?? [])
      if (e.conditions?.ready && port) for (const a of e.addresses) out.push(`${a}:${port}`);
  }
  return out;
}

export async function deleteTestNamespace(kc: k8s.KubeConfig, namespace: string): Promise<void> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const list = (await custom
    .listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace })
    .catch(() => ({ items: [] }))) as { items: Array<{ metadata: { name: string } }> };
  for (const o of list.items) {
    const name = o.metadata.name;
    await rbac.deleteClusterRoleBinding({ name: authDelegatorBindingName(namespace, name) }).catch(() => undefined);
    await custom
      .patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace,
          name,
          body: [{ op: 'replace', path: '/metadata/finalizers', value: [] }],
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      )
      .catch(() => undefined);
  }
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
}
