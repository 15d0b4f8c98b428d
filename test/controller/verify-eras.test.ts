/**
 * The controller's verification in both MCP eras (issue 18; controller/verify.ts), against real
 * servers on 127.0.0.1, every request they receive recorded:
 * - `kubemcp serve -t http --legacy-only` in-process (a 2025-era server): `server/discover` is tried
 *   first, then `initialize`; status records 2025-11-25 and era legacy, with the tool count and the
 *   same hash a v1 client's tool list gives; plain `kubemcp serve -t http` (both eras) is verified
 *   in the modern era with the same tools;
 * - a modern-only server built with the SDK v2 (`createMcpHandler(..., {legacy: 'reject'})`, which
 *   answers `initialize` with an error) and one serving both eras: 2026-07-28 and era modern, no
 *   `initialize`, no session, the tools a pinned v2 client lists;
 * - failures that must not hide behind a fallback: nobody listening, a 503 to the probe, and the
 *   gateway (gateway/proxy.ts with TokenReview/SAR against the local cluster's apiserver) in front
 *   of kubemcp serve answering 401 to no token and to a wrong-audience token: AuthRequired with the
 *   gateway's challenge, and no `initialize` sent after the refused probe; with the controller's
 *   own audience-bound token (controller/token.ts) the same gateway verifies;
 * - status (controller/status.ts): Verified condition and `status.serverInfo.protocolVersion`/`era`,
 *   valid against the MCPServer status schema; and end to end, a Controller reconciling MCPServers
 *   on kwok (verifyTarget pointing at the servers above) writes them through the real apiserver's
 *   CRD (not pruned), and a 401 from the gateway as Verified=False/AuthRequired, phase Failed.
 * Every server, namespace and binding made here is removed; every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pino from 'pino';
import { Registry } from 'prom-client';
import { mcpServerStatus } from '../../charts/api/schema.js';
import { parseMCPServerSpec } from '../../charts/api/validate.js';
import { Controller } from '../../controller/controller.js';
import { computeStatus, type ObservedState } from '../../controller/status.js';
import { AudienceTokens } from '../../controller/token.js';
import { mcpHandshake, toolsHash, type HandshakeResult } from '../../controller/verify.js';
import { startGatewayProxy, type RunningGatewayProxy } from '../../gateway/proxy.js';
import { accessFromOptions } from '../../gateway/setup.js';
import { kubeFetch, type FetchLike } from '../../lib/kube-http.js';
import { startHttpServer, type HttpServer } from '../mcp-server/helpers.js';
import { gatewayFixture, type GatewayFixture } from '../gateway/fixture.js';
import { apply, createNamespace, kubeConfig } from '../kube.js';
import { mcpsApi } from './mcps.js';
import type { MCPS } from '../shapes.js';
import * as k8s from '@kubernetes/client-node';
import { closeServer, startHttp, startModern } from './servers.js';

/** What one request carried: HTTP method and, for a POST, the JSON-RPC method(s). */
interface Seen {
  http: string;
  rpc: string[];
}

/** A fetch that records every request it sends (method and JSON-RPC methods) into `seen`. */
function recording(seen: Seen[], base: FetchLike = globalThis.fetch as FetchLike): FetchLike {
  return async (url, init) => {
    let rpc: string[] = [];
    if (typeof init?.body === 'string') {
      const body = JSON.parse(init.body) as { method?: string } | Array<{ method?: string }>;
      rpc = (Array.isArray(body) ? body : [body]).map((m) => m.method ?? '(response)');
    }
    seen.push({ http: init?.method ?? 'GET', rpc });
    return base(url, init);
  };
}
const rpcs = (seen: Seen[]) => seen.flatMap((s) => s.rpc);

