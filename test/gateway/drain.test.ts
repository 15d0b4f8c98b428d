/**
 * Rollouts drain (issue 18, lib/http-drain.ts) of the three HTTP faces, on loopback:
 * - `kubemcp gateway`'s reverse proxy (gateway/proxy.ts, in this process; the drain started by its
 *   exported `drain()`, as the SIGTERM handler does) in front of the reference server
 *   server-everything over Streamable HTTP, whose `trigger-long-running-operation` is the slow call;
 * - `kubemcp bridge` (gateway/http.ts) as the real process (`tsx cli.ts bridge`), SIGTERM sent by
 *   pid, with server-everything over stdio behind the FIFOs (test/mcp-server/bridge-harness.ts);
 * - `kubemcp serve -t http` as the real process against the local cluster, SIGTERM by pid; its
 *   in-flight request is a `tools/call` whose body arrives in two parts around the signal.
 * Each checks: readiness 503 at once, an in-flight slow call completes with its result, a new
 * `initialize` gets 503 + Retry-After, an existing session's next request still works, the
 * process (or drain) ends after the in-flight work, or at the deadline with the cut call logged.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import { createServer as netServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startGatewayProxy, type RunningGatewayProxy } from '../../gateway/proxy.js';
import { accessFromOptions } from '../../gateway/setup.js';
import { DRAIN_WAIT_PATH, GATEWAY_READY_PATH } from '../../lib/http-drain.js';
import { EVERYTHING, startBridged, until, type Bridged } from '../mcp-server/bridge-harness.js';
import { startServe } from '../controller/servers.js';

const SLOW = 'trigger-long-running-operation';
const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'drain-test', version: '1' } },
});
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** A free loopback port (listen on 0, close). */
async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A POST of `body` to `url` on a new connection; status, headers and text. */
async function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { ...MCP_HEADERS, ...headers },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

async function getStatus(url: string): Promise<number> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  await r.text();
  return r.status;
}

