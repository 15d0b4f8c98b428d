/**
 * The HTTP side of `kubemcp bridge`: Streamable HTTP at `/mcp` (one SDK
 * StreamableHTTPServerTransport per session, as in mcp-server/http.ts), `/health` (liveness: the
 * bridge runs), `/ready` (readiness: the stdio process answered `initialize`; 503 with the reason
 * otherwise) and `/metrics` (Prometheus). Every message a session's client sends goes to
 * {@link StdioBridge.fromSession}; every message for the client comes back through the session's
 * transport.
 *
 * A loopback bind checks the Host header (DNS-rebinding protection, MCP spec 2025-11-25,
 * Transports > Security Warning) and refuses foreign Origins, with the same checks as
 * `kubemcp serve` (lib/http-guard.ts); in a pod it binds 0.0.0.0 behind the Service.
 *
 * Rollouts drain (issue 18, ../lib/http-drain.ts): on SIGTERM `/ready` answers 503 at once, a new
 * session's `initialize` gets 503 with Retry-After, and in-flight requests and existing sessions'
 * requests are still served (through the one stdio process) until none is in flight or the drain
 * deadline passes; `/.kubemcp/drained` answers then, which is the preStop hook of the stdio server's
 * container, so the process keeps running until the bridge is done (charts/mcpserver.ts).
 */
import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  SUPPORTED_PROTOCOL_VERSIONS,
  isInitializeRequest,
  isJSONRPCRequest,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { BRIDGE_ERROR, type BridgeSession, type StdioBridge } from './bridge.js';
import { httpGuard } from '../lib/http-guard.js';
import { readBody, rpcError, send, sessionFor } from '../lib/http-json.js';
import { summarize, type GatewayAccess, type RpcSummary } from './access.js';
import { looksModern } from '../lib/mcp-era.js';
import type { ModernFront } from './eras.js';
import type { Transport } from '@modelcontextprotocol/client';
import {
  filterToolsListMessage,
  refusedCalls,
  toolRefusal,
  toolsListIds,
  type ToolGrant,
  type ToolPolicy,
} from './tools.js';
import type { Identity } from './auth/tokenreview.js';
import { DRAIN_WAIT_PATH, HttpDrain, type DrainResult } from '../lib/http-drain.js';
import type { SessionRouter } from './sessions.js';

/** Options of {@link startBridgeHttp}. */
export interface BridgeHttpOptions {
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Port (0 picks a free one). */
  port: number;
  /** Most concurrent sessions (default 200); more are refused with 503. */
  maxSessions?: number;
  /** Sessions idle this long (ms) are closed (default 30 minutes). */
  sessionIdleMs?: number;
  /**
   * Who may call (./access.ts): every request to /mcp is authenticated, authorized and audited,
   * and a session belongs to the caller that initialized it (another caller gets 404). Without
   * it, /mcp is open (tests of the bridge alone).
   */
  access?: GatewayAccess;
  /** Per-tool access (`spec.auth.tools`, ./tools.ts); unset: every tool for every admitted caller. */
  tools?: ToolPolicy;
  /** The drain on SIGTERM (../lib/http-drain.ts): deadline and least drain time, ms. */
  drain?: { deadlineMs?: number; settleMs?: number };
  /**
   * Sealed sessions routed across replicas (./sessions.ts, issue 18): a new session's id is sealed
   * with this pod as its owner (and is the session's key here); another pod's session is forwarded
   * to that pod's bridge. Unset: random ids that live in this pod.
   */
  sessions?: SessionRouter;
  /**
   * MCP 2026-07-28 clients (./eras.ts, issue 18): answered by the bridge on a session of its own
   * into the process (default true; false leaves them to the 2025-era handling, which refuses them).
   */
  modernFront?: boolean;
}

/** A running bridge HTTP server. */
export interface RunningBridgeHttp {
  url: string;
  port: number;
  sessions: () => number;
  /**
   * Drains (the SIGTERM handler, ../lib/http-drain.ts): `/ready` 503 at once, a new session's
   * `initialize` 503 + Retry-After, in-flight and existing sessions' requests served; resolves when
   * none is in flight or at the deadline, with the HTTP server closed (the bridge itself stays open:
   * {@link close} and `StdioBridge.close` after it).
   */
  drain: () => Promise<DrainResult>;
  close: () => Promise<void>;
}