/** The tools a client pinned to 2026-07-28 lists from `url`. */
async function pinnedTools(url: string) {
  const c = new ClientV2({ name: 'test', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  try {
    await c.connect(new TransportV2(new URL(url)));
    return (await c.listTools()).tools;
  } finally {
    await c.close();
  }
}

/** The status an MCPServer gets from `result` (ready Deployment and Service, verification on). */
function statusFor(result: HandshakeResult) {
  const obs: ObservedState = {
    name: 'kube-mcp',
    namespace: 'team-a',
    generation: 1,
    spec: parseMCPServerSpec({ image: 'x', port: 3001 }),
    deployment: { replicas: 1, readyReplicas: 1, generation: 1, observedGeneration: 1 },
    service: { clusterIP: '10.96.0.5' },
    verify: { state: 'checked', result, inFlight: false },
  };
  return computeStatus(obs, undefined, '2026-12-07T00:00:00Z');
}
const verifiedCondition = (s: ReturnType<typeof statusFor>) => s.conditions?.find((c) => c.type === 'Verified');

let serve: HttpServer;
let serveBoth: HttpServer;
let modernOnly: Awaited<ReturnType<typeof startModern>>;
let bothEras: Awaited<ReturnType<typeof startModern>>;

beforeAll(async () => {
  [serve, serveBoth, modernOnly, bothEras] = await Promise.all([
    startHttpServer({}, { legacyOnly: true }),
    startHttpServer(),
    startModern('reject'),
    startModern('stateless'),
  ]);
}, 120_000);

afterAll(async () => {
  await serve?.close();
  await serveBoth?.close();
  await modernOnly?.close();
  await bothEras?.close();
});

describe('a 2025-era server: kubemcp serve -t http --legacy-only', () => {
  it('tries server/discover, falls back to initialize: Verified, 2025-11-25, era legacy, the v1 tool list and hash', async () => {
    const seen: Seen[] = [];
    const r = await mcpHandshake({ url: serve.url, fetch: recording(seen), timeoutMs: 20_000 });
    expect(r).toMatchObject({ ok: true, reason: 'Verified' });
    expect(r.serverInfo).toMatchObject({ protocolVersion: '2025-11-25', era: 'legacy' });
    // The probe came first, then the 2025 handshake on the same URL, then the lists and the DELETE.
    expect(rpcs(seen).slice(0, 3)).toEqual(['server/discover', 'initialize', 'notifications/initialized']);
    expect(rpcs(seen)).toContain('tools/list');
    expect(seen.at(-1)!.http).toBe('DELETE');
    // The same tools a 2025 client (SDK v1) lists, hashed the same as before the upgrade.
    const v1 = new Client({ name: 'test', version: '1' });
    await v1.connect(new StreamableHTTPClientTransport(new URL(serve.url)));
    const tools = (await v1.listTools()).tools;
    expect(r.serverInfo).toMatchObject({ name: v1.getServerVersion()!.name, version: v1.getServerVersion()!.version });
    await v1.close();
    expect(r.tools).toMatchObject({ count: tools.length, hash: toolsHash(tools) });
    expect(r.message).toBe(
      `MCP handshake succeeded (legacy era): ${r.serverInfo!.name} ${r.serverInfo!.version}, protocol 2025-11-25, ${tools.length} tools`,
    );
    const status = statusFor(r);
    expect(verifiedCondition(status)).toMatchObject({ status: 'True', reason: 'Verified', message: r.message });
    expect(status.serverInfo).toMatchObject({ protocolVersion: '2025-11-25', era: 'legacy' });
    expect(status.tools).toEqual(r.tools);
    expect(() => mcpServerStatus.parse(status)).not.toThrow();
  });
});

describe('kubemcp serve -t http (both eras, issue 18)', () => {
  it('is Verified in the modern era over server/discover alone, with the tools a 2025 client lists (same count and hash)', async () => {
    const seen: Seen[] = [];
    const r = await mcpHandshake({ url: serveBoth.url, fetch: recording(seen), timeoutMs: 20_000 });
    expect(r).toMatchObject({ ok: true, reason: 'Verified' });
    expect(r.serverInfo).toMatchObject({ name: 'kubemcp', protocolVersion: '2026-07-28', era: 'modern' });
    expect(rpcs(seen)).not.toContain('initialize');
    expect(seen.some((s) => s.http === 'DELETE')).toBe(false); // no session was opened
    const v1 = new Client({ name: 'test', version: '1' });
    await v1.connect(new StreamableHTTPClientTransport(new URL(serveBoth.url)));
    const tools = (await v1.listTools()).tools;
    await v1.close();
    expect(r.tools).toMatchObject({ count: tools.length, hash: toolsHash(tools) });
  });
});

describe('a 2026-07-28 server (SDK v2 createMcpHandler)', () => {
  it('modern-only: Verified over server/discover, 2026-07-28, era modern, no initialize and no session', async () => {
    const seen: Seen[] = [];
    const r = await mcpHandshake({ url: modernOnly.url, fetch: recording(seen), timeoutMs: 10_000 });
    expect(r).toMatchObject({ ok: true, reason: 'Verified' });
    expect(r.serverInfo).toMatchObject({
      name: 'modern-fixture',
      version: '2.4.0-test',
      protocolVersion: '2026-07-28',
      era: 'modern',
    });
    expect(r.serverInfo!.capabilities).toContain('tools');
    expect(rpcs(seen)[0]).toBe('server/discover');
    expect(rpcs(seen)).not.toContain('initialize');
    expect(seen.map((s) => s.http)).not.toContain('DELETE');
    const tools = await pinnedTools(modernOnly.url);
    expect(tools.map((t) => t.name).sort()).toEqual(['echo', 'now']);
    expect(r.tools).toEqual({ count: 2, names: tools.map((t) => t.name), hash: toolsHash(tools) });
    // Without the probe it could not be verified at all: initialize is refused.
    const legacy = new Client({ name: 'test', version: '1' });
    await expect(legacy.connect(new StreamableHTTPClientTransport(new URL(modernOnly.url)))).rejects.toThrow();
    await legacy.close();

    const status = statusFor(r);
    expect(verifiedCondition(status)).toMatchObject({ status: 'True', reason: 'Verified' });
    expect(verifiedCondition(status)!.message).toContain('(modern era)');
    expect(status.serverInfo).toMatchObject({ protocolVersion: '2026-07-28', era: 'modern' });
    expect(status.tools!.count).toBe(2);
    expect(() => mcpServerStatus.parse(status)).not.toThrow();
  });

  it('a server of both eras is verified in the modern one', async () => {
    const seen: Seen[] = [];
    const r = await mcpHandshake({ url: bothEras.url, fetch: recording(seen), timeoutMs: 10_000 });
    expect(r).toMatchObject({
      ok: true,
      serverInfo: { protocolVersion: '2026-07-28', era: 'modern' },
      tools: { count: 2 },
    });
    expect(rpcs(seen)).not.toContain('initialize');
  });
});

describe('failures are reported, not hidden by the fallback', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map(closeServer));
  });

  it('nobody listening: ConnectionFailed naming the refusal, and no status change of serverInfo', async () => {
    const c = await startHttp(() => undefined);
    await closeServer(c.server);
    const r = await mcpHandshake({ url: c.url, timeoutMs: 5_000 });
    expect(r).toMatchObject({ ok: false, reason: 'ConnectionFailed' });
    expect(r.message).toContain('ECONNREFUSED');
    const status = statusFor(r);
    expect(verifiedCondition(status)).toMatchObject({
      status: 'False',
      reason: 'ConnectionFailed',
      message: r.message,
    });
    expect(status.serverInfo).toBeUndefined();
  });

  it('a 503 to the probe: HTTPError, and no initialize follows', async () => {
    const s = await startHttp((res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream overloaded'));
    servers.push(s.server);
    const r = await mcpHandshake({ url: s.url, timeoutMs: 5_000 });
    expect(r).toMatchObject({ ok: false, reason: 'HTTPError', message: 'HTTP 503: upstream overloaded' });
    expect(s.requests()).toBe(1);
  });
});

