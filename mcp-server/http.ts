/**
 * Streamable HTTP transport of `kubemcp serve` (seed 001: `/mcp`, port 3001, `/health`,
 * `/ready`; issue 5: 127.0.0.1 by default, Host-header DNS-rebinding protection, Origin check,
 * optional bearer token, configurable CORS, per-session state with a clean DELETE, a stateless
 * option for many replicas, `/metrics`).
 *
 * Built on node:http and the SDK's StreamableHTTPServerTransport (it takes node's
 * IncomingMessage/ServerResponse directly); Host, Origin, CORS and the bearer token are checked
 * by http-guard.ts (the SDK's middleware and the `cors` package), shared with the bridge.
 *
 * Rollouts drain (issue 18, ../lib/http-drain.ts): {@link RunningHttp.drain} (SIGTERM,
 * ./command.ts runServe) turns `/ready` 503 at once, answers a new session's `initialize` with 503
 * and Retry-After (stateless mode has no sessions: its requests are served), and serves in-flight
 * requests and existing sessions until none is in flight or the deadline. Behind the pod's gateway
 * this process gets SIGTERM only after the gateway has drained (runServe says why).
 */
import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { buildServer, type BuiltServer, type ServerDeps } from './server.js';
import { SubscriptionHub } from './resources.js';
import { Metrics } from './metrics.js';
import { callerKey, checkCaller, errorText, runAsCaller, type Caller } from './kube.js';
import { httpGuard } from '../lib/http-guard.js';
import { readBody, rpcError, send, sessionFor } from '../lib/http-json.js';
import { HttpDrain, type DrainResult } from '../lib/http-drain.js';
import { looksModern } from '../lib/mcp-era.js';
import type { ModernServe } from './modern.js';

/** Options of the HTTP transport. */
export interface HttpOptions {
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Port (default 3001, seed 001); 0 picks a free one. */
  port?: number;
  /** Host header names accepted (DNS-rebinding protection). Default for a loopback bind: localhost, 127.0.0.1, [::1]; for other binds: any, unless set. */
  allowedHosts?: string[];
  /** Origins allowed for CORS and the Origin check; `*` allows any. Default none (browsers' cross-origin requests refused). */
  corsOrigins?: string[];
  /** Bearer token required on /mcp and /metrics when set. */
  token?: string;
  /** No sessions: a fresh server per POST (for many replicas behind a load balancer). */
  stateless?: boolean;
  /**
   * Serve 2025-era clients only: no MCP 2026-07-28 leg (./modern.ts); a 2026-07-28 request gets
   * the 2025 answer to a request without a session (400: initialize first). Default false.
   */
  legacyOnly?: boolean;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Most concurrent sessions (default 200); more are refused with 503. */
  maxSessions?: number;
  /** Sessions idle this long (ms) are closed (default 30 minutes). */
  sessionIdleMs?: number;
  /**
   * `gateway`: act as the caller the pod's gateway verified ({@link callerFromGateway}); `/mcp`
   * from anything but a loopback peer is refused (issue 17). The KubeGateway must impersonate.
   */
  impersonate?: 'gateway';
  /** The drain on SIGTERM (../lib/http-drain.ts): deadline and least drain time, ms. */
  drain?: { deadlineMs?: number; settleMs?: number };
}

/** Whether a socket's peer address is loopback (IPv4 127/8, ::1, or IPv4-mapped 127/8). */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/**
 * The caller of a request the pod's gateway forwarded (issue 17): `X-Remote-User` (exactly one)
 * and every `X-Remote-Group` value, as gateway/access.ts upstreamHeaders sets them, accepted only
 * from a loopback peer, i.e. a process of this pod's own network namespace: the gateway. A client
 * elsewhere cannot send from 127.0.0.1 (the kernel drops such packets from outside the host), so
 * no header it sends is ever taken for an identity.
 * @returns the caller, or a refusal (HTTP status and the reason said to the client).
 */
export function callerFromGateway(
  req: http.IncomingMessage,
): { ok: true; caller: Caller } | { ok: false; status: 401 | 403; reason: string } {
  if (!isLoopbackPeer(req.socket.remoteAddress))
    return {
      ok: false,
      status: 403,
      reason: `this server acts as its caller and takes calls only from its pod's gateway; ${req.socket.remoteAddress ?? 'this peer'} is not it: call the MCPServer's Service`,
    };
  const users = req.headersDistinct['x-remote-user'] ?? [];
  if (users.length !== 1 || !users[0])
    return {
      ok: false,
      status: 401,
      reason: `no verified caller: the gateway sends exactly one X-Remote-User (got ${users.length}); is the MCPServer's spec.auth.mode none?`,
    };
  try {
    return {
      ok: true,
      caller: checkCaller({ username: users[0], groups: req.headersDistinct['x-remote-group'] ?? [] }),
    };
  } catch (err) {
    return { ok: false, status: 403, reason: (err as Error).message };
  }
}