/**
 * Serves the bridge over HTTP; resolves once listening.
 * @throws when the port cannot be bound.
 */
export async function startBridgeHttp(
  bridge: StdioBridge,
  log: Logger,
  opts: BridgeHttpOptions,
): Promise<RunningBridgeHttp> {
  const host = opts.host ?? '127.0.0.1';
  const guard = httpGuard({ host });
  const maxSessions = opts.maxSessions ?? 200;
  const idleMs = opts.sessionIdleMs ?? 30 * 60_000;
  const sessions = new Map<
    string,
    {
      transport: StreamableHTTPServerTransport;
      seen: number;
      owner: string;
      /** The owner's tools (./tools.ts) and the ids of its tools/list requests not yet answered. */
      grant?: ToolGrant;
      listIds: unknown[];
    }
  >();
  const access = opts.access;

  const closeSession = (id: string) => {
    const s = sessions.get(id);
    if (!s) return;
    sessions.delete(id);
    bridge.removeSession(id);
    void s.transport.close().catch(() => undefined);
  };

  /**
   * The access check and audit of one /mcp request (./access.ts): the caller's name (undefined
   * when refused, the refusal already answered); the audit line is written when `res` finishes.
   */
  const admit = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    rpc: RpcSummary[],
  ): Promise<{ user: string; identity?: Identity } | undefined> => {
    if (!access) return { user: 'system:anonymous' };
    const finish = access.audit(req, rpc);
    const decision = await access.check(req);
    if (!decision.ok) {
      access.refuse(res, decision);
      finish(decision.status, decision.identity, decision.outcome);
      return undefined;
    }
    const identity: Identity | undefined = decision.identity;
    res.on('close', () => finish(res.statusCode, identity));
    return { user: identity?.username ?? 'system:anonymous', identity };
  };
  /** Another caller's session is answered as unknown (404), so its id is worth nothing to anyone else. */
  const owned = (sid: string | undefined, user: string) => {
    const s = sid ? sessions.get(sid) : undefined;
    return s && s.owner !== user ? undefined : s;
  };

  const router = opts.sessions;
  // Loaded on the first 2026-07-28 request; its sessions go into the process like any client's.
  let modern: Promise<ModernFront> | undefined;
  const modernFront = () =>
    (modern ??= import('./eras.js').then(
      (m) =>
        new m.ModernFront({
          upstream: 'http://bridge.invalid', // unused: the transport below goes into the process
          log,
          registry: bridge.registry,
          negotiation: 'legacy', // the bridge answers initialize for its process
          transport: () => bridgeClientTransport(bridge),
        }),
    ));
  const handleMcp = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Sealed sessions (./sessions.ts): another pod's session goes there as it comes (body unread);
    // one that does not open is 404 before anything else.
    if (router) {
      const r = await router.route(req, res);
      if (!r.local) {
        if (r.unknown) access?.audit(req, [])(404, undefined, 'denied');
        return;
      }
    }
    const sid = req.headers['mcp-session-id'] as string | undefined;
    if (req.method === 'POST') {
      const raw = await readBody(req, bridge.maxMessageBytes);
      if (raw === 'too-large')
        return rpcError(
          res,
          413,
          BRIDGE_ERROR.messageTooLarge,
          `request body exceeds the bridge's limit of ${bridge.maxMessageBytes} bytes`,
        );
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        if ((await admit(req, res, [{ method: 'unparsable' }])) === undefined) return;
        return rpcError(res, 400, -32700, 'Parse error: the body is not JSON');
      }
      const rpc = summarize(body);
      if (rpc.length === 1) drain.describe(res, { method: rpc[0]!.method, tool: rpc[0]!.name, id: rpc[0]!.id });
      const caller = await admit(req, res, rpc);
      if (caller === undefined) return;
      const { user, identity } = caller;
      // Per-tool access (./tools.ts): a refused tools/call never reaches the process.
      const grant = opts.tools?.grant(identity);
      const refused = grant ? refusedCalls(body, grant) : [];
      if (refused.length) {
        const errors = refused.map((r) => toolRefusal(r.id, r.name, identity));
        return send(res, Array.isArray(body) ? 403 : 200, Array.isArray(body) ? errors : errors[0]);
      }
      // A 2026-07-28 request (no session): answered on the front's own session into the process.
      if (!sid && opts.modernFront !== false && looksModern(body)) {
        const front = await modernFront();
        let mine: boolean;
        try {
          mine = await front.wants(req, body, identity);
        } catch (err) {
          return rpcError(res, 503, -32603, `the stdio server is not ready: ${(err as Error).message}`);
        }
        if (mine) return front.serve(req, res, body, identity, grant);
      }
      if (sid) {
        const s = owned(sid, user);
        if (!s) return rpcError(res, 404, -32001, 'Session not found: initialize a new session');
        s.seen = Date.now();
        if (plainRequest(req, body)) return answerAsJson(sid, res, body, s.grant);
        if (s.grant && !s.grant.all) s.listIds.push(...toolsListIds(body).slice(0, 32));
        if (s.listIds.length > 256) s.listIds.splice(0, s.listIds.length - 256);
        return s.transport.handleRequest(req, res, body);
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
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => (router ? router.sealNew(randomUUID()) : randomUUID()),
        onsessioninitialized: (id) => {
          const state = { transport, seen: Date.now(), owner: user, grant, listIds: [] as unknown[] };
          const session: BridgeSession = {
            id,
            // A tools/list answer of this session is reduced to the owner's tools.
            send: (m, o) => transport.send(listed(state, m), o),
          };
          sessions.set(id, state);
          bridge.addSession(session);
          transport.onmessage = (m) => void bridge.fromSession(session, m);
        },
        onsessionclosed: (id) => closeSession(id),
      });
      transport.onclose = () => {
        if (transport.sessionId) closeSession(transport.sessionId);
      };
      return transport.handleRequest(req, res, body);
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      const caller = await admit(req, res, []);
      if (caller === undefined) return;
      const s = sessionFor(res, sid, sessions, (x) => x.owner === caller.user);
      if (!s) return;
      await s.transport.handleRequest(req, res);
      if (req.method === 'DELETE' && sid) closeSession(sid);
      return;
    }
    res.setHeader('Allow', 'GET, POST, DELETE');
    rpcError(res, 405, -32000, 'Method not allowed');
  };

  /**
   * A single request of an initialized session that asks for no progress (so nothing but its
   * response will ever be sent for it): answered as one `application/json` body, which the spec
   * allows for any request (Transports > Streamable HTTP > Sending Messages to the Server: the
   * server returns either an SSE stream or one JSON object). This skips the SDK transport's
   * conversion to web Request/Response and SSE streams, about half of the bridge's work per
   * call (bench/bridge-bench.ts). Everything else goes through the SDK transport.
   */
  const plainRequest = (req: http.IncomingMessage, body: unknown): body is JSONRPCMessage => {
    const accept = req.headers.accept ?? '';
    const version = req.headers['mcp-protocol-version'] as string | undefined;
    return (
      accept.includes('application/json') &&
      accept.includes('text/event-stream') &&
      /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '') &&
      (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version)) &&
      isJSONRPCRequest(body) &&
      body.method !== 'initialize' &&
      (body.params?._meta as { progressToken?: unknown } | undefined)?.progressToken === undefined
    );
  };
  /** `m` as the session's owner may see it: a tools/list answer filtered (./tools.ts). */
  const listed = (state: { grant?: ToolGrant; listIds: unknown[] }, m: JSONRPCMessage): JSONRPCMessage => {
    if (!state.grant || state.grant.all || !state.listIds.length) return m;
    const id = (m as { id?: unknown }).id;
    const at = state.listIds.indexOf(id);
    if (at < 0 || !('result' in m || 'error' in m)) return m;
    state.listIds.splice(at, 1);
    return filterToolsListMessage(m, [id], state.grant);
  };
  const answerAsJson = (sid: string, res: http.ServerResponse, body: JSONRPCMessage, grant?: ToolGrant) => {
    const ids = grant && !grant.all ? toolsListIds(body) : [];
    const session: BridgeSession = {
      id: sid,
      send: async (m) => {
        if (res.headersSent || res.destroyed) return;
        res.writeHead(200, { 'Content-Type': 'application/json', 'mcp-session-id': sid });
        res.end(JSON.stringify(grant && ids.length ? filterToolsListMessage(m, ids, grant) : m));
      },
    };
    return bridge.fromSession(session, body);
  };

  const server = http.createServer((req, res) => {
    const run = async () => {
      if (!(await guard.check(req, res))) return;
      const path = new URL(req.url ?? '/', 'http://placeholder').pathname.replace(/\/+$/, '') || '/';
      if (path === '/health') return send(res, 200, { status: 'ok', ...bridge.status(), sessions: sessions.size });
      if (path === '/ready') {
        if (drain.answerReadiness(res)) return;
        const s = bridge.status();
        return send(
          res,
          s.ready ? 200 : 503,
          s.ready ? { status: 'ready', serverInfo: s.serverInfo } : { status: 'not ready', reason: s.reason },
        );
      }
      if (path === '/metrics' && req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': bridge.registry.contentType });
        return res.end(await bridge.registry.metrics());
      }
      // The stdio server container's preStop hook (charts/mcpserver.ts): answered when the drain has ended.
      if (path === DRAIN_WAIT_PATH && req.method === 'GET') return drain.waitDrained(res);
      if (access?.serveMetadata(req, res, path)) return;
      if (path === '/mcp') {
        // In flight until the answer closes; a GET (the session's SSE stream) is not waited for.
        if (req.method === 'GET') drain.stream(res);
        else drain.track(res, { session: req.headers['mcp-session-id'] as string | undefined });
        return handleMcp(req, res);
      }
      rpcError(res, 404, -32000, `Not found: ${path} (the MCP endpoint is /mcp)`);
    };
    run().catch((err) => {
      log.error({ err: (err as Error).message }, 'HTTP request failed');
      rpcError(res, 500, -32603, `Internal error: ${(err as Error).message}`);
    });
  });
  server.requestTimeout = 0; // SSE streams stay open
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
  const drain = new HttpDrain(server, { name: 'kubemcp bridge', log, ...opts.drain });

  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [id, s] of sessions) if (now - s.seen > idleMs) closeSession(id);
    },
    Math.min(60_000, idleMs),
  ).unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  log.info({ host, port }, 'kubemcp bridge: Streamable HTTP at /mcp');
  return {
    url: `http://${shown}:${port}/mcp`,
    port,
    sessions: () => sessions.size,
    drain: async () => {
      const result = await drain.begin();
      clearInterval(sweep);
      for (const id of [...sessions.keys()]) closeSession(id);
      return result;
    },
    close: async () => {
      clearInterval(sweep);
      for (const id of [...sessions.keys()]) closeSession(id);
      router?.close();
      await (await modern)?.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A client transport whose server is the bridge's process: each message goes to
 * {@link StdioBridge.fromSession} as a session of its own (the bridge answers `initialize` and
 * rewrites ids, as for any client), and what the bridge sends the session comes back through
 * `onmessage`; it is registered with the bridge on start and removed on close. For ./eras.ts's
 * upstream sessions.
 */
export function bridgeClientTransport(bridge: StdioBridge): Transport {
  const id = `modern-front-${randomUUID()}`;
  let closed = false;
  // Registered like any client's session: the process's notifications (list_changed) and its
  // requests during a call (elicitation, sampling, roots) reach it.
  // Each message on a turn of its own, in order: the client SDK handles a notification
  // asynchronously and a response at once, so a progress notification delivered in the same
  // turn as the result it precedes would reach the client after its request had ended.
  let delivered = Promise.resolve();
  const session: BridgeSession = {
    id,
    send: (m) =>
      (delivered = delivered.then(
        () => new Promise<void>((r) => setImmediate(() => (t.onmessage?.(m as never), r()))),
      )),
  };
  const t: Transport = {
    start: async () => bridge.addSession(session),
    send: async (message) => {
      if (closed) throw new Error('the bridge session is closed');
      await bridge.fromSession(session, message as JSONRPCMessage);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      bridge.removeSession(id);
      t.onclose?.();
    },
  };
  return t;
}