describe('through the gateway (TokenReview + SAR against the local apiserver) in front of kubemcp serve', () => {
  const kc = kubeConfig();
  const NAME = 'kube-mcp';
  let fx: GatewayFixture;
  let audience: string;
  let gw: RunningGatewayProxy;

  beforeAll(async () => {
    fx = await gatewayFixture(kc, 'verify-eras', { controller: 'edit' });
    audience = `http://${NAME}.${fx.ns}.svc.cluster.local:3001/mcp`;
    const access = accessFromOptions(
      { auth: 'kubernetes', mcpserver: `${fx.ns}/${NAME}`, audience: [audience] },
      pino({ level: 'silent' }),
      new Registry(),
      fx.gatewayKc,
    );
    gw = await startGatewayProxy({
      upstream: new URL(serve.url).origin,
      port: 0,
      access,
      registry: new Registry(),
      log: pino({ level: 'silent' }),
    });
  }, 180_000);

  afterAll(async () => {
    await gw?.close();
    await fx?.cleanup();
  });

  it('no token: AuthRequired with the gateway challenge; the refused probe is not followed by initialize', async () => {
    const seen: Seen[] = [];
    const r = await mcpHandshake({ url: `${gw.url}/mcp`, fetch: recording(seen), timeoutMs: 10_000 });
    expect(r).toMatchObject({ ok: false, reason: 'AuthRequired' });
    expect(r.message).toBe('HTTP 401: the server requires authorization; WWW-Authenticate: Bearer realm="kubemcp"');
    expect(rpcs(seen)).toEqual(['server/discover']);
    const status = statusFor(r);
    expect(verifiedCondition(status)).toMatchObject({ status: 'False', reason: 'AuthRequired', message: r.message });
    expect(status.phase).toBe('Failed'); // AuthRequired lasts until something changes
  });

  it('a token for another audience: AuthRequired, invalid_token', async () => {
    const token = await fx.token('controller', ['https://somewhere-else.example']);
    const withToken: FetchLike = (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('Authorization', `Bearer ${token}`);
      return fetch(url, { ...init, headers });
    };
    const r = await mcpHandshake({ url: `${gw.url}/mcp`, fetch: withToken, timeoutMs: 10_000 });
    expect(r).toMatchObject({ ok: false, reason: 'AuthRequired' });
    expect(r.message).toBe(
      'HTTP 401: the server requires authorization; WWW-Authenticate: Bearer realm="kubemcp", error="invalid_token"',
    );
  });

  it("the controller's audience-bound token (controller/token.ts): Verified, the same tools as direct", async () => {
    const tokens = new AudienceTokens({
      server: kc.getCurrentCluster()!.server.replace(/\/+$/, ''),
      fetch: kubeFetch(kc),
      self: { namespace: fx.ns, name: 'controller' },
    });
    const seen: Seen[] = [];
    const r = await mcpHandshake({
      url: `${gw.url}/mcp`,
      fetch: recording(seen, tokens.fetchFor(audience, globalThis.fetch as FetchLike)),
      timeoutMs: 20_000,
    });
    expect(tokens.lastError).toBeUndefined();
    expect(r).toMatchObject({ ok: true, reason: 'Verified' });
    const direct = await mcpHandshake({ url: serve.url, timeoutMs: 20_000 });
    expect(r.tools).toEqual(direct.tools);
    expect(rpcs(seen)[0]).toBe('server/discover');
    // The gateway passes a 2025 server's era through, or (once it answers server/discover for
    // legacy servers, issue 18) speaks the modern era itself: either way the pair is consistent.
    expect([
      ['legacy', '2025-11-25'],
      ['modern', '2026-07-28'],
    ]).toContainEqual([r.serverInfo!.era, r.serverInfo!.protocolVersion]);
  });
  describe('the controller writes it to status (real apiserver, MCPServers on kwok)', () => {
    let ns: string;
    let controller: Controller;
    const targets: Record<string, string> = {};
    const { waitPhase } = mcpsApi(kc);
    const cond = (o: MCPS, type: string) => (o.status?.conditions ?? []).find((c) => c.type === type);

    beforeAll(async () => {
      // kwok runs no containers: verifyTarget points each MCPServer at a server on 127.0.0.1.
      Object.assign(targets, { modern: modernOnly.url, legacy: serve.url, locked: `${gw.url}/mcp` });
      ns = await createNamespace(kc, 'verify-eras-ctl');
      controller = new Controller({
        kubeConfig: kc,
        log: pino({ level: 'silent' }),
        namespace: ns,
        resyncPeriodMs: 3_600_000,
        verify: 'auto',
        verifyIntervalMs: 3_600_000,
        verifyTimeoutMs: 15_000,
        verifyTarget: (_ns, name) => ({ url: targets[name]! }),
      });
      await controller.start();
    }, 120_000);
    afterAll(async () => {
      await controller?.stop();
      if (ns)
        await kc
          .makeApiClient(k8s.CoreV1Api)
          .deleteNamespace({ name: ns })
          .catch(() => undefined);
    });

    const mk = (name: string) => ({
      apiVersion: 'mcp.example.com/v1alpha1',
      kind: 'MCPServer',
      metadata: { name, namespace: ns },
      spec: { image: 'img:1', port: 3001 },
    });

    it('status.serverInfo.protocolVersion and era: 2026-07-28/modern and 2025-11-25/legacy; a 401 is Failed with AuthRequired', async () => {
      const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
      for (const name of Object.keys(targets)) await apply(objects, mk(name));
      const modern = await waitPhase(ns, 'modern', 'Ready', (x) => cond(x, 'Verified')?.status === 'True');
      expect(modern.status.serverInfo).toMatchObject({
        name: 'modern-fixture',
        protocolVersion: '2026-07-28',
        era: 'modern',
      });
      expect(modern.status.tools).toMatchObject({ count: 2 });
      const legacy = await waitPhase(ns, 'legacy', 'Ready', (x) => cond(x, 'Verified')?.status === 'True');
      expect(legacy.status.serverInfo).toMatchObject({ protocolVersion: '2025-11-25', era: 'legacy' });
      expect(legacy.status.tools.count).toBeGreaterThan(10);
      const locked = await waitPhase(ns, 'locked', 'Failed', (x) => cond(x, 'Verified')?.status === 'False');
      expect(cond(locked, 'Verified')).toMatchObject({
        reason: 'AuthRequired',
        message: 'HTTP 401: the server requires authorization; WWW-Authenticate: Bearer realm="kubemcp"',
      });
      expect(locked.status.serverInfo).toBeUndefined();
    });
  });
});
