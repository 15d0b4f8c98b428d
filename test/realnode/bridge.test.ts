/**
 * The stdio bridge in real containers on the real node of the local cluster (issue 11, "Tests
 * (real node)"): bridged stdio MCPServers whose pods run the images `npm run images` built —
 * npm's `@modelcontextprotocol/server-everything` (the reference stdio server, image
 * localhost/kubemcp/everything) and the kubemcp image's own `kubemcp serve --transport stdio` —
 * behind the `kubemcp bridge` sidecar, in a namespace that enforces the restricted Pod Security
 * Standard.
 *
 * The controller runs in this process (`new Controller`, verify `auto` = out of the cluster:
 * its handshakes and its reads of a bridge's /ready go through the apiserver's service and pod
 * proxies), watching only this suite's namespace; the bridge image is the kubemcp image. MCP
 * clients reach the pods through the apiserver's service proxy (mcp-server/service-proxy.ts);
 * the in-cluster path (the Service's DNS name, kube-proxy) is exercised from inside a pod with
 * `kubectl exec`. The stdio process is killed from the node's containerd (`ctr tasks kill`),
 * as a crash or the OOM killer would.
 *
 * Skipped, with the reason printed, only where the machine cannot run the real node.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { pino } from 'pino';
import { REAL_NODE_NAME, realNodeStatus } from '../../cluster/index.js';
import { Controller } from '../../controller/controller.js';
import { clusterContainerd } from '../../images/cluster.js';
import { EVERYTHING_BIN, EVERYTHING_IMAGE, KUBEMCP_IMAGE } from '../../images/images.js';
import { connectThroughServiceProxy } from '../../mcp-server/service-proxy.js';
import {
  apiMessage,
  connectAs,
  deleteTestNamespace,
  kubeConfig,
  kubectl,
  mcpCondition as condition,
  mcpServers,
  readyEndpoints,
  waitFor,
  type McpServerObject as MCPServer,
} from '../kube.js';
import { createCallers, installCallerRole } from '../gateway/fixture.js';
import { startRealNodeController } from './setup.js';

const execFileAsync = promisify(execFile);
const status = realNodeStatus();
const skip = !status.available && status.reason?.kind === 'unsupported';
if (skip) process.stderr.write(`SKIPPED real-node bridge tests: ${status.reason?.message}\n`);
const describeReal = skip ? describe.skip : describe;

const ns = `bridge-${randomBytes(3).toString('hex')}`;
/** Small requests, so the pods fit the real node beside the other suites' pods. */
const SMALL = { requests: { cpu: '50m', memory: '96Mi' } };
/** Generous bounds: pods on a loaded 2-core machine start slowly. */
const READY_WAIT_MS = 240_000;

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const { get: getMcp, apply: applyMcp } = mcpServers(kc, ns);
const log = pino({ level: process.env.KUBEMCP_TEST_LOG ?? 'silent' });

/** Waits until the MCPServer is Ready with Verified=True; the error carries the last status. */
async function waitReadyVerified(name: string, timeoutMs = READY_WAIT_MS): Promise<MCPServer> {
  let last: MCPServer | undefined;
  try {
    return await waitFor(
      `MCPServer ${name} Ready and Verified`,
      async () => {
        const o = (last = await getMcp(name));
        return o.status?.phase === 'Ready' && condition(o, 'Verified')?.status === 'True' ? o : undefined;
      },
      timeoutMs,
      1000,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status?.conditions)}`);
  }
}

/** The one non-terminating pod of an MCPServer. */
async function podOf(name: string): Promise<k8s.V1Pod> {
  const pods = (
    await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${name}` })
  ).items.filter((p) => !p.metadata?.deletionTimestamp);
  if (pods.length !== 1) throw new Error(`expected one pod of ${name}, found ${pods.length}`);
  return pods[0]!;
}

