/**
 * `kubemcp gateway`'s reverse proxy (gateway/proxy.ts) with the access layer it runs with in an
 * MCPServer pod (gateway/setup.ts: TokenReview + SubjectAccessReview against the local cluster's
 * real apiserver, as a ServiceAccount bound to system:auth-delegator), in front of an upstream on
 * loopback that records what reaches it, then in front of a real `kubemcp serve` reached with the
 * MCP SDK's client (issue 17):
 * - no, malformed, forged or wrong-audience token: 401 with `WWW-Authenticate: Bearer`, nothing
 *   reaches the server;
 * - `view` only or no role: 403 naming the missing right, nothing reaches the server;
 * - `edit` in the namespace: the request reaches the server without the token and without any
 *   identity header the client sent, with the verified identity in `X-Remote-User`/`-Group`;
 * - a session belongs to the caller that opened it: another caller presenting its id gets 404;
 * - an audit line per JSON-RPC message names the caller, method, tool and outcome; metrics count.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { startGatewayProxy, type RunningGatewayProxy } from '../../gateway/proxy.js';
import { accessFromOptions } from '../../gateway/setup.js';
import { ToolPolicy } from '../../gateway/tools.js';
import { kubeConfig, waitFor } from '../kube.js';
import { gatewayFixture, type GatewayFixture } from './fixture.js';
import { closeServer, startHttp, startModern, startServe } from '../controller/servers.js';

/** SDK v2 client options: 2026-07-28 only (a pin never falls back to initialize). */
const PINNED = { versionNegotiation: { mode: { pin: '2026-07-28' as const } } };

const kc = kubeConfig();
const NAME = 'kube-mcp';
let fx: GatewayFixture;
let audience: string;
let upstream: Server;
let seen: Array<{ headers: IncomingHttpHeaders; body: string; url: string }>;
let gw: RunningGatewayProxy;
let audit: Array<Record<string, unknown>>;
let registry: Registry;

/** Starts a gateway for MCPServer `${fx.ns}/${NAME}` in front of `upstreamUrl`, auditing into `lines`. */
async function gateway(
  upstreamUrl: string,
  lines: Array<Record<string, unknown>>,
  reg: Registry,
  maxBodyBytes?: number,
  tools?: ToolPolicy,
) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const access = accessFromOptions(
    { auth: 'kubernetes', mcpserver: `${fx.ns}/${NAME}`, audience: [audience] },
    pino({ base: undefined }, sink),
    reg,
    fx.gatewayKc,
  );
  return startGatewayProxy({
    upstream: upstreamUrl,
    port: 0,
    access,
    registry: reg,
    log: pino({ level: 'silent' }),
    maxBodyBytes,
    tools,
  });
}

const rpc = (method: string, params: Record<string, unknown> = {}, id: number | string = 1) =>
  JSON.stringify({ jsonrpc: '2.0', id, method, params });

async function post(
  body: string,
  headers: Record<string, string> = {},
  path = '/mcp',
): Promise<{
  status: number;
  headers: Headers;
  json: { error?: { code: number; message: string }; result?: unknown };
}> {
  const r = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, json: text ? JSON.parse(text) : {} };
}

const auth = async (sa: string, aud = [audience]) => ({ authorization: `Bearer ${await fx.token(sa, aud)}` });

beforeAll(async () => {
  fx = await gatewayFixture(kc, 'gw-proxy', { editor: 'edit', editor2: 'edit', viewer: 'view', nobody: '' });
  audience = `http://${NAME}.${fx.ns}.svc.cluster.local:3001/mcp`;
  seen = [];
  // The upstream: answers every JSON-RPC request with its method, opens a session on `initialize`.
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ headers: req.headers, body, url: req.url ?? '' });
      const msg = body ? (JSON.parse(body) as { id?: number; method?: string }) : {};
      const h: Record<string, string> = { 'content-type': 'application/json' };
      if (msg.method === 'initialize') h['mcp-session-id'] = `sid-${seen.length}`;
      res.writeHead(200, h);
      res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result: { echoed: msg.method } }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  audit = [];
  registry = new Registry();
  gw = await gateway(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, audit, registry, 64 * 1024);
}, 180_000);

afterAll(async () => {
  await gw?.close();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  await fx?.cleanup();
});

