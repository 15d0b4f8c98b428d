/**
 * The MCP handshake of the controller (controller/verify.ts) against real servers on 127.0.0.1:
 * `kubemcp serve --transport streamable-http` as a child process (with and without a bearer
 * token), a plain HTTP 200 page, a 401 server with a WWW-Authenticate challenge, a 404 server, a
 * server that never answers, and a closed port; the Verifier's one-handshake-in-flight rule; and
 * the apiserver's service proxy path (the real kube-apiserver answering for a Service without
 * endpoints). Every process and server started here is stopped; every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import * as k8s from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import { parseMCPServerSpec } from '../../charts/api/validate.js';
import { verifyTargetFor } from '../../controller/controller.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { MAX_TOOL_NAMES, VERIFY_CONFIRM_MS, Verifier, mcpHandshake } from '../../controller/verify.js';
import { createNamespace, kubeConfig, waitFor } from '../kube.js';
import { closeServer, startHttp, startServe } from './servers.js';

let serve: Awaited<ReturnType<typeof startServe>>;
let authServe: Awaited<ReturnType<typeof startServe>>;
const servers: Server[] = [];
let plain: string, unauthorized: string, notFound: string, closedPort: string;
let hanging: Awaited<ReturnType<typeof startHttp>>;

beforeAll(async () => {
  [serve, authServe] = await Promise.all([startServe(), startServe(['--token', 'sekret'])]);
  const p = await startHttp((res) =>
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>It works!</body></html>'),
  );
  const u = await startHttp((res) =>
    res
      .writeHead(401, {
        'www-authenticate':
          'Bearer realm="mcp", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource"',
        'content-type': 'text/plain',
      })
      .end('unauthorized'),
  );
  const n = await startHttp((res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('no such page'));
  hanging = await startHttp(() => undefined); // accepts and never answers
  const c = await startHttp(() => undefined);
  await closeServer(c.server); // a port nobody listens on any more
  servers.push(p.server, u.server, n.server, hanging.server);
  [plain, unauthorized, notFound, closedPort] = [p.url, u.url, n.url, c.url];
}, 300_000);

afterAll(async () => {
  serve?.stop();
  authServe?.stop();
  await Promise.all(servers.map(closeServer));
});

describe('mcpHandshake against real servers on 127.0.0.1', () => {
  it('kubemcp serve: Verified, with its serverInfo, protocol version, capabilities and its real tool list', async () => {
    const r = await mcpHandshake({ url: serve.url, timeoutMs: 20_000 });
    expect(r).toMatchObject({ ok: true, reason: 'Verified' });
    // What an independent SDK client sees from the same server.
    const client = new Client({ name: 'test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(serve.url)));
    const tools = (await client.listTools()).tools;
    const prompts = (await client.listPrompts()).prompts;
    const info = client.getServerVersion()!;
    await client.close();
    expect(tools.length).toBeGreaterThan(10);
    expect(r.tools!.count).toBe(tools.length);
    expect(r.tools!.names).toEqual(tools.slice(0, MAX_TOOL_NAMES).map((t) => t.name));
    expect(r.tools!.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(r.serverInfo).toMatchObject({ name: info.name, version: info.version });
    // kubemcp serve answers server/discover (issue 18): verified in the modern era.
    expect(r.serverInfo).toMatchObject({ protocolVersion: '2026-07-28', era: 'modern' });
    expect(r.serverInfo!.capabilities).toEqual(expect.arrayContaining(['prompts', 'resources', 'tools']));
    expect(r.prompts).toEqual({ count: prompts.length });
    expect(r.resources!.count).toBeGreaterThanOrEqual(1);
    expect(r.message).toContain(`${tools.length} tools`);
    // The same list again hashes the same; a server with fewer tools (read-only) does not.
    expect((await mcpHandshake({ url: serve.url, timeoutMs: 20_000 })).tools!.hash).toBe(r.tools!.hash);
  });

  it('kubemcp serve with --token: AuthRequired with its WWW-Authenticate challenge', async () => {
    const r = await mcpHandshake({ url: authServe.url, timeoutMs: 20_000 });
    expect(r).toMatchObject({ ok: false, reason: 'AuthRequired' });
    // kubemcp serve's 401 comes from the MCP SDK's requireBearerAuth (lib/http-guard.ts).
    expect(r.message).toBe(
      'HTTP 401: the server requires authorization; WWW-Authenticate: Bearer error="invalid_token", error_description="Missing Authorization header"',
    );
  });

  it('a 401 server: AuthRequired naming the challenge (resource metadata included)', async () => {
    const r = await mcpHandshake({ url: unauthorized, timeoutMs: 5_000 });
    expect(r.reason).toBe('AuthRequired');
    expect(r.message).toContain(
      'WWW-Authenticate: Bearer realm="mcp", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource"',
    );
  });

  it('an HTTP 200 page that is not MCP: ProtocolError', async () => {
    const r = await mcpHandshake({ url: plain, timeoutMs: 5_000 });
    expect(r).toMatchObject({ ok: false, reason: 'ProtocolError' });
    expect(r.message).toContain('text/html');
  });

  it('a 404: HTTPError with the status', async () => {
    expect(await mcpHandshake({ url: notFound, timeoutMs: 5_000 })).toMatchObject({
      ok: false,
      reason: 'HTTPError',
      message: 'HTTP 404: no such page',
    });
  });

  it('a server that never answers: Timeout after the deadline', async () => {
    const r = await mcpHandshake({ url: hanging.url, timeoutMs: 1_500 });
    expect(r).toMatchObject({ ok: false, reason: 'Timeout', message: 'no complete MCP handshake within 1500 ms' });
  });

  it('nobody listening: ConnectionFailed', async () => {
    const r = await mcpHandshake({ url: closedPort, timeoutMs: 5_000 });
    expect(r.reason).toBe('ConnectionFailed');
    expect(r.message).toContain('ECONNREFUSED');
  });
});

describe('Verifier', () => {
  it('runs at most one handshake per MCPServer at a time, re-verifies when the inputs change, counts results in metrics', async () => {
    const metrics = new ControllerMetrics(false);
    const done: string[] = [];
    const before = hanging.requests();
    const v = new Verifier({
      intervalMs: 3_600_000,
      timeoutMs: 1_500,
      onDone: (k) => done.push(k),
      metrics,
      log: pino({ level: 'silent' }),
    });
    const target = () => ({ url: hanging.url });
    for (let i = 0; i < 5; i++)
      expect(v.check('ns/a', 'pods=a1', target)).toMatchObject({ inFlight: true, current: false });
    expect(v.check('ns/a', 'pods=a1,a2', target).inFlight).toBe(true); // changed inputs wait for the running one
    await waitFor('first handshake done', async () => done.length === 1, 10_000, 50);
    expect(hanging.requests() - before).toBe(1); // one POST initialize reached the server
    const o = v.check('ns/a', 'pods=a1,a2', target); // the result is for old inputs: a new handshake starts
    expect(o).toMatchObject({ current: false, inFlight: true, result: { reason: 'Timeout' } });
    await waitFor('second handshake done', async () => done.length === 2, 10_000, 50);
    const settled = v.check('ns/a', 'pods=a1,a2', target);
    expect(settled).toMatchObject({ current: true, inFlight: false });
    // Two failures in a row: retried after 2 s x 2 (jittered +-10%), not after the 1 h interval.
    expect(settled.requeueAfterMs).toBeGreaterThan(3_000);
    expect(settled.requeueAfterMs).toBeLessThanOrEqual(4_400);
    expect((await metrics.handshakes.get()).values).toEqual([
      expect.objectContaining({ labels: { result: 'Timeout' }, value: 2 }),
    ]);
    expect((await metrics.handshakeDuration.get()).values.find((x) => x.metricName?.endsWith('_count'))?.value).toBe(2);
  });

  it('re-verifies when the periodic interval has passed, and not before', async () => {
    const page = await startHttp((res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'));
    servers.push(page.server);
    const done: string[] = [];
    const v = new Verifier({
      intervalMs: 1_000,
      timeoutMs: 5_000,
      onDone: (k) => done.push(k),
      log: pino({ level: 'silent' }),
    });
    const target = () => ({ url: page.url });
    v.check('ns/b', 'x', target);
    await waitFor('first handshake', async () => done.length === 1, 10_000, 20);
    const first = v.check('ns/b', 'x', target);
    expect(first).toMatchObject({ current: true, inFlight: false, result: { reason: 'ProtocolError' } });
    expect(first.requeueAfterMs).toBeGreaterThanOrEqual(800);
    expect(page.requests()).toBe(1);
    await waitFor(
      'a second handshake once due',
      async () => {
        v.check('ns/b', 'x', target);
        return done.length === 2;
      },
      10_000,
      100,
    );
    expect(page.requests()).toBe(2);
  });
});

describe('Verifier after a rollout', () => {
  it('confirms the first successful handshake for new inputs once, then waits for the interval', async () => {
    // The first handshake after a rollout may reach a pod on its way out (kube-proxy trails the
    // pods the controller sees) and count the old tool list: a second one follows soon after.
    const counts = [3, 4, 4];
    let calls = 0;
    const done: string[] = [];
    const v = new Verifier({
      intervalMs: 3_600_000,
      timeoutMs: 1_000,
      onDone: (k) => done.push(k),
      log: pino({ level: 'silent' }),
      handshake: async () => ({
        ok: true,
        reason: 'Verified',
        message: 'ok',
        durationMs: 1,
        tools: { count: counts[Math.min(calls++, counts.length - 1)]!, names: [], hash: 'h' },
      }),
    });
    const target = () => ({ url: 'http://127.0.0.1:1/mcp' });
    v.check('ns/c', 'pods=new', target);
    await waitFor('first handshake', async () => done.length === 1, 5_000, 10);
    const first = v.check('ns/c', 'pods=new', target);
    expect(first).toMatchObject({ current: true, inFlight: false, result: { tools: { count: 3 } } });
    expect(first.requeueAfterMs).toBeLessThanOrEqual(VERIFY_CONFIRM_MS * 1.1);
    expect(first.requeueAfterMs).toBeGreaterThan(VERIFY_CONFIRM_MS * 0.8);
    expect(calls).toBe(1);
    // The confirmation, once due (simulated by changing nothing but the clock is not ours: call check until it ran).
    const v2 = v as unknown as { states: Map<string, { dueAt: number }> };
    v2.states.get('ns/c')!.dueAt = 0;
    v.check('ns/c', 'pods=new', target);
    await waitFor('confirmation handshake', async () => done.length === 2, 5_000, 10);
    const confirmed = v.check('ns/c', 'pods=new', target);
    expect(confirmed).toMatchObject({ current: true, inFlight: false, result: { tools: { count: 4 } } });
    expect(confirmed.requeueAfterMs).toBeGreaterThan(3_000_000); // back to the interval
    expect(calls).toBe(2);
  });
});

describe('through the apiserver service proxy (out of cluster)', () => {
  const kc = kubeConfig();
  let ns: string;
  beforeAll(async () => {
    ns = await createNamespace(kc, 'verify');
    // A Service with a port named mcp and no pods behind it: the real apiserver answers for it.
    await kc.makeApiClient(k8s.CoreV1Api).createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'empty' },
        spec: { selector: { app: 'nothing-here' }, ports: [{ name: 'mcp', port: 3001, targetPort: 'mcp' }] },
      },
    });
  });
  afterAll(async () => {
    await kc
      .makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: ns })
      .catch(() => undefined);
  });

  it('reaches the Service through /api/v1/namespaces/<ns>/services/http:<name>:mcp/proxy/mcp with the kubeconfig credentials', async () => {
    const target = verifyTargetFor(kc, 'proxy')(ns, 'empty', parseMCPServerSpec({ image: 'x', port: 3001 }));
    expect(target.url).toBe(
      `${kc.getCurrentCluster()!.server}/api/v1/namespaces/${ns}/services/http:empty:mcp/proxy/mcp`,
    );
    const r = await mcpHandshake({ ...target, timeoutMs: 10_000 });
    // Authenticated and routed (not 401/403/404): the apiserver itself says the Service has no endpoints.
    expect(r).toMatchObject({ ok: false, reason: 'ConnectionFailed' });
    expect(r.message).toMatch(
      /^the apiserver's service proxy could not reach the server: no endpoints available for service "(http:)?empty(:mcp)?"/,
    );
  });

  it('dns mode uses status.url (the Service DNS name and spec.path)', () => {
    const t = verifyTargetFor(kc, 'dns')(
      'team-a',
      'github',
      parseMCPServerSpec({ image: 'x', port: 3001, path: '/v1/mcp' }),
    );
    expect(t).toEqual({ url: 'http://github.team-a.svc.cluster.local:3001/v1/mcp' });
  });
});
