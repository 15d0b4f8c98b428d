/**
 * The product as users run it, on the real node of the local cluster (issue 8, "Tests (on the real
 * node)"): the operator chart's controller Deployment running the image `npm run images` built,
 * reconciling MCPServers whose pods run the same image as `kubemcp serve` (Streamable HTTP,
 * read-only), reached by an MCP SDK client through the apiserver's service proxy.
 *
 * Isolation from the other suites (which run their own controllers against the same cluster):
 * the operator chart's objects are applied unchanged except that the namespaced ones go to this
 * suite's namespace instead of `mcp-system`, the cluster-scoped RBAC names get this suite's
 * suffix, the image is the local one, and the controller watches only this suite's workload
 * namespace (`--namespace`). Both namespaces enforce the restricted Pod Security Standard and run
 * their pods on the real node (cluster/realnode: PodNodeSelector annotation).
 *
 * Skipped, with the reason printed, only where the machine cannot run the real node.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { App } from 'cdk8s';
import { CONTROLLER_NAME, OPERATOR_NAMESPACE, OperatorChart } from '../../charts/operator.js';
import { CONTROLLER_LABELS } from '../../charts/operator-config.js';
import { IMPERSONATOR_ROLE, impersonatorBindingName } from '../../charts/mcpserver.js';
import { GATEWAY_HEALTH_PATH, gatewayPort } from '../../gateway/wiring.js';
import { REAL_NODE_NAME, realNodeNamespace, realNodeStatus } from '../../cluster/index.js';
import { ensureImagesLoaded } from '../../images/cluster.js';
import { KUBEMCP_IMAGE } from '../../images/images.js';
import { verifyTargetFor } from '../../controller/controller.js';
import { mcpHandshake } from '../../controller/verify.js';
import type { MCPServerSpec } from '../../charts/api/schema.js';
import { callTool, startHttpServer } from '../mcp-server/helpers.js';
import {
  apiMessage,
  apply,
  connectAs,
  connectWithToken,
  serviceAccountToken,
  deleteTestNamespace,
  installCrd,
  kubeConfig,
  kubectl,
  mcpCondition as condition,
  mcpServers,
  waitFor,
} from '../kube.js';
import { createCallers } from '../gateway/fixture.js';

const status = realNodeStatus();
const skip = !status.available && status.reason?.kind === 'unsupported';
if (skip) process.stderr.write(`SKIPPED real-node operator tests: ${status.reason?.message}\n`);
const describeReal = skip ? describe.skip : describe;

const sfx = randomBytes(3).toString('hex');
/** The operator's namespace (the chart's mcp-system, renamed for isolation). */
const opNs = `op-${sfx}`;
/** Where this suite's MCPServers live; the only namespace the operator watches. */
const ns = `mcps-${sfx}`;
/** A namespace of its own for a pod that should not reach the MCPServers (issue 17, isolation). */
const intruderNs = `intr-${sfx}`;
const RESTRICTED = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
};
/** Small requests, so a few MCPServer pods fit the real node beside the other suites' pods. */
const SMALL = { requests: { cpu: '50m', memory: '96Mi' } };

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const coord = kc.makeApiClient(k8s.CoordinationV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const { get: getMcp, apply: applyMcp } = mcpServers(kc, ns);

/** Pods of an MCPServer (selector labels of the construct), not terminating. */
async function podsOf(name: string): Promise<k8s.V1Pod[]> {
  const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${name}` });
  return pods.items.filter((p) => !p.metadata?.deletionTimestamp);
}

const isReady = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** An operator-chart object, with the fields this suite edits (by kind: bindings, the Deployment). */
type ChartObject = k8s.KubernetesObject & {
  metadata: k8s.V1ObjectMeta;
  roleRef?: k8s.V1RoleRef;
  subjects?: k8s.RbacV1Subject[];
  spec?: k8s.V1DeploymentSpec;
};

/** The operator chart's objects for this suite (see the file's docstring for what is changed). */
function operatorObjects(): ChartObject[] {
  const out: ChartObject[] = [];
  for (const o of new OperatorChart(new App({ outdir: '/dev/null' }), 'operator', {
    image: KUBEMCP_IMAGE,
    includeCrd: false,
  }).toJson() as ChartObject[]) {
    if (o.kind === 'Namespace') continue; // created by the suite with the restricted and real-node labels
    if (o.metadata.namespace === OPERATOR_NAMESPACE) o.metadata.namespace = opNs;
    // kubemcp:impersonator keeps its name: MCPServers' bindings name it (charts/mcpserver.ts IMPERSONATOR_ROLE).
    const shared = o.kind === 'ClusterRole' && o.metadata.name === IMPERSONATOR_ROLE;
    if ((o.kind === 'ClusterRole' && !shared) || o.kind === 'ClusterRoleBinding')
      o.metadata.name = `${o.metadata.name}-${sfx}`;
    if (o.kind === 'ClusterRoleBinding') o.roleRef!.name = `${o.roleRef!.name}-${sfx}`;
    for (const s of o.subjects ?? []) if (s.namespace === OPERATOR_NAMESPACE) s.namespace = opNs;
    if (o.kind === 'Deployment') {
      const c = o.spec!.template.spec!.containers[0]!;
      c.args = [...(c.args ?? []).map((a) => a.replace(`=${OPERATOR_NAMESPACE}`, `=${opNs}`)), `--namespace=${ns}`];
    }
    out.push(o);
  }
  return out;
}

/** The Ready, non-terminating pod of the operator's Deployment (one replica). */
async function operatorPod(): Promise<k8s.V1Pod | undefined> {
  const pods = await core.listNamespacedPod({
    namespace: opNs,
    labelSelector: 'app.kubernetes.io/name=kubemcp,app.kubernetes.io/component=controller',
  });
  const live = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
  return live.length === 1 && isReady(live[0]!) ? live[0] : undefined;
}

/** MCPServer `name`'s NetworkPolicy as the apiserver stores it (plain JSON: `from`, not client-node's `_from`). */
async function netpolOf(
  name: string,
): Promise<{ spec: { policyTypes?: string[]; ingress?: Array<{ from?: unknown[] }> } }> {
  return JSON.parse(await kubectl('get', 'networkpolicy', name, '-n', ns, '-o', 'json'));
}

/**
 * From inside container `container` of pod `namespace/pod` (an image with Node: kubemcp's): POSTs
 * an empty JSON-RPC body to `url` and prints `HTTP <status>`, or `ERR <code>` when no answer came
 * within `timeoutMs` (a packet dropped by a NetworkPolicy: `ERR TimeoutError`).
 */
async function fetchFromPod(namespace: string, pod: string, container: string, url: string, timeoutMs = 4000) {
  const script = `fetch(${JSON.stringify(url)}, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}', signal: AbortSignal.timeout(${timeoutMs}) })
    .then((r) => process.stdout.write('HTTP ' + r.status), (e) => process.stdout.write('ERR ' + (e.cause?.code ?? e.name)))`;
  return (await kubectl('exec', '-n', namespace, pod, '-c', container, '--', 'node', '-e', script)).trim();
}

describeReal('operator and kubemcp serve as pods on the real node', () => {
  const clients: Array<{ close: () => Promise<void> }> = [];
  /** The MCPServer running kubemcp serve. */
  const serve = 'kube-mcp';
  /** Its status.url: the audience of its callers' tokens (issue 17). */
  const serveUrl = () => `http://${serve}.${ns}.svc.cluster.local:3001/mcp`;
  /** A client of `kube-mcp` through `kubectl port-forward`, as ServiceAccount `caller` (edit in ns). */
  const connectCaller = async () => {
    const f = await connectAs(kc, ns, serve, 'caller', serveUrl());
    clients.push(f);
    return f.client;
  };
  const serveSpec = {
    image: KUBEMCP_IMAGE,
    transport: 'streamable-http',
    port: 3001,
    serviceAccount: 'kubemcp-reader',
    config: { readOnly: 'true' },
    resources: SMALL,
  };

  beforeAll(async () => {
    if (!status.available)
      throw new Error(`the real node is not available: ${status.reason?.message ?? 'unknown reason'}`);
    ensureImagesLoaded({ output: 'pipe', log: () => undefined });
    await core.createNamespace({ body: realNodeNamespace(opNs, RESTRICTED) });
    await core.createNamespace({ body: realNodeNamespace(ns, RESTRICTED) });
    await installCrd(kc);
    for (const o of operatorObjects()) await apply(objects, o);
    // kubemcp serve's identity: read everything but Secrets (the built-in view role), plus nodes and namespaces.
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'kubemcp-reader' } } });
    await rbac.createClusterRole({
      body: {
        metadata: { name: `kubemcp-reader-${sfx}` },
        rules: [{ apiGroups: [''], resources: ['nodes', 'namespaces'], verbs: ['get', 'list', 'watch'] }],
      },
    });
    // Its callers (issue 17): `edit` in the namespace may call MCPServers (the chart's callers'
    // ClusterRole is aggregated into edit), `view` may not.
    await createCallers(kc, ns, { caller: 'edit', viewer: 'view' });
    for (const role of [`kubemcp-reader-${sfx}`, 'view']) {
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: `kubemcp-reader-${sfx}-${role === 'view' ? 'view' : 'extra'}` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ kind: 'ServiceAccount', name: 'kubemcp-reader', namespace: ns }],
        },
      });
    }
  }, 40 * 60_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    // The operator goes with its namespace: the MCPServers' finalizers are dropped, not waited on.
    await Promise.all([
      deleteTestNamespace(kc, ns),
      core.deleteNamespace({ name: intruderNs }).catch(() => undefined),
      core.deleteNamespace({ name: opNs }).catch(() => undefined),
      rbac.deleteClusterRole({ name: `kubemcp-reader-${sfx}` }).catch(() => undefined),
      rbac.deleteClusterRoleBinding({ name: `kubemcp-reader-${sfx}-view` }).catch(() => undefined),
      rbac.deleteClusterRoleBinding({ name: `kubemcp-reader-${sfx}-extra` }).catch(() => undefined),
      rbac.deleteClusterRole({ name: `${CONTROLLER_NAME}-${sfx}` }).catch(() => undefined),
      rbac.deleteClusterRoleBinding({ name: `${CONTROLLER_NAME}-${sfx}` }).catch(() => undefined),
    ]);
  });

  it('the restricted Pod Security Standard is enforced in both namespaces (a privileged pod is refused)', async () => {
    for (const n of [opNs, ns]) {
      const err = await core
        .createNamespacedPod({
          namespace: n,
          dryRun: 'All',
          body: {
            metadata: { name: 'privileged' },
            spec: { containers: [{ name: 'c', image: KUBEMCP_IMAGE, securityContext: { privileged: true } }] },
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeDefined();
      expect(apiMessage(err)).toMatch(/violates PodSecurity "restricted:latest"/);
    }
  });

  it('the operator Deployment becomes Available from the built image on the real node; probes pass; non-root, read-only root filesystem', async () => {
    const dep = await waitFor(
      'the operator Deployment Available',
      async () => {
        const d = await apps.readNamespacedDeployment({ name: CONTROLLER_NAME, namespace: opNs });
        return d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') &&
          (d.status.readyReplicas ?? 0) >= 1
          ? d
          : undefined;
      },
      300_000,
      1000,
    );
    expect(dep.spec?.template.spec?.containers[0]?.image).toBe(KUBEMCP_IMAGE);
    const pod = await waitFor('the operator pod Ready', operatorPod, 60_000, 500);
    expect(pod.spec?.nodeName).toBe(REAL_NODE_NAME);
    const cs = pod.status?.containerStatuses?.[0];
    expect(cs?.ready).toBe(true); // readiness probe GET /readyz on the health port passed
    expect(cs?.image).toMatch(/kubemcp\/kubemcp:/);
    // Liveness (/healthz) has been probed several times (period 10 s, initial delay 15 s) without a restart.
    await new Promise((r) => setTimeout(r, 30_000));
    const again = await core.readNamespacedPod({ name: pod.metadata!.name!, namespace: opNs });
    expect(again.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    // kubectl exec through the apiserver and the kubelet: the image's busybox answers as uid 1000
    // (the chart's runAsUser), and the root filesystem refuses writes.
    expect((await kubectl('exec', '-n', opNs, pod.metadata!.name!, '--', 'id', '-u')).trim()).toBe('1000');
    const touch = await kubectl('exec', '-n', opNs, pod.metadata!.name!, '--', 'touch', '/app/x').then(
      () => 'written',
      (e: { stderr?: string }) => e.stderr ?? 'failed',
    );
    expect(touch).toMatch(/Read-only file system/);
  }, 420_000);

  it('holds the leader-election Lease and writes JSON log lines (kubectl logs)', async () => {
    const pod = await waitFor('the operator pod Ready', operatorPod, 120_000, 500);
    const lease = await waitFor(
      'the Lease held by the operator pod',
      async () => {
        const l = await coord.readNamespacedLease({ name: CONTROLLER_NAME, namespace: opNs });
        return l.spec?.holderIdentity?.startsWith(pod.metadata!.name!) ? l : undefined;
      },
      60_000,
      500,
    );
    expect(lease.spec?.leaseDurationSeconds).toBe(15);
    // Node's own process warnings ("(node:1) ...Warning: ...") go to stderr as plain text; every
    // other line is the controller's pino JSON.
    const logs = (await kubectl('logs', '-n', opNs, pod.metadata!.name!))
      .split('\n')
      .filter((l) => l.trim() && !/^\(node:\d+\) |^\(Use `node --trace/.test(l));
    expect(logs.length).toBeGreaterThan(0);
    const parsed = logs.map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(parsed.some((l) => /leader/.test(l.msg))).toBe(true);
  }, 180_000);

  it('reconciles an MCPServer running kubemcp serve to Ready: pods pass the real /health and /ready probes; an MCP client gets tools/list through the Service', async () => {
    await applyMcp(serve, serveSpec);
    const mcp = await waitFor(
      `MCPServer ${serve} Ready`,
      async () => {
        const o = await getMcp(serve);
        return o.status?.phase === 'Ready' ? o : undefined;
      },
      300_000,
      1000,
    );
    expect(mcp.status?.readyReplicas).toBe(1);
    const pods = await podsOf(serve);
    expect(pods).toHaveLength(1);
    const pod = pods[0]!;
    expect(pod.spec?.nodeName).toBe(REAL_NODE_NAME);
    const c = pod.spec!.containers[0]!;
    expect(c.readinessProbe?.httpGet?.path).toBe('/ready');
    expect(c.livenessProbe?.httpGet?.path).toBe('/health');
    expect(pod.status?.containerStatuses?.[0]?.ready).toBe(true);
    // Every container ready: the server and the gateway in front of it.
    expect(pod.spec!.containers.map((x) => x.name)).toEqual(['mcp-server', 'mcp-gateway']);
    expect(pod.status?.containerStatuses?.every((s) => s.ready)).toBe(true);
    expect(condition(mcp, 'AuthEnabled')).toMatchObject({ status: 'True', reason: 'KubernetesAuth' });
    const client = await connectCaller();
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['list-resources', 'get-resource', 'list-mcpservers']));
    expect(tools).not.toContain('create-pod'); // read-only from config.json (config.readOnly)
    // Ready means the operator's own MCP handshake (in its pod: the Service's DNS name) succeeded.
    expect(condition(mcp, 'Verified')).toMatchObject({ status: 'True' });
    expect(mcp.status?.tools?.count).toBe(tools.length);
    expect(mcp.status?.serverInfo?.name).toBeTruthy();
    expect(mcp.status?.url).toBe(`http://${serve}.${ns}.svc.cluster.local:3001/mcp`);
    // The out-of-cluster path (a controller run as a process): the handshake through the
    // apiserver's service proxy reaches the real pod's gateway, which refuses it: the proxy drops
    // the Authorization header, so nothing but a port-forward or an in-cluster caller carries a token.
    const viaProxy = verifyTargetFor(kc, 'proxy')(ns, serve, mcp.spec as unknown as MCPServerSpec);
    expect(viaProxy.url).toContain(`/api/v1/namespaces/${ns}/services/http:${serve}:mcp/proxy/mcp`);
    const proxied = await mcpHandshake({ url: viaProxy.url, fetch: viaProxy.fetch, timeoutMs: 30_000 });
    expect(proxied).toMatchObject({ ok: false, reason: 'AuthRequired' });
    expect(proxied.message).toMatch(/HTTP 401.*Bearer/);
    // Without a token, or as `view` only, the gateway refuses the client before the server sees it.
    await expect(connectAs(kc, ns, serve, undefined, serveUrl())).rejects.toMatchObject({
      code: 401,
      message: expect.stringMatching(/no bearer token/),
    });
    await expect(connectAs(kc, ns, serve, 'viewer', serveUrl())).rejects.toMatchObject({
      code: 403,
      message: expect.stringMatching(/Forbidden: .*mcpservers\/proxy/),
    });
    // A token of the right caller for another audience, and one whose ServiceAccount is gone
    // (revoked: the apiserver no longer accepts it), are 401 as well.
    await expect(connectAs(kc, ns, serve, 'caller', 'https://other.example.com/mcp')).rejects.toMatchObject({
      code: 401,
    });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'gone' } } });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'gone-edit' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
        subjects: [{ kind: 'ServiceAccount', name: 'gone', namespace: ns }],
      },
    });
    const goneToken = await serviceAccountToken(kc, ns, 'gone', [serveUrl()]);
    await core.deleteNamespacedServiceAccount({ namespace: ns, name: 'gone' });
    // TokenReview answers for a deleted ServiceAccount at once; the gateway never cached this token.
    await expect(connectWithToken(ns, serve, goneToken)).rejects.toMatchObject({ code: 401 });
    // diagnose-workload (kubemcp serve, issue 19) names these refusals from the gateway's audit lines.
    const diag = await startHttpServer({}, {}, { budget: 24_000 });
    try {
      const d = await callTool(await diag.connect(), 'diagnose-workload', { kind: 'mcps', name: serve, namespace: ns });
      const found = (d.structuredContent as unknown as { findings: Array<{ reason: string }> }).findings;
      expect(found.map((f) => f.reason)).toContain('GatewayRefusals');
      const said = (d.content as Array<{ text?: string }>).map((x) => x.text ?? '').join('\n');
      expect(said).toMatch(/Gateway refusals \(time, status, caller, method\):\n<untrusted-data /);
      expect(said).toMatch(/ 401 \(no identity\) /);
      expect(said).toMatch(new RegExp(` 403 system:serviceaccount:${ns}:viewer `));
    } finally {
      await diag.close();
    }
    const r = await client.callTool({ name: 'list-resources', arguments: { kind: 'pods', namespace: ns } });
    expect(r.isError).toBeFalsy();
    const text = (r.content as Array<{ type: string; text?: string }>).map((x) => x.text ?? '').join('\n');
    expect(text).toContain(pod.metadata!.name!); // it read the cluster with its ServiceAccount
  }, 420_000);

  it('spec.auth.impersonate: kubemcp serve acts as its caller: a ServiceAccount with edit in its own namespace lists only what RBAC gives it there, never a ConfigMap of another namespace; the operator still verifies it', async () => {
    const asCaller = 'kube-mcp-as';
    // The server's own ServiceAccount holds no read right at all: only the impersonator binding.
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'kubemcp-impersonator' } } });
    const secretValue = `sk-live-${sfx}`;
    await core.createNamespace({ body: { metadata: { name: `secrets-${sfx}` } } });
    await core.createNamespacedConfigMap({
      namespace: `secrets-${sfx}`,
      body: { metadata: { name: 'app-settings' }, data: { api_key: secretValue } },
    });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'callers-own' }, data: { a: '1' } },
    });
    try {
      await applyMcp(asCaller, {
        ...serveSpec,
        serviceAccount: 'kubemcp-impersonator',
        auth: { impersonate: true },
      });
      const mcp = await waitFor(
        `MCPServer ${asCaller} Ready`,
        async () => {
          const o = await getMcp(asCaller);
          return o.status?.phase === 'Ready' ? o : undefined;
        },
        300_000,
        1000,
      );
      expect(condition(mcp, 'Verified')).toMatchObject({ status: 'True' });
      expect(mcp.status?.tools?.count).toBeGreaterThan(5);
      expect(condition(mcp, 'AuthEnabled')?.message).toMatch(/acts as each caller/);
      const crb = await rbac.readClusterRoleBinding({ name: impersonatorBindingName(ns, asCaller) });
      expect(crb.roleRef.name).toBe(IMPERSONATOR_ROLE);
      expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kubemcp-impersonator', namespace: ns }]);
      const pod = (await podsOf(asCaller))[0]!;
      expect(pod.spec!.containers[0]!.env).toContainEqual({ name: 'MCP_IMPERSONATE', value: 'gateway' });
      const f = await connectAs(kc, ns, asCaller, 'caller', `http://${asCaller}.${ns}.svc.cluster.local:3001/mcp`);
      clients.push(f);
      const call = async (name: string, args: Record<string, unknown>) => {
        const r = await f.client.callTool({ name, arguments: args });
        return {
          isError: !!r.isError,
          text: (r.content as Array<{ type: string; text?: string }>).map((x) => x.text ?? '').join('\n'),
        };
      };
      const who = `system:serviceaccount:${ns}:caller`;
      const all = await call('list-resources', { kind: 'configmaps', allNamespaces: true });
      expect(all.isError).toBe(true);
      expect(all.text).toContain(`User "${who}" cannot list resource "configmaps"`);
      const other = await call('get-resource', {
        kind: 'configmap',
        namespace: `secrets-${sfx}`,
        name: 'app-settings',
      });
      expect(other.isError).toBe(true);
      expect(other.text).toContain(`User "${who}" cannot get resource "configmaps"`);
      expect(all.text + other.text).not.toContain(secretValue);
      const own = await call('list-resources', { kind: 'configmaps', namespace: ns });
      expect(own.isError).toBe(false);
      expect(own.text).toContain('callers-own');
      // Nodes: the caller has no cluster-scoped read; the server's own (absent) rights do not leak in.
      const nodes = await call('list-resources', { kind: 'nodes' });
      expect(nodes.isError).toBe(true);
      expect(nodes.text).toContain(`User "${who}" cannot list resource "nodes"`);
      // Deleting the MCPServer removes its impersonation right.
      await objects.delete({
        apiVersion: 'mcp.example.com/v1alpha1',
        kind: 'MCPServer',
        metadata: { name: asCaller, namespace: ns },
      });
      await waitFor(
        'the impersonator binding deleted with its MCPServer',
        async () =>
          (await rbac.readClusterRoleBinding({ name: impersonatorBindingName(ns, asCaller) }).then(
            () => false,
            (e: { code?: number }) => e.code === 404,
          )) || undefined,
        120_000,
        1000,
      );
    } finally {
      await core.deleteNamespace({ name: `secrets-${sfx}` }).catch(() => undefined);
      await rbac.deleteClusterRoleBinding({ name: impersonatorBindingName(ns, asCaller) }).catch(() => undefined);
    }
  }, 480_000);

  it("isolation: from another namespace's pod the server container's own port on the pod IP is dropped by the MCPServer's NetworkPolicy, the gateway's port answers 401; spec.allowFrom narrows the gateway's port too, the operator's pods stay admitted", async () => {
    const np = await netpolOf(serve);
    expect(np.spec?.policyTypes).toEqual(['Ingress']);
    expect(np.spec?.ingress).toEqual([{ ports: [{ port: 'mcp', protocol: 'TCP' }] }]);
    const [pod] = (await podsOf(serve)).filter(isReady);
    const ip = pod!.status!.podIP!;
    const gwPort = pod!.spec!.containers.find((c) => c.name === 'mcp-gateway')!.ports![0]!.containerPort;
    // The server listens on the pod IP: from inside its own pod (no NetworkPolicy on that path) it answers.
    expect(await fetchFromPod(ns, pod!.metadata!.name!, 'mcp-gateway', `http://${ip}:3001/mcp`)).toMatch(/^HTTP \d+$/);

    await core.createNamespace({ body: realNodeNamespace(intruderNs, RESTRICTED) });
    await core.createNamespacedPod({
      namespace: intruderNs,
      body: {
        metadata: { name: 'intruder', labels: { role: 'intruder' } },
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
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 65534,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
            },
          ],
        },
      },
    });
    await waitFor(
      'intruder pod Ready',
      async () => isReady(await core.readNamespacedPod({ namespace: intruderNs, name: 'intruder' })) || undefined,
      120_000,
      1000,
    );
    const fromIntruder = (url: string) => fetchFromPod(intruderNs, 'intruder', 'main', url);
    expect(await fromIntruder(`http://${ip}:3001/mcp`)).toBe('ERR TimeoutError');
    expect(await fromIntruder(`http://${ip}:${gwPort}/mcp`)).toBe('HTTP 401');
    expect(await fromIntruder(serveUrl())).toBe('HTTP 401');

    // Narrowed to pods labelled role=agent of the MCPServer's namespace: the intruder is dropped
    // at the gateway's port too; the operator's pods are admitted beside the peers (its handshake).
    await applyMcp(serve, { ...serveSpec, allowFrom: [{ podSelector: { matchLabels: { role: 'agent' } } }] });
    const narrowed = await waitFor(
      'NetworkPolicy with the peers',
      async () => {
        const p = await netpolOf(serve);
        return p.spec?.ingress?.[0]?.from ? p : undefined;
      },
      60_000,
      500,
    );
    expect(narrowed.spec!.ingress![0]!.from).toEqual([
      { podSelector: { matchLabels: { role: 'agent' } } },
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': opNs } },
        podSelector: { matchLabels: CONTROLLER_LABELS },
      },
      // The MCPServer's own pods: a gateway forwards another pod's sealed session (issue 18).
      { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'mcp-server', 'app.kubernetes.io/instance': serve } } },
    ]);
    await waitFor(
      'the intruder dropped at the gateway port',
      async () => ((await fromIntruder(`http://${ip}:${gwPort}/mcp`)) === 'ERR TimeoutError' ? true : undefined),
      30_000,
      1000,
    );
    const op = await operatorPod();
    expect(await fetchFromPod(opNs, op!.metadata!.name!, 'controller', `http://${ip}:${gwPort}/mcp`)).toBe('HTTP 401');
    expect(await fetchFromPod(opNs, op!.metadata!.name!, 'controller', `http://${ip}:3001/mcp`)).toBe(
      'ERR TimeoutError',
    );

    // Back to the default (from anywhere) for the tests below.
    await applyMcp(serve, serveSpec);
    await waitFor(
      'NetworkPolicy from anywhere again',
      async () => ((await netpolOf(serve)).spec?.ingress?.[0]?.from ? undefined : true),
      60_000,
      500,
    );
  }, 300_000);

  it('kubectl scale mcps to 2 gives two serving pods', async () => {
    await kubectl('scale', '-n', ns, `mcps/${serve}`, '--replicas=2');
    const mcp = await waitFor(
      'two ready replicas',
      async () => {
        const o = await getMcp(serve);
        // New ready pods are re-verified (Verified Unknown/Verifying meanwhile): wait for both.
        return o.status?.readyReplicas === 2 && o.status?.phase === 'Ready' ? o : undefined;
      },
      240_000,
      1000,
    );
    expect(mcp.status?.phase).toBe('Ready');
    const pods = (await podsOf(serve)).filter(isReady);
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      // Each pod's gateway answers its health through the apiserver's pod proxy (the gateway's port:
      // the server's own port 3001 is closed to everything off the pod but the kubelet's probes).
      const out = await kubectl(
        'get',
        '--raw',
        `/api/v1/namespaces/${ns}/pods/${p.metadata!.name}:${gatewayPort(3001)}/proxy${GATEWAY_HEALTH_PATH}`,
      );
      expect(out).toMatch(/ready|ok/i);
    }
  }, 300_000);

  it('a config change rolls the pods and the new pods see the new config.json at MCP_CONFIG_FILE', async () => {
    const before = new Set((await podsOf(serve)).map((p) => p.metadata!.name!));
    // One replica: the client's Streamable HTTP session lives in one pod, and the apiserver's
    // service proxy picks an endpoint per request (no session affinity across two pods).
    await applyMcp(serve, { ...serveSpec, replicas: 1, config: { readOnly: 'true', denyTools: 'list-events' } });
    const fresh = await waitFor(
      'the rollout to a new ready pod',
      async () => {
        const pods = await podsOf(serve);
        const ready = pods.filter((p) => isReady(p) && !before.has(p.metadata!.name!));
        return pods.length === 1 && ready.length === 1 ? ready : undefined;
      },
      300_000,
      1000,
    );
    const podName = fresh[0]!.metadata!.name!;
    const env = await kubectl('exec', '-n', ns, podName, '--', 'env');
    expect(env.split('\n')).toContain('MCP_CONFIG_FILE=/etc/mcp/config.json');
    const file = JSON.parse(await kubectl('exec', '-n', ns, podName, '--', 'cat', '/etc/mcp/config.json')) as {
      config: Record<string, string>;
    };
    expect(file.config).toEqual({ readOnly: 'true', denyTools: 'list-events' });
    const client = await connectCaller();
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('list-resources');
    expect(tools).not.toContain('list-events'); // the server applied the new config
    // The pods rolled: the operator handshook the new ones and status counts their tools.
    const verified = await waitFor(
      'status.tools to count the new tool list',
      async () => {
        const o = await getMcp(serve);
        return o.status?.tools?.count === tools.length ? o : undefined;
      },
      120_000,
      1000,
    );
    expect(verified.status?.tools?.names ?? []).not.toContain('list-events');
  }, 480_000);

  it('a container that serves plain HTTP, not MCP, is not Ready: Verified False with ProtocolError', async () => {
    const server =
      "require('http').createServer((q, s) => { s.setHeader('content-type', 'text/html'); s.end('<html>hello</html>'); }).listen(3001, '0.0.0.0')";
    await applyMcp('plain-http', {
      image: KUBEMCP_IMAGE,
      port: 3001,
      command: ['node', '-e', server],
      resources: SMALL,
    });
    const o = await waitFor(
      // The first handshake may race kube-proxy programming the new Service (ConnectionFailed,
      // retried after 2 s, 4 s, ...): wait for the lasting reason.
      'Verified False with ProtocolError on plain-http',
      async () => {
        const m = await getMcp('plain-http');
        const v = condition(m, 'Verified');
        return v?.status === 'False' && v.reason === 'ProtocolError' ? m : undefined;
      },
      300_000,
      1000,
    );
    expect(condition(o, 'Verified')?.reason).toBe('ProtocolError');
    expect(o.status?.phase).not.toBe('Ready');
    expect(condition(o, 'Ready')?.status).toBe('False');
    expect(condition(o, 'DeploymentReady')?.status).toBe('True'); // its pods are up: only the protocol is wrong
  }, 360_000);

  it('an MCP server behind a bearer token is not Ready: Verified False with AuthRequired', async () => {
    await applyMcp('needs-token', {
      ...serveSpec,
      config: { readOnly: 'true' },
      env: [{ name: 'MCP_TOKEN', value: `t-${sfx}` }],
    });
    const o = await waitFor(
      // The first handshake may race kube-proxy programming the new Service (ConnectionFailed,
      // retried after 2 s, 4 s, ...): wait for the lasting reason.
      'Verified False with AuthRequired on needs-token',
      async () => {
        const m = await getMcp('needs-token');
        const v = condition(m, 'Verified');
        return v?.status === 'False' && v.reason === 'AuthRequired' ? m : undefined;
      },
      300_000,
      1000,
    );
    expect(condition(o, 'Verified')?.reason).toBe('AuthRequired');
    expect(o.status?.phase).not.toBe('Ready');
  }, 360_000);

  it('an MCPServer with an image that does not exist is not Ready and says why (ImagePullBackOff / ErrImagePull in status)', async () => {
    await applyMcp('no-image', { image: 'localhost/kubemcp/does-not-exist:0.0.0', port: 3001, resources: SMALL });
    const o = await waitFor(
      'the pull failure in the MCPServer status',
      async () => {
        const m = await getMcp('no-image');
        const why = (m.status?.conditions ?? []).some((c) =>
          /ImagePullBackOff|ErrImagePull|ErrImageNeverPull/.test(`${c.reason ?? ''} ${c.message ?? ''}`),
        );
        return why ? m : undefined;
      },
      240_000,
      1000,
    );
    expect(o.status?.phase).not.toBe('Ready');
    expect(o.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
  }, 300_000);

  it('an MCPServer whose server exits at start is not Ready, with CrashLoopBackOff in status', async () => {
    // kubemcp serve refuses an unknown transport and exits 1 (the user's env replaces the operator's MCP_TRANSPORT).
    await applyMcp('crasher', {
      image: KUBEMCP_IMAGE,
      port: 3001,
      resources: SMALL,
      env: [{ name: 'MCP_TRANSPORT', value: 'carrier-pigeon' }],
    });
    const o = await waitFor(
      'CrashLoopBackOff in the MCPServer status',
      async () => {
        const m = await getMcp('crasher');
        return (m.status?.conditions ?? []).some((c) => /CrashLoopBackOff/.test(`${c.reason ?? ''} ${c.message ?? ''}`))
          ? m
          : undefined;
      },
      240_000,
      1000,
    );
    expect(o.status?.phase).not.toBe('Ready');
    const pod = (await podsOf('crasher'))[0]!;
    const logs = await kubectl('logs', '-n', ns, pod.metadata!.name!, '--previous');
    expect(logs).toMatch(/unknown transport "carrier-pigeon"/);
  }, 300_000);

  it('deleting the operator pod: the new pod takes the Lease over and reconciles', async () => {
    const old = await waitFor('the operator pod Ready', operatorPod, 60_000, 500);
    await core.deleteNamespacedPod({ name: old.metadata!.name!, namespace: opNs });
    const fresh = await waitFor(
      'a new operator pod Ready',
      async () => {
        const p = await operatorPod();
        return p && p.metadata!.name !== old.metadata!.name ? p : undefined;
      },
      240_000,
      1000,
    );
    await waitFor(
      'the Lease held by the new pod',
      async () =>
        (await coord.readNamespacedLease({ name: CONTROLLER_NAME, namespace: opNs })).spec?.holderIdentity?.startsWith(
          fresh.metadata!.name!,
        ),
      120_000,
      1000,
    );
    await kubectl('scale', '-n', ns, `mcps/${serve}`, '--replicas=1');
    const mcp = await waitFor(
      'the new operator scaling the Deployment down',
      async () => {
        const d = await apps.readNamespacedDeployment({ name: serve, namespace: ns });
        const o = await getMcp(serve);
        return d.spec?.replicas === 1 && o.status?.replicas === 1 && o.status.phase === 'Ready' ? o : undefined;
      },
      180_000,
      1000,
    );
    expect(mcp.status?.readyReplicas).toBe(1);
  }, 480_000);
});
