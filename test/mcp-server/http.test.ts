/**
 * The Streamable HTTP transport (issue 5, "HTTP"): /health, /ready, /metrics, DNS-rebinding
 * (Host header) and Origin refusals, bearer-token auth, CORS, sessions with a clean DELETE, the
 * stateless mode, and at least 30 malformed requests answered without a crash. Traffic to
 * 127.0.0.1 only; the server runs in-process on port 0.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { httpTransport, MCP_HEADERS, raw, startHttpServer, text, type HttpServer } from './helpers.js';

const init = (id: number | string = 1) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });

describe('HTTP transport, loopback default', () => {
  let s: HttpServer;
  beforeAll(async () => {
    s = await startHttpServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('serves /health and /ready (the apiserver answers) and binds 127.0.0.1', async () => {
    const h = await raw(s.url.replace('/mcp', '/health'));
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toMatchObject({ status: 'ok', transport: 'streamable-http' });
    const r = await raw(s.url.replace('/mcp', '/ready'));
    expect(r.status).toBe(200);
    expect((s.running.server.address() as { address: string }).address).toBe('127.0.0.1');
  });

  it('serves tools over a session, counts calls in /metrics, and DELETE ends the session', async () => {
    const c = await s.connect();
    const r = await c.callTool({ name: 'list-namespaces', arguments: {} });
    expect(r.isError).toBeFalsy();
    expect(text(r)).toMatch(/^NAME\s+STATUS\s+AGE/m);
    expect(s.running.sessions()).toBe(1);
    const m = await raw(s.url.replace('/mcp', '/metrics'));
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/kubemcp_tool_calls_total\{tool="list-namespaces",result="ok"\} 1/);
    expect(m.body).toMatch(/kubemcp_http_sessions 1/);
    const transport = httpTransport(c);
    await transport.terminateSession();
    expect(s.running.sessions()).toBe(0);
    // The session is gone: its id is refused.
    const after = await raw(s.url, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'mcp-session-id': transport.sessionId ?? 'x' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(after.status).toBe(404);
    await c.close();
  });

  it('refuses a foreign Host header (DNS rebinding) with 403 on every path', async () => {
    for (const p of ['/mcp', '/health', '/metrics']) {
      const r = await raw(s.url.replace('/mcp', p), {
        method: p === '/mcp' ? 'POST' : 'GET',
        headers: { ...MCP_HEADERS, Host: `evil.example.com:${s.running.port}` },
        body: p === '/mcp' ? init() : undefined,
      });
      expect(r.status).toBe(403);
      expect(r.body).toMatch(/Invalid Host: evil.example.com/);
    }
    const ok = await raw(s.url, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Host: `localhost:${s.running.port}` },
      body: init(),
    });
    expect(ok.status).toBe(200);
  });

  it('refuses a foreign Origin and sends no CORS headers by default', async () => {
    const r = await raw(s.url, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Origin: 'https://evil.example.com' },
      body: init(),
    });
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/origin https:\/\/evil.example.com is not allowed/);
    const pre = await raw(s.url, { method: 'OPTIONS', headers: { Origin: 'https://evil.example.com' } });
    expect(pre.status).toBe(403);
  });

  const malformed: Array<
    [string, { method: string; headers?: Record<string, string>; body?: string; path?: string }, number]
  > = [
    ['body not JSON', { method: 'POST', body: '{not json' }, 400],
    ['empty body', { method: 'POST', body: '' }, 400],
    ['JSON array garbage', { method: 'POST', body: '[1,2,3]' }, 400],
    ['JSON string', { method: 'POST', body: '"hello"' }, 400],
    ['JSON null', { method: 'POST', body: 'null' }, 400],
    [
      'non-initialize without session',
      { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) },
      400,
    ],
    [
      'unknown session id',
      {
        method: 'POST',
        headers: { 'mcp-session-id': 'nope' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      },
      404,
    ],
    ['GET without session', { method: 'GET' }, 400],
    ['DELETE without session', { method: 'DELETE' }, 400],
    ['DELETE unknown session', { method: 'DELETE', headers: { 'mcp-session-id': 'nope' } }, 404],
    ['PUT /mcp', { method: 'PUT', body: '{}' }, 405],
    ['PATCH /mcp', { method: 'PATCH', body: '{}' }, 405],
    ['unknown path', { method: 'GET', path: '/nope' }, 404],
    ['POST /health-ish path', { method: 'POST', path: '/mcp/extra', body: init() }, 404],
    ['initialize without Accept', { method: 'POST', headers: { Accept: 'text/plain' }, body: init() }, 406],
    [
      'initialize with wrong content type',
      { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: init() },
      415,
    ],
    [
      'jsonrpc 1.0',
      { method: 'POST', body: JSON.stringify({ jsonrpc: '1.0', id: 1, method: 'initialize', params: {} }) },
      400,
    ],
    [
      'initialize without params',
      { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize' }) },
      400,
    ],
    [
      'body larger than 4 MiB',
      { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(4 * 1024 * 1024 + 10) }) },
      413,
    ],
    ['deeply nested JSON', { method: 'POST', body: '['.repeat(5000) + ']'.repeat(5000) }, 400],
  ];
  it.each(malformed)(
    'answers a malformed request (%s) with an error status, not a crash',
    async (_label, req, status) => {
      const r = await raw(s.url.replace('/mcp', req.path ?? '/mcp'), {
        method: req.method,
        headers: { ...MCP_HEADERS, ...req.headers },
        body: req.body,
      });
      expect(r.status).toBe(status);
      const health = await raw(s.url.replace('/mcp', '/health'));
      expect(health.status).toBe(200);
    },
  );

  it('answers malformed JSON-RPC inside a valid session with JSON-RPC errors', async () => {
    const c = await s.connect();
    const sid = httpTransport(c).sessionId!;
    const post = (body: unknown) =>
      raw(s.url, {
        method: 'POST',
        headers: { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify(body),
      });
    const bad: unknown[] = [
      { jsonrpc: '2.0', id: 1, method: 'no/such/method' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: {} },
      { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 42 } },
      { jsonrpc: '2.0', id: 4, method: 'resources/read', params: {} },
      { jsonrpc: '2.0', id: 5, method: 'prompts/get', params: { name: 'nope' } },
      { jsonrpc: '2.0', id: 6, method: 'resources/read', params: { uri: 'k8s://nope' } },
      { jsonrpc: '2.0', id: 7, method: 'resources/subscribe', params: { uri: 'k8s://nope' } },
      {
        jsonrpc: '2.0',
        id: 8,
        method: 'completion/complete',
        params: { ref: { type: 'ref/prompt', name: 'nope' }, argument: { name: 'x', value: '' } },
      },
    ];
    for (const b of bad) {
      const r = await post(b);
      expect(r.status).toBeLessThan(500);
      expect(r.body).toMatch(/"error"|"isError":true/);
    }
    // Still serving.
    const ok = await c.callTool({ name: 'list-contexts', arguments: {} });
    expect(ok.isError).toBeFalsy();
  });
});

describe('HTTP transport with a bearer token, CORS and stateless mode', () => {
  let s: HttpServer;
  beforeAll(async () => {
    s = await startHttpServer(
      { readOnly: true },
      { token: 's3cret-token', corsOrigins: ['https://app.example.com'], stateless: true },
    );
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses /mcp and /metrics without the token (401 + WWW-Authenticate), keeps /health open', async () => {
    for (const auth of [undefined, 'Bearer wrong', 'Basic czNjcmV0LXRva2Vu', 'Bearer s3cret-token-longer']) {
      const r = await raw(s.url, {
        method: 'POST',
        headers: { ...MCP_HEADERS, ...(auth ? { Authorization: auth } : {}) },
        body: init(),
      });
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    expect((await raw(s.url.replace('/mcp', '/metrics'))).status).toBe(401);
    expect((await raw(s.url.replace('/mcp', '/health'))).status).toBe(200);
  });

  it('serves with the token, statelessly (no session id; each request stands alone)', async () => {
    const c = await s.connect({ Authorization: 'Bearer s3cret-token' });
    expect(httpTransport(c).sessionId).toBeUndefined();
    const tools = await c.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('list-resources');
    expect(tools.tools.map((t) => t.name)).not.toContain('create-pod');
    const r = await c.callTool({ name: 'list-nodes', arguments: {} });
    expect(r.isError).toBeFalsy();
    const get = await raw(s.url, {
      method: 'GET',
      headers: { Authorization: 'Bearer s3cret-token', Accept: 'text/event-stream' },
    });
    expect(get.status).toBe(405);
  });

  it('answers a CORS preflight for an allowed origin and refuses others', async () => {
    const ok = await raw(s.url, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(ok.headers['access-control-expose-headers']).toMatch(/Mcp-Session-Id/);
    const bad = await raw(s.url, { method: 'OPTIONS', headers: { Origin: 'https://other.example.com' } });
    expect(bad.status).toBe(403);
  });
});