const containerStatus = (p: k8s.V1Pod, c: string) => p.status?.containerStatuses?.find((s) => s.name === c);
const isReady = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const text = (r: unknown) =>
  ((r as { content: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

/**
 * From inside the bridged pod's sidecar (the kubemcp image has Node): an MCP `initialize` POSTed
 * to `url` (the Service's cluster DNS name: CoreDNS, then kube-proxy's rules to the pod), printing
 * the answer's serverInfo name. The in-cluster path a controller pod's handshake takes.
 */
async function initializeFromPod(pod: string, url: string): Promise<string> {
  const script = `
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'in-pod', version: '0' } } });
    fetch(${JSON.stringify(url)}, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body, signal: AbortSignal.timeout(20000) })
      .then(async (r) => { const t = await r.text(); const line = t.split('\\n').find((l) => l.startsWith('data:')); const m = JSON.parse(line ? line.slice(5) : t); process.stdout.write(m.result.serverInfo.name); })
      .catch((e) => { process.stderr.write(String(e)); process.exit(1); });`;
  return kubectl('exec', '-n', ns, pod, '-c', 'mcp-bridge', '--', 'node', '-e', script);
}

describeReal('bridged stdio MCPServers on the real node', () => {
  const clients: Client[] = [];
  let controller: Controller | undefined;
  const everything = 'everything';
  const everythingSpec = {
    image: EVERYTHING_IMAGE,
    transport: 'stdio',
    port: 3001,
    command: [EVERYTHING_BIN],
    args: ['stdio'],
    resources: SMALL,
    // This suite's controller runs out of the cluster and verifies through the apiserver's service
    // proxy, which drops Authorization: the bridging tests opt out of the gateway's auth (status
    // says so); the last test keeps the default and reaches the server as a user does.
    auth: { mode: 'none' },
  };

  const connect = async (name: string) => {
    const c = await connectThroughServiceProxy(kc, ns, name);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    controller = await startRealNodeController(kc, ns, status, log);
  }, 40 * 60_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await controller?.stop();
    await deleteTestNamespace(kc, ns);
  });

  it('the namespace enforces the restricted Pod Security Standard (a privileged pod is refused)', async () => {
    const err = await core
      .createNamespacedPod({
        namespace: ns,
        dryRun: 'All',
        body: {
          metadata: { name: 'privileged' },
          spec: { containers: [{ name: 'c', image: EVERYTHING_IMAGE, securityContext: { privileged: true } }] },
        },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(apiMessage(err)).toMatch(/violates PodSecurity "restricted:latest"/);
  });

  it(
    'server-everything as a bridged stdio MCPServer: admitted as restricted, Ready and Verified (status counts its real tools); a client through the Service lists tools, calls echo, reads a resource, gets progress',
    async () => {
      await applyMcp(everything, everythingSpec);
      const mcp = await waitReadyVerified(everything);
      const pod = await podOf(everything);
      expect(pod.spec?.nodeName).toBe(REAL_NODE_NAME);
      expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['bridge-init']);
      expect(pod.spec?.containers.map((c) => [c.name, c.image])).toEqual([
        ['mcp-server', EVERYTHING_IMAGE],
        ['mcp-bridge', KUBEMCP_IMAGE],
      ]);
      for (const c of [...pod.spec!.initContainers!, ...pod.spec!.containers]) {
        // What the restricted profile requires of every container, as the apiserver admitted it.
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
      }
      expect(containerStatus(pod, 'mcp-server')?.ready).toBe(true);
      expect(containerStatus(pod, 'mcp-bridge')?.ready).toBe(true);
      expect(mcp.status?.url).toBe(`http://${everything}.${ns}.svc.cluster.local:3001/mcp`);
      expect(mcp.status?.serverInfo?.name).toBe('mcp-servers/everything');
      expect(condition(mcp, 'AuthEnabled')).toMatchObject({ status: 'False', reason: 'AuthDisabled' });

      const client = await connect(everything);
      expect(client.getServerVersion()?.name).toBe('mcp-servers/everything');
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['echo', 'get-sum', 'trigger-long-running-operation']));
      expect(mcp.status?.tools?.count).toBe(tools.length);
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'hello from the real node' } }))).toBe(
        'Echo: hello from the real node',
      );
      const resources = (await client.listResources()).resources;
      expect(resources.length).toBeGreaterThan(0);
      const read = await client.readResource({ uri: resources[0]!.uri });
      expect(read.contents[0]?.uri).toBe(resources[0]!.uri);
      const progress: Array<[number, number | undefined]> = [];
      const done = await client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
        undefined,
        {
          onprogress: (p) => progress.push([p.progress, p.total]),
          timeout: 60_000,
        },
      );
      expect(text(done)).toMatch(/Long running operation completed/i);
      expect(progress).toEqual([
        [1, 4],
        [2, 4],
        [3, 4],
        [4, 4],
      ]);

      // The in-cluster path: from inside a pod, the Service's DNS name (CoreDNS, kube-proxy) reaches the bridge.
      expect(await initializeFromPod(pod.metadata!.name!, mcp.status!.url!)).toBe('mcp-servers/everything');
    },
    READY_WAIT_MS + 180_000,
  );

  it('two HTTP sessions, 50 interleaved concurrent calls each: every answer reaches the session that asked', async () => {
    await waitReadyVerified(everything);
    const a = await connect(everything);
    const b = await connect(everything);
    const calls: Array<Promise<[string, string]>> = [];
    for (let i = 0; i < 50; i++) {
      for (const [who, c] of [
        ['a', a],
        ['b', b],
      ] as const) {
        const msg = `${who}-${i}-${randomBytes(4).toString('hex')}`;
        calls.push(
          c
            .callTool({ name: 'echo', arguments: { message: msg } }, undefined, { timeout: 120_000 })
            .then((r) => [msg, text(r)]),
        );
      }
    }
    const answers = await Promise.all(calls);
    expect(answers).toHaveLength(100);
    for (const [msg, got] of answers) expect(got).toBe(`Echo: ${msg}`);
  }, 300_000);

  it(
    'killing the stdio process: the in-flight call gets an error (not a hang), the container restarts, the bridge re-initializes, new calls succeed on the same session',
    async () => {
      await waitReadyVerified(everything);
      const client = await connect(everything);
      const pod = await podOf(everything);
      const before = containerStatus(pod, 'mcp-server')!;
      const bridgeBefore = containerStatus(pod, 'mcp-bridge')!.restartCount;
      const id = before.containerID?.replace(/^containerd:\/\//, '');
      expect(id).toBeTruthy();
      const cd = clusterContainerd();
      if (!cd) throw new Error('no containerd of the real node');

      let progressed = 0;
      const inflight = client
        .callTool({ name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 60 } }, undefined, {
          onprogress: () => void progressed++,
          timeout: 180_000,
        })
        .then(
          () => 'answered',
          (e: Error) => `error: ${e.message}`,
        );
      await waitFor('the long-running call to report progress', async () => progressed > 0, 60_000, 200);
      // SIGKILL to the server container's task (its pid 1, the server itself after the launcher's exec).
      await execFileAsync(cd.ctr, ['-a', cd.address, '-n', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', id!], {
        timeout: 60_000,
      });
      // Bounded: the bridge answers in-flight requests at once when the process's stdout closes.
      const outcome = await Promise.race([
        inflight,
        new Promise<string>((r) => setTimeout(() => r('no answer within 90 s'), 90_000).unref()),
      ]);
      expect(outcome).toMatch(/^error: .*exited while handling tools\/call/);

      const restarted = await waitFor(
        'the server container restarted and the pod Ready again',
        async () => {
          const p = await podOf(everything);
          return (containerStatus(p, 'mcp-server')?.restartCount ?? 0) > before.restartCount && isReady(p)
            ? p
            : undefined;
        },
        READY_WAIT_MS,
        1000,
      );
      // The apiserver's service proxy routes by the EndpointSlices, which list the pod ready again a
      // moment after the kubelet says so: wait for that before calling through the Service.
      await waitFor(
        'the Service to list the restarted pod as a ready endpoint',
        async () => (await readyEndpoints(kc, ns, everything)).some((e) => e.startsWith(`${restarted.status!.podIP}:`)),
        60_000,
        500,
      );
      expect(restarted.metadata!.name).toBe(pod.metadata!.name); // same pod: the container restarted
      expect(containerStatus(restarted, 'mcp-bridge')?.restartCount).toBe(bridgeBefore); // the bridge kept running
      // The bridge initialized the new process; the session it kept works.
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'after the restart' } }))).toBe(
        'Echo: after the restart',
      );
      const fresh = await connect(everything);
      expect(text(await fresh.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }))).toMatch(/42/);
      const metrics = await kubectl(
        'get',
        '--raw',
        `/api/v1/namespaces/${ns}/pods/${pod.metadata!.name}:3001/proxy/metrics`,
      );
      // One connection of the bridge per start of the server container: the restart was re-initialized.
      const starts = Number(/^kubemcp_bridge_process_starts_total (\d+)/m.exec(metrics)?.[1]);
      expect(starts).toBe((containerStatus(restarted, 'mcp-server')?.restartCount ?? 0) + 1);
    },
    READY_WAIT_MS + 300_000,
  );

  it(
    'kubemcp serve --transport stdio (the kubemcp image) bridged the same way: Ready, Verified, tools/list through the Service',
    async () => {
      const name = 'kubemcp-stdio';
      await applyMcp(name, {
        image: KUBEMCP_IMAGE,
        transport: 'stdio',
        port: 3001,
        command: ['node', '/app/dist/cli/kubemcp.js'],
        args: ['serve', '--transport', 'stdio', '--read-only'],
        resources: SMALL,
        auth: { mode: 'none' },
      });
      const mcp = await waitReadyVerified(name);
      const pod = await podOf(name);
      expect(pod.spec?.nodeName).toBe(REAL_NODE_NAME);
      const client = await connect(name);
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['list-resources', 'get-resource', 'list-mcpservers']));
      expect(tools).not.toContain('create-pod'); // --read-only reached the process through args
      expect(mcp.status?.tools?.count).toBe(tools.length);
      expect(mcp.status?.serverInfo?.name).toBe(client.getServerVersion()?.name);
      expect(await initializeFromPod(pod.metadata!.name!, mcp.status!.url!)).toBe(client.getServerVersion()?.name);
    },
    READY_WAIT_MS + 120_000,
  );

  it(
    "a stdio process that never answers initialize: the pod is not Ready and the MCPServer status says why (BridgeNotReady, the bridge's reason)",
    async () => {
      const name = 'mute';
      // busybox sleep from the image's base: it holds the FIFOs open and never reads a line.
      await applyMcp(name, { ...everythingSpec, command: ['sleep', '3600'], args: [] });
      let last: MCPServer | undefined;
      const mcp = await waitFor(
        'the initialize timeout in the MCPServer status',
        async () => {
          const o = (last = await getMcp(name));
          return /has not answered initialize within 30 s/.test(condition(o, 'Ready')?.message ?? '') ? o : undefined;
        },
        READY_WAIT_MS,
        1000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; last conditions: ${JSON.stringify(last?.status?.conditions)}`);
      });
      expect(mcp.status?.phase).toBe('Pending');
      expect(condition(mcp, 'Ready')).toMatchObject({ status: 'False', reason: 'BridgeNotReady' });
      expect(condition(mcp, 'Ready')?.message).toMatch(
        /container mcp-bridge: not ready: the stdio process has not answered initialize within 30 s/,
      );
      expect(condition(mcp, 'DeploymentReady')).toMatchObject({ status: 'False', reason: 'BridgeNotReady' });
      expect(condition(mcp, 'Verified')?.status).not.toBe('True');
      const pod = await podOf(name);
      expect(isReady(pod)).toBe(false);
      expect(containerStatus(pod, 'mcp-server')).toMatchObject({ ready: true, restartCount: 0 }); // running, just silent
      expect(containerStatus(pod, 'mcp-bridge')?.ready).toBe(false);
    },
    READY_WAIT_MS + 60_000,
  );
  it(
    'a bridged server with the default auth (kubernetes): an editor through kubectl port-forward with its token lists and calls tools; no token 401, view 403; audit lines name the caller; the out-of-cluster handshake says AuthRequired',
    async () => {
      const name = 'everything-auth';
      const spec = { ...everythingSpec, auth: undefined }; // the default: kubernetes
      await installCallerRole(kc);
      await createCallers(kc, ns, { caller: 'edit', viewer: 'view' });
      await applyMcp(name, spec);
      const url = `http://${name}.${ns}.svc.cluster.local:3001/mcp`;
      // The controller (a process here) verifies through the service proxy, which drops its
      // credentials on the way: the gateway refuses and status says so, truthfully.
      const mcp = await waitFor(
        `MCPServer ${name} Verified False AuthRequired`,
        async () => {
          const o = await getMcp(name);
          return condition(o, 'Verified')?.reason === 'AuthRequired' ? o : undefined;
        },
        READY_WAIT_MS,
        1000,
      );
      expect(condition(mcp, 'Verified')?.message).toMatch(/HTTP 401/);
      expect(condition(mcp, 'AuthEnabled')).toMatchObject({ status: 'True', reason: 'KubernetesAuth' });
      const pod = await waitFor(
        `the pod of ${name} ready`,
        async () => {
          const p = await podOf(name).catch(() => undefined);
          return p && isReady(p) ? p : undefined;
        },
        READY_WAIT_MS,
        1000,
      );
      const f = await connectAs(kc, ns, name, 'caller', url);
      clients.push(f.client);
      try {
        expect(f.client.getServerVersion()?.name).toBe('mcp-servers/everything');
        expect((await f.client.listTools()).tools.map((t) => t.name)).toContain('echo');
        expect(text(await f.client.callTool({ name: 'echo', arguments: { message: 'as caller' } }))).toBe(
          'Echo: as caller',
        );
      } finally {
        await f.close();
      }
      await expect(connectAs(kc, ns, name, undefined, url)).rejects.toMatchObject({
        code: 401,
        message: expect.stringMatching(/no bearer token/),
      });
      await expect(connectAs(kc, ns, name, 'viewer', url)).rejects.toMatchObject({
        code: 403,
        message: expect.stringMatching(/Forbidden: .*mcpservers\/proxy/),
      });
      const audit = (await kubectl('logs', '-n', ns, pod.metadata!.name!, '-c', 'mcp-bridge'))
        .split('\n')
        .filter((l) => l.includes('"audit":"mcp"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(audit).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            user: `system:serviceaccount:${ns}:caller`,
            method: 'tools/call',
            tool: 'echo',
            outcome: 'success',
          }),
          expect.objectContaining({ outcome: 'unauthenticated', status: 401 }),
          expect.objectContaining({ user: `system:serviceaccount:${ns}:viewer`, outcome: 'denied', status: 403 }),
        ]),
      );
    },
    READY_WAIT_MS * 2 + 120_000,
  );
});
