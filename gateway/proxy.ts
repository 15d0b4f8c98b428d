/**
 * The gateway's reverse-proxy mode (`kubemcp gateway`, issue 17): in an MCPServer pod that runs an
 * HTTP or Streamable HTTP server, the Service's port targets this process, which passes each
 * request the access layer (./access.ts) lets through to the server container on loopback, and
 * its answer (JSON or an SSE stream) back, unchanged, except for per-tool access (./tools.ts):
 * a refused `tools/call` is answered here, and a `tools/list` answer is filtered to the caller's tools.
 *
 * ```
 *  client ──▶ Service <name>:<spec.port> ──▶ gateway :<gateway port> ──▶ 127.0.0.1:<spec.port> server container
 *             (Authorization: Bearer ...)     strip identity headers,      (X-Remote-User/-Group set,
 *                                             TokenReview, SAR, audit      no Authorization)
 * ```
 *
 * The gateway's own paths live under `/.kubemcp/` (`healthz`, `metrics`); every other path goes
 * upstream. A request body is read in full (bounded by `maxBodyBytes`, 413 beyond) so the audit
 * line can name the JSON-RPC method and tool; responses stream.
 *
 * With `sessions` (./sessions.ts, issue 18) the session id a client sees is the server's sealed
 * with this pod as its owner, so a request of it that lands on another replica is forwarded here.
 *
 * Sessions (MCP 2025-11-25, Streamable HTTP > Session Management) are bound to their caller
 * (MCP security best practices: key state by `<user id>:<session id>`; anchors/gateway.md pitfall
 * 6): the first caller seen with an `Mcp-Session-Id` owns it, and another caller presenting it gets
 * 404 "Session not found", as if it did not exist, without reaching the server.
 *
 * Rollouts drain (issue 18, ../lib/http-drain.ts): on SIGTERM `/.kubemcp/readyz` answers 503 at
 * once (`/.kubemcp/healthz` stays 200: liveness), a new session's `initialize` gets 503 with
 * Retry-After, and every other request still goes upstream until none is in flight or the drain
 * deadline passes; `/.kubemcp/drained` answers then, which is the server container's preStop hook,
 * so the server keeps serving until the gateway is done (charts/mcpserver.ts).
 */
import * as http from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { summarize, upstreamHeaders, type GatewayAccess, type RpcSummary } from './access.js';
import { isInitializeMessage, looksModern } from '../lib/mcp-era.js';
import type { ModernFront } from './eras.js';
import { readBody, rpcError, send } from '../lib/http-json.js';
import { httpGuard, LOOPBACK } from '../lib/http-guard.js';
import {
  filterToolsListBody,
  refusedCalls,
  toolRefusal,
  toolsListIds,
  type ToolGrant,
  type ToolPolicy,
} from './tools.js';

import { GATEWAY_HEALTH_PATH, GATEWAY_METRICS_PATH, GATEWAY_PATH_PREFIX } from './wiring.js';
import { DRAIN_WAIT_PATH, GATEWAY_READY_PATH, HttpDrain, type DrainResult } from '../lib/http-drain.js';
import type { SessionRoute, SessionRouter } from './sessions.js';

/** Options of {@link startGatewayProxy}. */
export interface GatewayProxyOptions {
  /** The server container, `http://127.0.0.1:<port>` (loopback: the pod's own network namespace). */
  upstream: string;
  /** Bind address (default 127.0.0.1; 0.0.0.0 in a pod). */
  host?: string;
  /** Port (0 picks a free one). */
  port: number;
  access: GatewayAccess;
  registry: Registry;
  log: Logger;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Most sessions remembered with their owner (default 10 000; the oldest is forgotten first). */
  maxSessions?: number;
  /** Per-tool access (`spec.auth.tools`, ./tools.ts); unset: every tool for every admitted caller. */
  tools?: ToolPolicy;
  /** The drain on SIGTERM (../lib/http-drain.ts): deadline and least drain time, ms. */
  drain?: { deadlineMs?: number; settleMs?: number };
  /**
   * Sealed sessions routed across replicas (./sessions.ts, issue 18): the client sees the server's
   * session id sealed with this pod as owner; another pod's session is forwarded to it. Unset:
   * sessions are the server's own ids and live in this pod.
   */
  sessions?: SessionRouter;
  /**
   * MCP 2026-07-28 clients in front of a 2025-era server (./eras.ts, issue 18): the gateway answers
   * their requests itself on a session it holds with the server (default true; false passes
   * every request through as it comes).
   */
  modernFront?: boolean;
}