/** An SDK client session at `url`. */
async function connect(url: string, clients: Client[]): Promise<Client> {
  const c = new Client({ name: 'drain-test', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  clients.push(c);
  return c;
}

const textOf = (r: unknown) =>
  ((r as { content?: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

/** The new-session refusal every face answers during a drain. */
function expectRefusal(r: { status: number; headers: Headers; text: string }) {
  expect(r.status).toBe(503);
  expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  const body = JSON.parse(r.text) as { id: unknown; error: { code: number; message: string } };
  expect(body.id).toBe(1);
  expect(body.error.code).toBe(-32000);
  expect(body.error.message).toMatch(/shutting down/);
}

describe('kubemcp gateway (reverse proxy) drains on SIGTERM', () => {
  let upstream: ChildProcess;
  let upstreamUrl: string;
  const clients: Client[] = [];
  const gateways: RunningGatewayProxy[] = [];
  const logs: Array<Record<string, unknown>> = [];

  /** A gateway (auth none: access is tested by proxy.test.ts) logging into `logs`. */
  const gateway = (deadlineMs: number) => {
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) logs.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const registry = new Registry();
    return startGatewayProxy({
      upstream: upstreamUrl,
      port: 0,
      access: accessFromOptions({ auth: 'none' }, pino({ level: 'silent' }), registry),
      registry,
      log: pino({ level: 'info' }, sink),
      drain: { deadlineMs, settleMs: 200 },
    }).then((g) => (gateways.push(g), g));
  };

  beforeAll(async () => {
    const port = await freePort();
    upstreamUrl = `http://127.0.0.1:${port}`;
    upstream = spawn(EVERYTHING[0]!, [EVERYTHING[1]!, 'streamableHttp'], {
      env: { ...process.env, PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    upstream.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await until(() => /listening on port/.test(err) || upstream.exitCode !== null, 'server-everything', 30_000);
    if (upstream.exitCode !== null) throw new Error(`server-everything exited: ${err}`);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const g of gateways) await g.close().catch(() => undefined);
    if (upstream?.pid && upstream.exitCode === null) process.kill(upstream.pid, 'SIGTERM');
  });

  it('turns unready, refuses new sessions, serves in-flight and existing sessions, then ends with none cut', async () => {
    const gw = await gateway(10_000);
    const base = gw.url;
    expect(await getStatus(`${base}${GATEWAY_READY_PATH}`)).toBe(200);
    const a = await connect(`${base}/mcp`, clients);
    const b = await connect(`${base}/mcp`, clients);
    const started = Date.now();
    const slow = a.callTool({ name: SLOW, arguments: { duration: 2, steps: 2 } });
    await new Promise((r) => setTimeout(r, 300));

    const drained = gw.drain();
    // The preStop hook of the server container: answered only once the drain has ended.
    const hook = fetch(`${base}${DRAIN_WAIT_PATH}`, { signal: AbortSignal.timeout(15_000) }).then(async (r) => ({
      status: r.status,
      at: Date.now(),
      body: (await r.json()) as { status: string },
    }));
    expect(await getStatus(`${base}${GATEWAY_READY_PATH}`)).toBe(503);
    expect(await getStatus(`${base}/.kubemcp/healthz`)).toBe(200); // liveness stays
    expectRefusal(await post(`${base}/mcp`, INIT));
    // An existing session keeps working during the drain.
    const echo = await b.callTool({ name: 'echo', arguments: { message: 'still here' } });
    expect(textOf(echo)).toContain('still here');

    const result = await slow;
    expect(textOf(result)).toContain('Long running operation completed');
    const done = await drained;
    expect(done).toMatchObject({ cut: 0, deadline: false });
    expect(done.finished).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(8000);
    const h = await hook;
    expect(h).toMatchObject({ status: 200, body: { status: 'drained' } });
    expect(h.at).toBeGreaterThanOrEqual(started + 1900);
    // The listener is closed once drained.
    await expect(fetch(`${base}${GATEWAY_READY_PATH}`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    expect(logs.some((l) => /drained: .* none cut/.test(String(l.msg)))).toBe(true);
  }, 30_000);

  it('cuts a call still running at the deadline and logs it', async () => {
    const gw = await gateway(1500);
    const a = await connect(`${gw.url}/mcp`, clients);
    // Its SSE answer had started, so the cut closes the stream: the client learns it from its own
    // request timeout (the SDK tries to resume the stream, which finds the gateway gone).
    const slow = a.callTool({ name: SLOW, arguments: { duration: 8, steps: 2 } }, undefined, { timeout: 5000 }).then(
      () => 'answered',
      (err: Error) => `failed: ${err.message}`,
    );
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const done = await gw.drain();
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(done).toMatchObject({ cut: 1, deadline: true });
    expect(await slow).toMatch(/^failed/);
    const cut = logs.find((l) => /request cut/.test(String(l.msg)));
    expect(cut).toMatchObject({ method: 'tools/call', tool: SLOW });
    expect(logs.some((l) => /drained at the deadline: 1 request\(s\) cut/.test(String(l.msg)))).toBe(true);
  }, 30_000);

  it('a GET /.kubemcp/drained with no drain answers "not draining" within seconds (a container restart)', async () => {
    const gw = await gateway(5000);
    const t0 = Date.now();
    const r = await fetch(`${gw.url}${DRAIN_WAIT_PATH}`, { signal: AbortSignal.timeout(10_000) });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'not draining' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
    await gw.close();
  }, 20_000);
});

/** Waits for `child` to exit, at most `ms`; its exit code (undefined on timeout). */
function exitOf(child: ChildProcess, ms: number): Promise<number | null | undefined> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('kubemcp bridge (the real process) drains on SIGTERM', () => {
  let b: Bridged;
  const saved = process.env.MCP_DRAIN_SECONDS;

  beforeAll(async () => {
    process.env.MCP_DRAIN_SECONDS = '10'; // read by the child (its --drain-seconds variable)
    b = await startBridged({ argv: EVERYTHING, cliBridge: true });
    await until(async () => (await b.ready()).status === 200, 'the bridge to be ready', 60_000);
  }, 90_000);

  afterAll(async () => {
    if (saved === undefined) delete process.env.MCP_DRAIN_SECONDS;
    else process.env.MCP_DRAIN_SECONDS = saved;
    await b?.close();
  });

  it('SIGTERM: /ready 503 at once, new initialize 503 + Retry-After, in-flight and existing sessions served, exit 0', async () => {
    const a = await b.connect('a');
    const other = await b.connect('b');
    const slow = a.callTool({ name: SLOW, arguments: { duration: 2, steps: 2 } });
    await new Promise((r) => setTimeout(r, 300));
    const child = b.bridgeProcess!;
    const t0 = Date.now();
    process.kill(child.pid!, 'SIGTERM');
    await until(async () => (await b.ready()).status === 503, '/ready to answer 503', 2000, 20);
    expect((await b.ready()).body.status).toBe('draining');
    expectRefusal(await post(b.url, INIT));
    const echo = await other.callTool({ name: 'echo', arguments: { message: 'during the drain' } });
    expect(textOf(echo)).toContain('during the drain');
    expect(textOf(await slow)).toContain('Long running operation completed');
    const code = await exitOf(child, 10_000);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(b.bridgeLog()).toMatch(/drained: \d+ in-flight request\(s\) finished, none cut/);
  }, 60_000);
});

/**
 * A POST whose body is sent in two parts `gapMs` apart (the server holds the request in flight in
 * between); `between` runs after the first part.
 */
function splitPost(
  url: string,
  headers: Record<string, string>,
  body: string,
  gapMs: number,
  between: () => void,
): Promise<{ status: number; text: string } | { error: string }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { ...MCP_HEADERS, ...headers } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', (e) => resolve({ error: e.message }));
      },
    );
    req.on('error', (e) => resolve({ error: e.message }));
    const half = Math.floor(body.length / 2);
    req.write(body.slice(0, half));
    setTimeout(between, 100);
    if (gapMs >= 0) setTimeout(() => req.end(body.slice(half)), gapMs);
  });
}

describe('kubemcp serve -t http (the real process) drains on SIGTERM', () => {
  const clients: Client[] = [];
  const stops: Array<() => void> = [];

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const s of stops) s();
  });

  /** A serve process with `drainSeconds`, logging at info, and its stderr so far. */
  const serve = async (drainSeconds: number) => {
    const s = await startServe(['--drain-seconds', String(drainSeconds), '--log-level', 'info']);
    stops.push(s.stop);
    let log = '';
    s.child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    return { ...s, log: () => log, base: s.url.replace(/\/mcp$/, '') };
  };

  /** An SDK session's id and negotiated version, for raw requests on it. */
  const session = async (url: string) => {
    const transport = new StreamableHTTPClientTransport(new URL(url));
    const c = new Client({ name: 'drain-test', version: '1.0.0' });
    await c.connect(transport);
    clients.push(c);
    return { client: c, headers: { 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-11-25' } };
  };

  it('SIGTERM: /ready 503, new initialize 503 + Retry-After, the in-flight call and an existing session served, exit 0', async () => {
    const s = await serve(10);
    const a = await session(s.url);
    const other = await session(s.url);
    const call = JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'list-namespaces', arguments: {} },
    });
    const t0 = Date.now();
    const inflight = splitPost(s.url, a.headers, call, 1500, () => process.kill(s.child.pid!, 'SIGTERM'));
    await until(async () => (await getStatus(`${s.base}/ready`)) === 503, '/ready to answer 503', 3000, 20);
    expectRefusal(await post(s.url, INIT));
    const listed = await other.client.callTool({ name: 'list-namespaces', arguments: {} });
    expect(textOf(listed)).toContain('default');
    const r = await inflight;
    expect(r).toMatchObject({ status: 200 });
    expect((r as { text: string }).text).toContain('default');
    expect(await exitOf(s.child, 10_000)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(9000);
    expect(s.log()).toMatch(/drained: \d+ in-flight request\(s\) finished, none cut/);
  }, 200_000);

  it('a request still running at the deadline is cut, the log says so, and the process exits 0', async () => {
    const s = await serve(1);
    const a = await session(s.url);
    const call = JSON.stringify({
      jsonrpc: '2.0',
      id: 8,
      method: 'tools/call',
      params: { name: 'list-namespaces', arguments: {} },
    });
    const t0 = Date.now();
    // The body never completes: the request is still in flight at the deadline.
    const inflight = splitPost(s.url, a.headers, call, -1, () => process.kill(s.child.pid!, 'SIGTERM'));
    expect(await exitOf(s.child, 10_000)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    const r = await inflight;
    // Cut before an answer started: 503 with a JSON-RPC error naming the deadline.
    expect(r).toMatchObject({ status: 503 });
    expect((r as { text: string }).text).toMatch(/drain deadline/);
    expect(s.log()).toMatch(/drain deadline of 1000 ms reached: request cut/);
    expect(s.log()).toMatch(/drained at the deadline: 1 request\(s\) cut/);
  }, 200_000);
});