/** A running HTTP server. */
export interface RunningHttp {
  url: string;
  port: number;
  server: http.Server;
  sessions: () => number;
  /** Apiserver watches the subscriptions of all sessions hold (shared per target). */
  watches: () => number;
  /**
   * Drains (SIGTERM, ../lib/http-drain.ts): `/ready` 503 at once, a new session's `initialize` 503
   * + Retry-After, in-flight requests and existing sessions served; resolves when none is in
   * flight (at least `drain.settleMs`) or at the deadline, with the HTTP server closed. Then {@link close}.
   */
  drain: () => Promise<DrainResult>;
  close: () => Promise<void>;
}

/**
 * Starts the HTTP server and resolves once it listens.
 * @throws when the port cannot be bound.
 */
export async function startHttp(deps: ServerDeps & { log: Logger }, opts: HttpOptions = {}): Promise<RunningHttp> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.impersonate && !deps.kube.impersonate)
    throw new Error('startHttp: impersonate needs a KubeGateway built with impersonate: true');
  const guard = httpGuard({ host, allowedHosts: opts.allowedHosts, corsOrigins: opts.corsOrigins, token: opts.token });
  const maxBody = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  const maxSessions = opts.maxSessions ?? 200;
  const idleMs = opts.sessionIdleMs ?? 30 * 60_000;
  const metrics = deps.metrics ?? new Metrics();
  // One hub for all sessions: one apiserver watch per target, bounded per session and per server.
  const hub = opts.stateless ? undefined : (deps.hub ?? new SubscriptionHub(deps, deps.hubOptions));
  const serverDeps: ServerDeps = { ...deps, metrics, ...(hub ? { hub } : {}), subscriptions: !opts.stateless };
  const sessions = new Map<
    string,
    { transport: StreamableHTTPServerTransport; built: BuiltServer; seen: number; owner: string }
  >();
  let ready = { at: 0, ok: false, reason: '' };
  let modern: Promise<ModernServe> | undefined;
  const modernLeg = () => (modern ??= import('./modern.js').then((m) => new m.ModernServe(serverDeps)));

  const closeSession = async (id: string) => {
    const s = sessions.get(id);
    if (!s) return;
    sessions.delete(id);
    metrics.sessions.set(sessions.size);
    await s.built.close().catch(() => undefined);
  };

  const handleMcp = async (req: http.IncomingMessage, res: http.ServerResponse, caller?: Caller) => {
    const sid = req.headers['mcp-session-id'] as string | undefined;
    const owner = callerKey(caller);
    // Another caller's session is not found (MCP security best practices, session hijacking).
    if (sid && sessions.get(sid) && sessions.get(sid)!.owner !== owner)
      return rpcError(res, 404, -32001, 'Session not found: initialize a new session');
    if (req.method === 'POST') {
      const raw = await readBody(req, maxBody);
      if (raw === 'too-large') return rpcError(res, 413, -32600, `request body exceeds ${maxBody} bytes`);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return rpcError(res, 400, -32700, 'Parse error: the body is not JSON');
      }
      if (!Array.isArray(body)) {
        const m = body as { method?: unknown; id?: unknown; params?: { name?: unknown } };
        drain.describe(res, {
          method: typeof m?.method === 'string' ? m.method : undefined,
          tool: m?.method === 'tools/call' && typeof m.params?.name === 'string' ? m.params.name : undefined,
          id: m?.id,
        });
      }
      // MCP 2026-07-28 (no session, the `_meta` envelope): the SDK v2's modern leg (./modern.ts),
      // loaded on the first such request, so 2025-era clients never load it.
      if (!sid && !opts.legacyOnly && looksModern(body)) {
        const leg = await modernLeg();
        if (await leg.wants(req, body)) return leg.serve(req, res, body);
      }
      if (opts.stateless) {
        const built = buildServer(serverDeps);
        const transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: undefined,
          enableJsonResponse: true,
        });
        res.on('close', () => {
          void transport.close();
          void built.close();
        });
        await built.server.connect(transport);
        await transport.handleRequest(req, res, body);
        return;
      }
      if (sid) {
        const s = sessions.get(sid);
        if (!s) return rpcError(res, 404, -32001, 'Session not found: initialize a new session');
        s.seen = Date.now();
        await s.transport.handleRequest(req, res, body);
        return;
      }
      if (!isInitializeRequest(body))
        return rpcError(
          res,
          400,
          -32000,
          'Bad Request: no Mcp-Session-Id header; the first request must be initialize',
        );
      // Draining: no new session here; the client retries on another replica (Retry-After).
      if (drain.draining) return drain.refuse(res, (body as { id?: unknown }).id);
      if (sessions.size >= maxSessions)
        return rpcError(res, 503, -32000, `too many sessions (${maxSessions}); close one with DELETE /mcp`);
      const built = buildServer(serverDeps);
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, built, seen: Date.now(), owner });
          metrics.sessions.set(sessions.size);
        },
        onsessionclosed: (id) => {
          void closeSession(id);
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) void closeSession(transport.sessionId);
      };
      await built.server.connect(transport);
      await transport.handleRequest(req, res, body);
      return;
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      if (opts.stateless)
        return rpcError(res, 405, -32000, 'Method not allowed: the server is stateless', { Allow: 'POST' });
      const s = sessionFor(res, sid, sessions);
      if (!s) return;
      await s.transport.handleRequest(req, res);
      if (req.method === 'DELETE' && sid) await closeSession(sid);
      return;
    }
    rpcError(res, 405, -32000, 'Method not allowed', { Allow: 'GET, POST, DELETE' });
  };

  const checkReady = async () => {
    if (Date.now() - ready.at < 2000) return ready;
    try {
      await deps.kube.request({ path: '/version', timeoutMs: 3000, asServer: true });
      ready = { at: Date.now(), ok: true, reason: '' };
    } catch (err) {
      ready = { at: Date.now(), ok: false, reason: errorText(err) };
    }
    return ready;
  };

  const server = http.createServer((req, res) => {
    const run = async () => {
      // Host (DNS rebinding), Origin and CORS; a preflight is answered there.
      if (!(await guard.check(req, res))) return;
      const url = new URL(req.url ?? '/', 'http://placeholder');
      const path = url.pathname.replace(/\/+$/, '') || '/';
      if (path === '/health')
        return send(res, 200, { status: 'ok', transport: 'streamable-http', sessions: sessions.size });
      if (path === '/ready') {
        if (drain.answerReadiness(res)) return;
        const r = await checkReady();
        return send(res, r.ok ? 200 : 503, r.ok ? { status: 'ready' } : { status: 'not ready', reason: r.reason });
      }
      // The bearer token guards /mcp and /metrics (not the probes).
      if ((path === '/mcp' || path === '/metrics') && !(await guard.authorize(req, res))) return;
      if (path === '/metrics' && req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
        return res.end(await metrics.registry.metrics());
      }
      // /mcp work is in flight until its answer closes; a GET (a session's SSE stream) is not waited for.
      if (path === '/mcp') {
        if (req.method === 'GET') drain.stream(res);
        else drain.track(res, { session: req.headers['mcp-session-id'] as string | undefined });
      }
      if (path === '/mcp' && opts.impersonate) {
        const who = callerFromGateway(req);
        if (!who.ok) {
          deps.log.warn({ peer: req.socket.remoteAddress, reason: who.reason }, 'call refused: no caller to act as');
          return rpcError(res, who.status, -32001, who.reason);
        }
        return runAsCaller(who.caller, () => handleMcp(req, res, who.caller));
      }
      if (path === '/mcp') return handleMcp(req, res);
      rpcError(res, 404, -32000, `Not found: ${path} (the MCP endpoint is /mcp)`);
    };
    run().catch((err) => {
      deps.log.error({ err: errorText(err) }, 'HTTP request failed');
      rpcError(res, 500, -32603, `Internal error: ${errorText(err)}`);
    });
  });
  server.requestTimeout = 0; // SSE streams of GET /mcp stay open
  server.headersTimeout = 30_000;
  const drain = new HttpDrain(server, { name: 'kubemcp serve', log: deps.log, ...opts.drain });

  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [id, s] of sessions) if (now - s.seen > idleMs) void closeSession(id);
    },
    Math.min(60_000, idleMs),
  ).unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 3001, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  deps.log.info(
    { host, port, stateless: !!opts.stateless, auth: !!opts.token, impersonate: opts.impersonate ?? 'off' },
    'kubemcp serve: Streamable HTTP at /mcp',
  );
  return {
    url: `http://${shown}:${port}/mcp`,
    port,
    server,
    sessions: () => sessions.size,
    watches: () => hub?.watches ?? 0,
    drain: () => drain.begin(),
    close: async () => {
      clearInterval(sweep);
      await (await modern)?.close().catch(() => undefined);
      await Promise.all([...sessions.keys()].map((id) => closeSession(id)));
      if (hub !== deps.hub) hub?.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