/** Largest tools/list answer the gateway buffers to filter, in bytes. */
export const MAX_FILTERED_BYTES = 16 * 1024 * 1024;

/** A running gateway. */
export interface RunningGatewayProxy {
  url: string;
  port: number;
  /**
   * Drains (the SIGTERM handler, ../lib/http-drain.ts): readiness 503 at once, a new session's
   * `initialize` 503 + Retry-After, in-flight requests and an existing session's requests still
   * passed upstream; resolves when they finished or at the deadline, with the server closed.
   */
  drain: () => Promise<DrainResult>;
  close: () => Promise<void>;
}

/**
 * Serves the gateway; resolves once listening.
 * @throws when the port cannot be bound or `upstream` is not an http URL.
 */
export async function startGatewayProxy(opts: GatewayProxyOptions): Promise<RunningGatewayProxy> {
  const upstream = new URL(opts.upstream);
  if (upstream.protocol !== 'http:') throw new Error(`--upstream must be an http:// URL, got ${opts.upstream}`);
  const maxBody = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  const maxSessions = opts.maxSessions ?? 10_000;
  const owners = new Map<string, string>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const { access, log } = opts;
  const bind = opts.host ?? '127.0.0.1';
  const guard = LOOPBACK.includes(bind) ? httpGuard({ host: bind }) : undefined;
  // Loaded on the first 2026-07-28 request: the SDK v2 packages cost nothing until a modern client comes.
  let modern: Promise<ModernFront> | undefined;
  const modernFront = () =>
    (modern ??= import('./eras.js').then(
      (m) => new m.ModernFront({ upstream: opts.upstream, log, registry: opts.registry }),
    ));

  const ownerOk = (sid: string, user: string): boolean => {
    const owner = owners.get(sid);
    if (owner !== undefined) return owner === user;
    remember(sid, user);
    return true;
  };
  const remember = (sid: string, user: string) => {
    if (owners.size >= maxSessions) owners.delete(owners.keys().next().value!);
    owners.set(sid, user);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://placeholder').pathname;
    if (path.startsWith(GATEWAY_PATH_PREFIX)) {
      if (path === GATEWAY_HEALTH_PATH) return send(res, 200, { status: 'ok' });
      // Readiness: 503 from the first moment of a drain; liveness (healthz) stays 200.
      if (path === GATEWAY_READY_PATH) return drain.answerReadiness(res) || send(res, 200, { status: 'ready' });
      // The server container's preStop hook (charts/mcpserver.ts): answered when the drain has ended.
      if (path === DRAIN_WAIT_PATH && req.method === 'GET') return drain.waitDrained(res);
      if (path === GATEWAY_METRICS_PATH && req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': opts.registry.contentType });
        return res.end(await opts.registry.metrics());
      }
      return rpcError(res, 404, -32000, `Not found: ${path}`);
    }
    // On a loopback bind (a gateway run on a workstation), the Host and Origin checks of every
    // loopback MCP server here (DNS-rebinding protection, ../lib/http-guard.ts); in a pod it binds
    // 0.0.0.0 and the caller's token is what lets a request through.
    if (guard && !(await guard.check(req, res))) return;
    if (access.serveMetadata(req, res, path)) return;
    // Every proxied request is in flight until its answer closes; a GET SSE stream is not waited for.
    const upstreamOf: { request?: http.ClientRequest } = {}; // set below, read when the drain ends the stream
    if (req.method === 'GET' && /text\/event-stream/i.test(req.headers.accept ?? ''))
      drain.stream(res, () => {
        upstreamOf.request?.destroy();
        res.end();
      });
    else drain.track(res, { session: req.headers['mcp-session-id'] as string | undefined });
    // Sealed sessions (./sessions.ts): another pod's session goes there as it comes; one that does
    // not open is 404 before anything else; this pod's own has its header turned into the server's id.
    const sealed = req.headers['mcp-session-id'] as string | undefined;
    let route: SessionRoute | undefined;
    if (opts.sessions) {
      const r = await opts.sessions.route(req, res);
      if (!r.local) {
        if (r.unknown) access.audit(req, [])(404, undefined, 'denied');
        return;
      }
      route = r.route;
    }
    let body: Buffer | undefined;
    let parsed: unknown;
    let rpc: RpcSummary[] = [];
    if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
      const raw = await readBody(req, maxBody);
      if (raw === 'too-large') {
        const finish = access.audit(req, []);
        rpcError(res, 413, -32600, `request body exceeds the gateway's limit of ${maxBody} bytes`);
        return finish(413, undefined, 'invalid');
      }
      body = raw;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
        rpc = summarize(parsed);
      } catch {
        rpc = [{ method: 'unparsable' }];
      }
    }
    const finish = access.audit(req, rpc);
    const decision = await access.check(req);
    if (!decision.ok) {
      access.refuse(res, decision);
      return finish(decision.status, decision.identity, decision.outcome);
    }
    const user = decision.identity?.username ?? 'system:anonymous';
    const sid = req.headers['mcp-session-id'];
    if (rpc.length === 1) drain.describe(res, { method: rpc[0]!.method, tool: rpc[0]!.name, id: rpc[0]!.id });
    // Draining: no new session here; the client retries on another replica (Retry-After).
    if (drain.draining && sid === undefined && isInitializeMessage(parsed)) {
      drain.refuse(res, (parsed as { id?: unknown }).id);
      return finish(503, decision.identity, 'error');
    }
    if (typeof sid === 'string' && !ownerOk(sid, user)) {
      rpcError(res, 404, -32001, 'Session not found: initialize a new session');
      return finish(404, decision.identity, 'denied');
    }

    // Per-tool access (./tools.ts): a refused tools/call never reaches the server; a tools/list
    // answer is rewritten to the tools the caller may call.
    const grant = opts.tools?.grant(decision.identity);
    const refused = grant ? refusedCalls(parsed, grant) : [];
    if (refused.length) {
      const errors = refused.map((r) => toolRefusal(r.id, r.name, decision.identity));
      send(res, Array.isArray(parsed) ? 403 : 200, Array.isArray(parsed) ? errors : errors[0]);
      return finish(Array.isArray(parsed) ? 403 : 200, decision.identity, 'denied');
    }
    const listIds = grant && !grant.all ? toolsListIds(parsed) : [];

    // A 2026-07-28 request to a 2025-era server: answered here, on the caller's upstream session (./eras.ts).
    if (opts.modernFront !== false && looksModern(parsed)) {
      const front = await modernFront();
      let mine = false;
      try {
        mine = await front.wants(req, parsed, decision.identity);
      } catch (err) {
        // No 2025 session either (a server that answers 401, an HTML page, nothing): the request
        // goes upstream as it came, so the client (and the operator's verification) sees what
        // the server itself answers, not a gateway error that hides it.
        log.debug(
          { err: (err as Error).message, upstream: opts.upstream },
          'no upstream session for a 2026-07-28 request',
        );
      }
      if (mine) {
        res.on('close', () => finish(res.statusCode, decision.identity));
        return front.serve(req, res, parsed, decision.identity, grant);
      }
    }

    const headers = upstreamHeaders(req.headers, decision.identity);
    headers.host = upstream.host;
    headers['x-forwarded-host'] = req.headers.host ?? '';
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    if (body) headers['content-length'] = String(body.length);
    const up = http.request({
      host: upstream.hostname,
      port: upstream.port || 80,
      method: req.method,
      path: req.url,
      headers,
      agent,
    });
    upstreamOf.request = up;
    const abort = () => up.destroy();
    res.on('close', abort);
    up.on('response', (ur) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(ur.headers))
        if (v !== undefined && k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding') out[k] = v;
      const newSid = ur.headers['mcp-session-id'];
      if (typeof newSid === 'string' && !owners.has(newSid)) remember(newSid, user);
      if (typeof newSid === 'string' && opts.sessions)
        out['mcp-session-id'] = opts.sessions.outgoing(newSid, route, sealed);
      if (req.method === 'DELETE' && typeof sid === 'string' && (ur.statusCode ?? 500) < 300) owners.delete(sid);
      if (listIds.length && grant) return filtered(ur, out, listIds, grant);
      res.writeHead(ur.statusCode ?? 502, out);
      if (typeof res.flushHeaders === 'function') res.flushHeaders();
      ur.pipe(res);
      ur.on('end', () => finish(ur.statusCode ?? 502, decision.identity));
      ur.on('error', () => res.destroy());
    });
    up.on('error', (err) => {
      res.off('close', abort);
      if (res.headersSent) return res.destroy();
      log.warn({ err: err.message, upstream: opts.upstream }, 'upstream request failed');
      rpcError(res, 502, -32603, `Bad Gateway: the MCP server container did not answer (${err.message})`);
      finish(502, decision.identity, 'error');
    });
    /** Buffers a tools/list answer (bounded), filters it to `g` and sends it. */
    const filtered = (ur: http.IncomingMessage, out: http.OutgoingHttpHeaders, ids: unknown[], g: ToolGrant) => {
      const chunks: Buffer[] = [];
      let size = 0;
      ur.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_FILTERED_BYTES) return ur.destroy(new Error('tools/list answer too large to filter'));
        chunks.push(c);
      });
      ur.on('error', (err) => {
        if (res.headersSent) return res.destroy();
        rpcError(res, 502, -32603, `Bad Gateway: ${err.message}`);
        finish(502, decision.identity, 'error');
      });
      ur.on('end', () => {
        const text = filterToolsListBody(
          String(ur.headers['content-type'] ?? ''),
          Buffer.concat(chunks).toString('utf8'),
          ids,
          g,
        );
        if (text === undefined) {
          rpcError(
            res,
            502,
            -32603,
            'Bad Gateway: the server answered tools/list with a body the gateway cannot filter',
          );
          return finish(502, decision.identity, 'error');
        }
        delete out['content-length'];
        res.writeHead(ur.statusCode ?? 502, { ...out, 'content-length': Buffer.byteLength(text) });
        res.end(text);
        finish(ur.statusCode ?? 502, decision.identity);
      });
    };
    res.on('close', () => finish(res.statusCode, decision.identity));
    up.end(body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      log.error({ err: (err as Error).message }, 'gateway request failed');
      rpcError(res, 500, -32603, `Internal error: ${(err as Error).message}`);
    });
  });
  server.requestTimeout = 0; // SSE streams stay open
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
  const drain = new HttpDrain(server, { name: 'kubemcp gateway', log, ...opts.drain });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  const host = opts.host ?? '127.0.0.1';
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}`,
    port,
    drain: async () => {
      const result = await drain.begin();
      agent.destroy();
      opts.sessions?.close();
      await (await modern)?.close();
      return result;
    },
    close: async () => {
      server.closeAllConnections();
      agent.destroy();
      opts.sessions?.close();
      await (await modern)?.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
