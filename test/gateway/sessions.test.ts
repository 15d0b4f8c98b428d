/**
 * Sealed sessions across replicas (gateway/sessions.ts, issue 18), pure logic and loopback only:
 * - the seal: round trip; every altered, truncated, overlong, foreign (another MCPServer's
 *   context, another key) id does not open; `previous` opens through one rotation, not two;
 * - three reverse-proxy gateways (gateway/proxy.ts, mode none), each in front of its own MCP
 *   server (the SDK's McpServer over Streamable HTTP, sessions in memory), behind a balancer that
 *   sends every request to the next gateway in turn (as the apiserver's service proxy or an
 *   Ingress may): 5 SDK client sessions x 10 tools/call answered with no failure, each by the
 *   server that holds its session; a forged, truncated, other-MCPServer or re-hopped id gets 404
 *   and no server sees a request for it; when the owner pod is gone (not a current pod, or its
 *   port refused) the next request gets 404 and a new session works.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import pino from 'pino';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { startGatewayProxy, type RunningGatewayProxy } from '../../gateway/proxy.js';
import { accessFromOptions } from '../../gateway/setup.js';
import {
  FORWARDED_HEADER,
  SESSION_KEY_BYTES,
  SessionKeys,
  SessionRouter,
  SessionSeal,
  hostPort,
} from '../../gateway/sessions.js';

const silent = pino({ level: 'silent' });
const key = () => randomBytes(SESSION_KEY_BYTES);
const route = { owner: { address: '10.0.0.7:18080', pod: 'kube-mcp-abc-1' }, inner: randomUUID() };

describe('the seal', () => {
  const k1 = key();
  const seal = new SessionSeal(new SessionKeys(undefined, [k1]), 'ns/kube-mcp');

  it('opens what it sealed, and only that', () => {
    const id = seal.seal(route);
    expect(id).toMatch(/^[A-Za-z0-9_-]{60,200}$/); // visible ASCII, as the spec asks of a session id
    expect(seal.open(id)).toEqual(route);
    expect(seal.seal(route)).not.toBe(id); // a fresh IV every time
    const raw = Buffer.from(id, 'base64url');
    for (let i = 0; i < raw.length; i++) {
      const bad = Buffer.from(raw);
      bad[i] = bad[i]! ^ 0x01;
      expect(seal.open(bad.toString('base64url'))).toBeUndefined();
    }
    for (const cut of [1, 10, raw.length - 1])
      expect(seal.open(raw.subarray(0, cut).toString('base64url'))).toBeUndefined();
    expect(seal.open(`${id}A`)).toBeUndefined();
    expect(seal.open(id + 'x'.repeat(2000))).toBeUndefined();
    expect(seal.open('not base64url!')).toBeUndefined();
    expect(seal.open('')).toBeUndefined();
    expect(seal.open(randomUUID())).toBeUndefined();
  });

  it("does not open another MCPServer's ids, nor ids of another key", () => {
    const id = seal.seal(route);
    expect(new SessionSeal(new SessionKeys(undefined, [k1]), 'ns/other').open(id)).toBeUndefined();
    expect(new SessionSeal(new SessionKeys(undefined, [k1]), 'other-ns/kube-mcp').open(id)).toBeUndefined();
    expect(new SessionSeal(new SessionKeys(undefined, [key()]), 'ns/kube-mcp').open(id)).toBeUndefined();
  });

  it('keeps ids of the previous key through one rotation, from the mounted files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubemcp-keys-'));
    try {
      const [a, b, c] = [key(), key(), key()];
      fs.writeFileSync(path.join(dir, 'current'), a);
      const s1 = new SessionSeal(new SessionKeys(dir), 'ns/x');
      const old = s1.seal(route);
      // One rotation: current b, previous a (what the operator writes); a new reader sees both.
      fs.writeFileSync(path.join(dir, 'current'), b);
      fs.writeFileSync(path.join(dir, 'previous'), a);
      const s2 = new SessionSeal(new SessionKeys(dir), 'ns/x');
      expect(s2.open(old)).toEqual(route);
      const sealedUnderB = s2.seal(route);
      expect(new SessionSeal(new SessionKeys(undefined, [b]), 'ns/x').open(sealedUnderB)).toEqual(route);
      // Two rotations: a is gone.
      fs.writeFileSync(path.join(dir, 'current'), c);
      fs.writeFileSync(path.join(dir, 'previous'), b);
      const s3 = new SessionSeal(new SessionKeys(dir), 'ns/x');
      expect(s3.open(old)).toBeUndefined();
      expect(s3.open(sealedUnderB)).toEqual(route);
      // A key file of the wrong length is ignored; no current key: nothing seals.
      fs.writeFileSync(path.join(dir, 'current'), Buffer.alloc(7));
      const s4 = new SessionSeal(new SessionKeys(dir), 'ns/x');
      expect(s4.enabled).toBe(false);
      expect(() => s4.seal(route)).toThrow(/no session key/);
      expect(s4.open(sealedUnderB)).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** An MCP server over Streamable HTTP with sessions in memory; `whoami` names it; `seen` counts requests. */