describe('kubemcp gateway: who may call (real TokenReview and SubjectAccessReview)', () => {
  it('refuses a request without a token with 401 and WWW-Authenticate, and nothing reaches the server', async () => {
    const before = seen.length;
    const r = await post(rpc('tools/list'));
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(r.json.error?.code).toBe(-32001);
    expect(r.json.error?.message).toMatch(/kubectl create token/);
    expect(seen.length).toBe(before);
  });

  it('refuses malformed, forged and wrong-audience tokens with 401 invalid_token', async () => {
    const before = seen.length;
    const good = await fx.token('editor', [audience]);
    const [h, p] = good.split('.');
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'system:admin' }),
    ).toString('base64url');
    for (const token of [
      'not-a-jwt',
      `${h}.${forgedPayload}.${good.split('.')[2]}`, // signature no longer matches
      await fx.token('editor'), // the apiserver's default audience, not this server's
      await fx.token('editor', ['http://other.example/mcp']),
    ]) {
      const r = await post(rpc('tools/list'), { authorization: `Bearer ${token}` });
      expect([r.status, r.headers.get('www-authenticate')]).toEqual([401, expect.stringContaining('invalid_token')]);
    }
    // Not a bearer scheme at all.
    expect(
      (await post(rpc('tools/list'), { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })).status,
    ).toBe(401);
    expect(seen.length).toBe(before);
  });

  it('refuses `view` and no role with 403 naming the missing right, and nothing reaches the server', async () => {
    const before = seen.length;
    for (const sa of ['viewer', 'nobody']) {
      const r = await post(rpc('tools/call', { name: 'list-resources', arguments: {} }), await auth(sa));
      expect(r.status).toBe(403);
      expect(r.json.error?.code).toBe(-32001);
      expect(r.json.error?.message).toContain(`system:serviceaccount:${fx.ns}:${sa} may not create mcpservers/proxy`);
      expect(r.json.error?.message).toContain(`"${NAME}" in namespace "${fx.ns}"`);
    }
    expect(seen.length).toBe(before);
  });

  it('passes an editor through with its verified identity, without its token or the identity headers it forged', async () => {
    const r = await post(rpc('tools/call', { name: 'list-resources', arguments: { kind: 'pods' } }, 7), {
      ...(await auth('editor')),
      'x-remote-user': 'system:admin',
      'x-remote-group': 'system:masters',
      'impersonate-user': 'system:admin',
      'impersonate-group': 'system:masters',
      'x-forwarded-user': 'admin',
      cookie: 'session=stolen',
    });
    expect(r.status).toBe(200);
    expect(r.json.result).toEqual({ echoed: 'tools/call' });
    const got = seen[seen.length - 1]!;
    expect(got.headers['x-remote-user']).toBe(`system:serviceaccount:${fx.ns}:editor`);
    const groups = String(got.headers['x-remote-group']).split(', ');
    expect(groups).toEqual(expect.arrayContaining(['system:serviceaccounts', `system:serviceaccounts:${fx.ns}`]));
    expect(groups).not.toContain('system:masters');
    for (const h of ['authorization', 'impersonate-user', 'impersonate-group', 'x-forwarded-user', 'cookie'])
      expect([h, got.headers[h]]).toEqual([h, undefined]);
    expect(got.headers.host).toBe(new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`).host);
    expect(JSON.parse(got.body)).toMatchObject({ id: 7, method: 'tools/call', params: { name: 'list-resources' } });
    expect(got.url).toBe('/mcp');
  });

  it('keeps a session to the caller that opened it: another editor presenting its id gets 404', async () => {
    const init = await post(
      rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } }),
      await auth('editor'),
    );
    const sid = init.headers.get('mcp-session-id');
    expect(sid).toMatch(/^sid-/);
    const before = seen.length;
    const stolen = await post(rpc('tools/list', {}, 2), { ...(await auth('editor2')), 'mcp-session-id': sid! });
    expect(stolen.status).toBe(404);
    expect(stolen.json.error?.message).toMatch(/Session not found/);
    expect(seen.length).toBe(before);
    const own = await post(rpc('tools/list', {}, 3), { ...(await auth('editor')), 'mcp-session-id': sid! });
    expect(own.status).toBe(200);
    expect(seen[seen.length - 1]!.headers['mcp-session-id']).toBe(sid);
  });

  it('refuses a body over its limit with 413 before it reaches the server', async () => {
    const before = seen.length;
    const r = await post(
      rpc('tools/call', { name: 'x', arguments: { pad: 'x'.repeat(70 * 1024) } }),
      await auth('editor'),
    );
    expect(r.status).toBe(413);
    expect(seen.length).toBe(before);
  });

  it('writes an audit line per request naming caller, method, tool and outcome, never the token', async () => {
    const ok = audit.find((l) => l.method === 'tools/call' && l.outcome === 'success');
    expect(ok).toMatchObject({
      audit: 'mcp',
      mcpserver: `${fx.ns}/${NAME}`,
      user: `system:serviceaccount:${fx.ns}:editor`,
      tool: 'list-resources',
      id: 7,
      status: 200,
    });
    expect(audit.find((l) => l.outcome === 'unauthenticated')).toMatchObject({ status: 401, method: 'tools/list' });
    expect(audit.find((l) => l.outcome === 'denied' && l.status === 403)).toMatchObject({
      user: `system:serviceaccount:${fx.ns}:viewer`,
      tool: 'list-resources',
    });
    expect(audit.find((l) => l.status === 404)).toMatchObject({ user: `system:serviceaccount:${fx.ns}:editor2` });
    expect(JSON.stringify(audit)).not.toMatch(/eyJ/); // no JWT anywhere
  });

  it('serves its health and Prometheus metrics under /.kubemcp/ without auth', async () => {
    expect((await fetch(`${gw.url}/.kubemcp/healthz`)).status).toBe(200);
    const text = await (await fetch(`${gw.url}/.kubemcp/metrics`)).text();
    const server = `mcpserver="${fx.ns}/${NAME}"`;
    expect(text).toMatch(new RegExp(`kubemcp_gateway_auth_refusals_total\\{${server},reason="missing"\\} [1-9]`));
    expect(text).toMatch(new RegExp(`kubemcp_gateway_auth_refusals_total\\{${server},reason="forbidden"\\} [1-9]`));
    expect(text).toMatch(
      new RegExp(
        `kubemcp_gateway_requests_total\\{${server},method="tools/call",tool="list-resources",outcome="success"\\} 1`,
      ),
    );
  });

  it('answers 502 naming the cause when the server container does not answer', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const g = await gateway(`http://127.0.0.1:${port}`, lines, new Registry());
    try {
      const r = await fetch(`${g.url}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(await auth('editor')) },
        body: rpc('tools/list'),
      });
      expect(r.status).toBe(502);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(
        /did not answer .*ECONNREFUSED/,
      );
      expect(lines).toEqual([expect.objectContaining({ outcome: 'error', status: 502 })]);
    } finally {
      await g.close();
    }
  });
});

describe('kubemcp gateway in front of a real kubemcp serve, with the MCP SDK client', () => {
  it('lets an editor list and call tools over Streamable HTTP (sessions, SSE) and refuses the SDK client without a token', async () => {
    const serve = await startServe();
    const lines: Array<Record<string, unknown>> = [];
    const g = await gateway(new URL(serve.url).origin, lines, new Registry());
    try {
      const url = new URL('/mcp', g.url);
      const token = await fx.token('editor', [audience]);
      const client = new Client({ name: 'gateway-test', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
      );
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toContain('list-resources');
      const res = await client.callTool({ name: 'list-resources', arguments: { kind: 'namespaces' } });
      expect(res.isError).toBeFalsy();
      expect(JSON.stringify(res.content)).toContain(fx.ns);
      await client.close();
      expect(lines.filter((l) => l.user === `system:serviceaccount:${fx.ns}:editor`).map((l) => l.method)).toEqual(
        expect.arrayContaining(['initialize', 'tools/list', 'tools/call']),
      );

      const intruder = new Client({ name: 'intruder', version: '1.0.0' });
      await expect(intruder.connect(new StreamableHTTPClientTransport(url))).rejects.toThrow(/401|Unauthorized/);
    } finally {
      await g.close();
      serve.stop();
    }
  }, 240_000);

  it('spec.auth.tools: each caller lists only its tools, and a tools/call of another tool gets an MCP error naming it without reaching the server', async () => {
    const serve = await startServe();
    const policy = new ToolPolicy([
      { names: ['list-resources', 'get-resource'], serviceAccounts: [`${fx.ns}/editor2`] },
      { names: ['*'], serviceAccounts: [`${fx.ns}/editor`] },
    ]);
    const lines: Array<Record<string, unknown>> = [];
    const g = await gateway(new URL(serve.url).origin, lines, new Registry(), undefined, policy);
    const calls = async () => {
      const m = await fetch(new URL('/metrics', serve.url));
      return (await m.text()).split('\n').filter((l) => l.startsWith('kubemcp_tool_calls_total'));
    };
    try {
      const url = new URL('/mcp', g.url);
      const connect = async (sa: string) => {
        const client = new Client({ name: `tools-${sa}`, version: '1.0.0' });
        const token = await fx.token(sa, [audience]);
        await client.connect(
          new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
        );
        return client;
      };
      const limited = await connect('editor2');
      const all = await connect('editor');
      const mine = (await limited.listTools()).tools.map((t) => t.name).sort();
      expect(mine).toEqual(['get-resource', 'list-resources']);
      const everything = (await all.listTools()).tools.map((t) => t.name);
      expect(everything.length).toBeGreaterThan(5);
      expect(everything).toEqual(expect.arrayContaining(['list-resources', 'get-resource', 'get-pod-logs']));
      const ok = await limited.callTool({ name: 'list-resources', arguments: { kind: 'namespaces' } });
      expect(ok.isError).toBeFalsy();
      const before = await calls();
      await expect(
        limited.callTool({ name: 'get-pod-logs', arguments: { name: 'x', namespace: 'y' } }),
      ).rejects.toThrow(/Forbidden: system:serviceaccount:.*:editor2 may not call tool "get-pod-logs"/);
      // The server never saw it: its own per-tool call counter did not move.
      expect(await calls()).toEqual(before);
      expect(before.some((l) => l.includes('tool="list-resources"'))).toBe(true); // the counter works
      expect(before.some((l) => l.includes('tool="get-pod-logs"'))).toBe(false);
      expect(lines.at(-1)).toMatchObject({ method: 'tools/call', tool: 'get-pod-logs', outcome: 'denied' });
      await limited.close();
      await all.close();
    } finally {
      await g.close();
      serve.stop();
    }
  }, 240_000);
});

describe('MCP 2026-07-28 clients through the gateway (issue 18: the gateway answers for a 2025-era server)', () => {
  /** An SDK v2 client pinned to 2026-07-28 (no fallback to initialize), as `sa` with an audience-bound token. */
  const modernClient = async (url: URL, sa?: string) => {
    const c = new ClientV2({ name: `modern-${sa ?? 'anonymous'}`, version: '1.0.0' }, PINNED);
    const headers: Record<string, string> = sa ? { authorization: `Bearer ${await fx.token(sa, [audience])}` } : {};
    await c.connect(new TransportV2(url, { requestInit: { headers } }));
    return c;
  };
  const translated = async (reg: Registry) =>
    Object.fromEntries(
      ((await reg.getSingleMetricAsString('kubemcp_gateway_translated_requests_total').catch(() => '')) as string)
        .split('\n')
        .map((l) => /method="([^"]+)"\} (\d+)/.exec(l))
        .filter((m): m is RegExpExecArray => !!m)
        .map((m) => [m[1]!, Number(m[2])]),
    );

  it.each([
    ['kubemcp serve --legacy-only (a 2025-era server): the gateway answers for it', true],
    ['kubemcp serve (both eras): it answers 2026-07-28 itself, passed through untranslated', false],
  ])(
    'a pinned 2026-07-28 client through the gateway, %s; audited as its verified caller; bad arguments and no token are refused',
    async (_what, legacyOnly) => {
      const serve = await startServe(legacyOnly ? ['--legacy-only'] : []);
      const lines: Array<Record<string, unknown>> = [];
      const reg = new Registry();
      const g = await gateway(new URL(serve.url).origin, lines, reg);
      try {
        const url = new URL('/mcp', g.url);
        const c = await modernClient(url, 'editor');
        expect(c.getProtocolEra()).toBe('modern');
        const discovered = c.getDiscoverResult()!;
        // server/discover answered by kubemcp serve's own modern leg, with what its initialize says.
        const direct = new Client({ name: 'direct', version: '1' });
        await direct.connect(new StreamableHTTPClientTransport(new URL(serve.url)));
        expect(discovered.supportedVersions).toContain('2026-07-28');
        expect(c.getServerVersion()).toEqual(direct.getServerVersion());
        expect(Object.keys(discovered.capabilities).sort()).toEqual(
          expect.arrayContaining(Object.keys(direct.getServerCapabilities()!).filter((k) => k !== 'logging')),
        );
        const directTools = (await direct.listTools()).tools.map((t) => t.name);
        await direct.close();

        const listed = await c.listTools();
        expect(listed.tools.map((t) => t.name)).toEqual(directTools);
        const res = await c.callTool({ name: 'list-resources', arguments: { kind: 'namespaces' } });
        expect(res.isError).toBeFalsy();
        expect(JSON.stringify(res.content)).toContain(fx.ns);
        // Bad arguments: an MCP error naming the argument, from the server, carried back.
        const bad = await c.callTool({ name: 'list-resources', arguments: { kind: 42 } }).then(
          (r) => JSON.stringify(r.content),
          (e: Error) => e.message,
        );
        expect(bad).toMatch(/kind/);
        // One audit line per request, naming the verified caller; the methods the gateway answered are counted.
        const mine = lines.filter((l) => l.user === `system:serviceaccount:${fx.ns}:editor`).map((l) => l.method);
        expect(mine).toEqual(expect.arrayContaining(['server/discover', 'tools/list', 'tools/call']));
        expect(mine).not.toContain('initialize'); // the client never sent one; the gateway's own session is not audited as the client's
        expect(await translated(reg)).toEqual(
          legacyOnly ? { 'server/discover': 1, 'tools/list': 1, 'tools/call': 2 } : {},
        );
        await c.close();

        // No token: 401 before anything reaches the server.
        const seen = lines.length;
        await expect(modernClient(url)).rejects.toThrow(/401|Unauthorized/);
        expect(lines.slice(seen).map((l) => l.outcome)).toEqual(['unauthenticated']);
      } finally {
        await g.close();
        serve.stop();
      }
    },
    240_000,
  );

  it('spec.auth.tools holds for 2026-07-28 clients: the list is filtered, a refused call never reaches the server', async () => {
    const serve = await startServe();
    const policy = new ToolPolicy([
      { names: ['list-resources', 'get-resource'], serviceAccounts: [`${fx.ns}/editor2`] },
    ]);
    const g = await gateway(new URL(serve.url).origin, [], new Registry(), undefined, policy);
    try {
      const c = await modernClient(new URL('/mcp', g.url), 'editor2');
      expect((await c.listTools()).tools.map((t) => t.name).sort()).toEqual(['get-resource', 'list-resources']);
      await expect(c.callTool({ name: 'get-pod-logs', arguments: { name: 'x', namespace: 'y' } })).rejects.toThrow(
        /Forbidden: system:serviceaccount:.*:editor2 may not call tool "get-pod-logs"/,
      );
      const m = await (await fetch(new URL('/metrics', serve.url))).text();
      expect(m).not.toMatch(/kubemcp_tool_calls_total\{[^}]*tool="get-pod-logs"/);
      await c.close();
    } finally {
      await g.close();
      serve.stop();
    }
  }, 240_000);

  it('a server the gateway cannot open a 2025 session with either (its own 401, an HTML page) answers the 2026-07-28 request itself', async () => {
    const needsToken = await startHttp((res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="upstream"', 'content-type': 'application/json' });
      res.end('{"error":"token required"}');
    });
    const html = await startHttp((res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>not MCP</html>');
    });
    try {
      for (const [upstream, status, body] of [
        [needsToken, 401, /token required/],
        [html, 200, /not MCP/],
      ] as const) {
        const g = await gateway(new URL(upstream.url).origin, [], new Registry());
        try {
          const raw = await fetch(`${g.url}/mcp`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              ...(await auth('editor')),
            },
            body: rpc('server/discover', { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } }),
          });
          expect(raw.status).toBe(status);
          expect(await raw.text()).toMatch(body);
        } finally {
          await g.close();
        }
      }
    } finally {
      await closeServer(needsToken.server);
      await closeServer(html.server);
    }
  }, 120_000);

  it('a server that speaks 2026-07-28 itself gets the modern requests passed through, untranslated', async () => {
    const modern = await startModern('stateless');
    const reg = new Registry();
    const g = await gateway(new URL(modern.url).origin, [], reg);
    try {
      const c = await modernClient(new URL('/mcp', g.url), 'editor');
      expect(c.getServerVersion()?.name).toBe('modern-fixture');
      expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['echo', 'now']);
      expect(await translated(reg)).toEqual({});
      await c.close();
    } finally {
      await g.close();
      await modern.close();
    }
  }, 120_000);
});

describe('a 2025 server asking its client (elicitation) reaches a 2026-07-28 client as an InputRequiredResult (issues 18, 19)', () => {
  /** One 2026-07-28 request as the spec has it (envelope in `_meta`, the standard headers): the JSON-RPC answer. */
  const modernCall = async (url: string, token: string, params: Record<string, unknown>) => {
    const r = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': String(params.name),
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: {
          ...params,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'irr-test', version: '1' },
            'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
          },
        },
      }),
    });
    const text = await r.text();
    // JSON, or an SSE stream whose event for id 7 is the answer.
    const msgs = /^\s*\{/.test(text)
      ? [JSON.parse(text)]
      : text
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => JSON.parse(l.slice(5)));
    return msgs.find((m: { id?: unknown }) => m.id === 7) as {
      result?: Record<string, unknown> & {
        resultType?: string;
        requestState?: string;
        inputRequests?: Record<string, { method: string; params: { message?: string } }>;
        structuredContent?: { status?: string };
      };
      error?: { code: number; message: string };
    };
  };

  it.each([
    ['kubemcp serve --legacy-only: its elicitation/create, translated by the gateway', true],
    ['kubemcp serve: its own InputRequiredResult, passed through', false],
  ])(
    'delete-resource asks for confirmation (%s): declined, the ConfigMap stays; accepted, it is deleted; a tampered state is refused',
    async (_what, legacyOnly) => {
      const serve = await startServe(legacyOnly ? ['--legacy-only'] : []);
      const g = await gateway(new URL(serve.url).origin, [], new Registry());
      const core = kc.makeApiClient(k8s.CoreV1Api);
      await core.createNamespacedConfigMap({
        namespace: fx.ns,
        body: { metadata: { name: 'doomed' }, data: { a: '1' } },
      });
      const exists = () =>
        core.readNamespacedConfigMap({ name: 'doomed', namespace: fx.ns }).then(
          () => true,
          () => false,
        );
      try {
        const url = `${g.url}/mcp`;
        const token = await fx.token('editor', [audience]);
        const call = { name: 'delete-resource', arguments: { kind: 'configmap', name: 'doomed', namespace: fx.ns } };
        // Round 1: the server's elicitation/create, as an InputRequiredResult naming what would go.
        const asked = await modernCall(url, token, call);
        expect(asked.result?.resultType).toBe('input_required');
        const [key, req] = Object.entries(asked.result!.inputRequests!)[0]!;
        expect(req.method).toBe('elicitation/create');
        expect(req.params.message).toMatch(/Delete configmap\/doomed/);
        expect(await exists()).toBe(true);
        // A tampered requestState: refused, nothing changes.
        const tampered = await modernCall(url, token, {
          ...call,
          inputResponses: { [key]: { action: 'accept', content: { confirm: true } } },
          requestState: `${asked.result!.requestState}x`,
        });
        expect(tampered.error?.code).toBe(-32602);
        expect(await exists()).toBe(true);
        // Declined: the tool says so and the ConfigMap stays.
        const declined = await modernCall(url, token, {
          ...call,
          inputResponses: { [key]: { action: 'decline' } },
          requestState: asked.result!.requestState,
        });
        expect(declined.result?.resultType).toBe('complete');
        expect(declined.result?.structuredContent?.status).toBe('declined');
        expect(await exists()).toBe(true);
        // Asked again and accepted: deleted. (The accepted form's content is the tool's confirmation schema.)
        const again = await modernCall(url, token, call);
        const [key2, req2] = Object.entries(again.result!.inputRequests!)[0]!;
        const schema = (req2.params as { requestedSchema?: { properties?: Record<string, { type?: string }> } })
          .requestedSchema;
        const content = Object.fromEntries(
          Object.entries(schema?.properties ?? {}).map(([k, v]) => [k, v.type === 'boolean' ? true : 'yes']),
        );
        const accepted = await modernCall(url, token, {
          ...call,
          inputResponses: { [key2]: { action: 'accept', content } },
          requestState: again.result!.requestState,
        });
        expect(accepted.result?.structuredContent?.status).toMatch(/^delet/);
        await waitFor('the ConfigMap gone', async () => !(await exists()), 30_000);
      } finally {
        await core.deleteNamespacedConfigMap({ name: 'doomed', namespace: fx.ns }).catch(() => undefined);
        await g.close();
        serve.stop();
      }
    },
    240_000,
  );
});