async function upstreamServer(name: string) {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push(String(req.headers['mcp-session-id'] ?? ''));
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown) : undefined;
      const sid = req.headers['mcp-session-id'] as string | undefined;
      let t = sid ? transports.get(sid) : undefined;
      if (!t && req.method === 'POST' && isInitializeRequest(body)) {
        const mcp = new McpServer({ name, version: '1.0.0' });
        mcp.registerTool('whoami', { inputSchema: { n: z.number() } }, ({ n }) => ({
          content: [{ type: 'text', text: `${name}:${n}` }],
        }));
        t = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => void transports.set(id, t!),
        });
        void mcp.connect(t);
      }
      if (!t) {
        res.writeHead(404, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }),
        );
      }
      void t.handleRequest(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A free loopback port (the router needs its own address before the gateway listens). */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('three gateways behind a balancer that picks one per request', () => {
  const CONTEXT = 'ns/kube-mcp';
  const keys = new SessionKeys(undefined, [key()]);
  const peers = new Set<string>();
  const peerSource = { current: async () => peers, fresh: async () => peers };
  const pods: Array<{
    name: string;
    address: string;
    up: Awaited<ReturnType<typeof upstreamServer>>;
    gw: RunningGatewayProxy;
    registry: Registry;
  }> = [];
  let balancer: http.Server;
  let balancerUrl: string;
  let turn = 0;
  const clients: Client[] = [];

  const routes = async (reg: Registry) =>
    Object.fromEntries(
      ((await reg.getSingleMetric('kubemcp_gateway_session_routes_total')?.get())?.values ?? []).map((v) => [
        v.labels.outcome,
        v.value,
      ]),
    );

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      const name = `kube-mcp-${i}`;
      const port = await freePort();
      const address = hostPort('127.0.0.1', port);
      const up = await upstreamServer(name);
      const registry = new Registry();
      const access = accessFromOptions({ auth: 'none', mcpserver: CONTEXT }, silent, registry);
      const sessions = new SessionRouter({
        seal: new SessionSeal(keys, CONTEXT),
        self: { address, pod: name },
        peers: peerSource,
        unwrap: true,
        log: silent,
        registry,
      });
      const gw = await startGatewayProxy({ upstream: up.url, port, access, registry, log: silent, sessions });
      peers.add(address);
      pods.push({ name, address, up, gw, registry });
    }
    // The balancer: each request to the next live gateway, whatever connection it came on.
    balancer = http.createServer((req, res) => {
      const live = pods.filter((p) => peers.has(p.address));
      const target = live[turn++ % live.length]!;
      const [host, port] = target.address.split(':');
      const up = http.request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers });
      up.on('response', (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => balancer.listen(0, '127.0.0.1', r));
    balancerUrl = `http://127.0.0.1:${(balancer.address() as AddressInfo).port}/mcp`;
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    balancer?.closeAllConnections();
    await new Promise<void>((r) => (balancer ? balancer.close(() => r()) : r()));
    for (const p of pods) {
      await p.gw.close();
      await p.up.close();
    }
  });

  const connect = async () => {
    const c = new Client({ name: 'sessions-test', version: '1.0.0' });
    await c.connect(new StreamableHTTPClientTransport(new URL(balancerUrl)));
    clients.push(c);
    return c;
  };
  const whoami = async (c: Client, n: number) =>
    ((await c.callTool({ name: 'whoami', arguments: { n } })).content as Array<{ text: string }>)[0]!.text;
  const post = (sid: string, extra: Record<string, string> = {}, to = balancerUrl) =>
    fetch(to, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-11-25',
        ...extra,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }),
    });

  it('answers 5 sessions x 10 calls with no failure, each by the server that holds its session', async () => {
    const owners: string[] = [];
    for (let s = 0; s < 5; s++) {
      const c = await connect();
      const answers: string[] = [];
      for (let n = 0; n < 10; n++) answers.push(await whoami(c, n));
      const owner = answers[0]!.split(':')[0]!;
      expect(answers).toEqual(Array.from({ length: 10 }, (_, n) => `${owner}:${n}`));
      owners.push(owner);
    }
    // The balancer spread the sessions, and requests crossed pods.
    expect(new Set(owners).size).toBeGreaterThan(1);
    const forwarded = (await Promise.all(pods.map((p) => routes(p.registry)))).reduce(
      (sum, r) => sum + (r.forwarded ?? 0),
      0,
    );
    expect(forwarded).toBeGreaterThan(10);
    // The id a client holds is sealed: no server's own id appears in it.
    const sid = (clients[0]!.transport as StreamableHTTPClientTransport).sessionId!;
    const opened = new SessionSeal(keys, CONTEXT).open(sid)!;
    expect(opened.owner.pod).toMatch(/^kube-mcp-\d$/);
    expect(sid).not.toContain(opened.inner);
    expect(pods.find((p) => p.name === opened.owner.pod)!.up.seen).toContain(opened.inner);
  });

  it('answers 404 to a forged, truncated, other-MCPServer or re-hopped id, and no server sees it', async () => {
    const sid = (clients[0]!.transport as StreamableHTTPClientTransport).sessionId!;
    const opened = new SessionSeal(keys, CONTEXT).open(sid)!;
    const other = pods.find((p) => p.name !== opened.owner.pod)!;
    const before = pods.map((p) => p.up.seen.length);
    const foreign = new SessionSeal(new SessionKeys(undefined, [key()]), CONTEXT).seal(opened);
    const otherServer = new SessionSeal(keys, 'ns/another').seal(opened);
    const bad = [
      randomUUID(),
      opened.inner,
      sid.slice(0, -4),
      `${sid.slice(0, 20)}x${sid.slice(21)}`,
      foreign,
      otherServer,
    ];
    for (const id of bad) {
      const r = await post(id);
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/Session not found/);
    }
    // A request marked as forwarded already is not forwarded again.
    const hop = await post(sid, { [FORWARDED_HEADER]: 'someone' }, `${other.gw.url}/mcp`);
    expect(hop.status).toBe(404);
    // A sealed id naming this address but another pod (the owner gone, its address reused).
    const reused = new SessionSeal(keys, CONTEXT).seal({
      owner: { address: other.address, pod: 'gone-pod' },
      inner: opened.inner,
    });
    expect((await post(reused, {}, `${other.gw.url}/mcp`)).status).toBe(404);
    expect(pods.map((p) => p.up.seen.length)).toEqual(before);
    const unknown = (await Promise.all(pods.map((p) => routes(p.registry)))).reduce(
      (sum, r) => sum + (r.unknown ?? 0) + (r.gone ?? 0) + (r.hop ?? 0),
      0,
    );
    expect(unknown).toBe(bad.length + 2);
  });

  it('answers 404 once the owner pod is gone, and a new session works', async () => {
    // Find a session owned by pod 2, or open sessions until one is.
    const seal = new SessionSeal(keys, CONTEXT);
    let victim = clients.find(
      (c) => seal.open((c.transport as StreamableHTTPClientTransport).sessionId!)?.owner.pod === 'kube-mcp-2',
    );
    for (let i = 0; !victim && i < 6; i++) {
      const c = await connect();
      if (seal.open((c.transport as StreamableHTTPClientTransport).sessionId!)?.owner.pod === 'kube-mcp-2') victim = c;
    }
    expect(victim).toBeDefined();
    const sid = (victim!.transport as StreamableHTTPClientTransport).sessionId!;
    // Its port refused while it is still listed as a current pod: 404.
    const pod2 = pods[2]!;
    await pod2.gw.close();
    const viaPod0 = `${pods[0]!.gw.url}/mcp`;
    expect((await post(sid, {}, viaPod0)).status).toBe(404);
    // No longer a current pod (the headless Service's records): 404 without a connection.
    peers.delete(pod2.address);
    expect((await post(sid, {}, viaPod0)).status).toBe(404);
    const fresh = await connect();
    expect(await whoami(fresh, 1)).toMatch(/^kube-mcp-[01]:1$/);
    expect((await routes(pods[0]!.registry)).gone).toBeGreaterThanOrEqual(2);
  });
});
