/**
 * MCP 2026-07-28 clients in front of 2025-era servers (issue 18): the gateway's modern front.
 *
 * A 2026-07-28 client has no `initialize` handshake and no `Mcp-Session-Id`: it sends
 * `server/discover`, then stateless requests that each carry their protocol version, client info
 * and capabilities in `params._meta` (https://modelcontextprotocol.io/specification/2026-07-28/basic/lifecycle).
 * A 2025-11-25 server (every server built on `@modelcontextprotocol/sdk` 1.x, and `kubemcp serve`
 * today) knows none of this. This module answers such requests in the gateway:
 *
 * - the 2026 leg is the official SDK's (`createMcpHandler` of `@modelcontextprotocol/server`
 *   2.4.0 with `legacy: 'reject'`, through `toNodeHandler` of `@modelcontextprotocol/node`): it
 *   validates the envelope and the `MCP-Protocol-Version`/`Mcp-Method`/`Mcp-Name` headers, stamps
 *   `serverInfo`, `ttlMs`/`cacheScope` on results, and serves `subscriptions/listen`;
 * - the server behind it is a per-request low-level `Server` whose `server/discover` answer is the
 *   upstream's `initialize` result (server info, capabilities, instructions), and whose every other
 *   request is carried, with the envelope removed, onto a 2025-era session the gateway holds with
 *   the server container for that caller (`@modelcontextprotocol/client` 2.4.0 in
 *   `versionNegotiation: auto`, so a server that does answer `server/discover` is recognised and
 *   its modern requests are passed through unchanged instead);
 * - progress notifications come back with the client's own progress token; a cancelled or closed
 *   request cancels the upstream one (`notifications/cancelled`); a JSON-RPC error of the server
 *   comes back with its code, message and data; a `tools/list` answer is filtered to the caller's
 *   tools (`spec.auth.tools`); list-changed notifications of the server reach `subscriptions/listen`.
 *
 * Sessions: one upstream session per caller (username and groups, as the server sees them in
 * `X-Remote-User`/`X-Remote-Group`), so a server that binds sessions to callers (`kubemcp serve
 * --impersonate gateway`) keeps doing so; at most {@link MAX_UPSTREAM_SESSIONS} (the least recently
 * used is closed first), closed after {@link UPSTREAM_IDLE_MS} without use, and re-opened once when the
 * server no longer knows it (404, a restarted container). Modern requests need no session of their
 * own, so they are served by whichever replica they reach.
 *
 * Not carried yet: a server-initiated request (elicitation, sampling, roots) during a modern call
 * (the upstream session declares no such client capability, so a conforming server does not send
 * one), and `resources/subscribe` of single URIs for modern clients.
 */
import type * as http from 'node:http';
import { Client, StreamableHTTPClientTransport, type Transport } from '@modelcontextprotocol/client';
import { toNodeHandler, toWebRequest, type NodeMcpRequestHandler } from '@modelcontextprotocol/node';
import {
  createMcpHandler,
  isLegacyRequest,
  ProtocolError,
  Server,
  type McpHttpHandler,
} from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { kubeFetch } from '../lib/kube-http.js';
import { GROUP_HEADER, passedGroups, USER_HEADER } from './access.js';
import type { Identity } from './auth/tokenreview.js';
import { allows, type ToolGrant } from './tools.js';

/** Most upstream sessions held at once (one per caller and path); the least recently used goes first. */
export const MAX_UPSTREAM_SESSIONS = 256;
/** An upstream session unused this long (ms) is closed. */
export const UPSTREAM_IDLE_MS = 10 * 60_000;
/** A request carried upstream fails after this long without a result or progress (ms). */
export const UPSTREAM_REQUEST_TIMEOUT_MS = 5 * 60_000;
/** How long (ms) a server found to speak 2026-07-28 itself is trusted to before it is asked again. */
export const MODERN_UPSTREAM_TTL_MS = 60_000;

/** The methods named in the metric's `method` label; any other is `other` (bounded label values). */
const KNOWN_METHODS = new Set([
  'server/discover',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'subscriptions/listen',
]);

const anyResult = z.record(z.string(), z.unknown());

/** Options of {@link ModernFront}. */
export interface ModernFrontOptions {
  /** The server container, `http://127.0.0.1:<port>`; the request's path is kept. */
  upstream: string;
  log: Logger;
  /** Where `kubemcp_gateway_translated_requests_total{method}` is registered. */
  registry?: Registry;
  /** Most upstream sessions (default {@link MAX_UPSTREAM_SESSIONS}). */
  maxSessions?: number;
  /** Idle time after which an upstream session is closed, ms (default {@link UPSTREAM_IDLE_MS}). */
  idleMs?: number;
  /**
   * The upstream session's transport for a caller (default: Streamable HTTP to `upstream` plus the
   * request's path, with the caller's identity headers). The stdio bridge passes one into its
   * process (./http.ts), which is a 2025-era server by definition.
   */
  transport?: (caller: { key: string; identity?: Identity }) => Transport;
  /**
   * How the upstream session is opened: `auto` (default: `server/discover` first, so a 2026-07-28
   * server is recognised and passed through) or `legacy` (`initialize` only).
   */
  negotiation?: 'auto' | 'legacy';
}

/** One held upstream session. */
interface Upstream {
  client: Client;
  era: 'modern' | 'legacy';
  lastUsed: number;
}

/** What the per-request server needs about its caller (passed as the request's `authInfo.extra`). */
interface CallerContext {
  key: string;
  path: string;
  identity?: Identity;
  grant?: ToolGrant;
}

/**
 * The gateway's 2026-07-28 front for a 2025-era HTTP server (see the module comment).
 * Use: `if (await front.wants(req, body, identity)) return front.serve(req, res, body, identity, grant)`
 * after access and per-tool checks passed; anything else goes upstream as before.
 */
export class ModernFront {
  private readonly handler: McpHttpHandler;
  private readonly node: NodeMcpRequestHandler;
  private readonly sessions = new Map<string, Promise<Upstream>>();
  private readonly counter?: Counter<'method'>;
  private readonly sweep: NodeJS.Timeout;
  private modernUntil = 0;
  private readonly maxSessions: number;
  private readonly idleMs: number;

  constructor(private readonly opts: ModernFrontOptions) {
    this.maxSessions = opts.maxSessions ?? MAX_UPSTREAM_SESSIONS;
    this.idleMs = opts.idleMs ?? UPSTREAM_IDLE_MS;
    this.handler = createMcpHandler((ctx) => this.serverFor(ctx.authInfo?.extra as unknown as CallerContext), {
      legacy: 'reject',
      onerror: (err) => opts.log.warn({ err: err.message }, '2026-07-28 request failed in the gateway'),
    });
    this.node = toNodeHandler(this.handler, {
      onerror: (err) => opts.log.warn({ err: err.message }, '2026-07-28 request failed in the gateway'),
    });
    this.counter = opts.registry
      ? new Counter({
          name: 'kubemcp_gateway_translated_requests_total',
          help: 'MCP 2026-07-28 requests the gateway answered for a 2025-era server, by method',
          labelNames: ['method'],
          registers: [opts.registry],
        })
      : undefined;
    this.sweep = setInterval(() => this.closeIdle(), Math.min(this.idleMs, 60_000)).unref();
  }

  /**
   * Whether the gateway answers this request itself: a POST whose body is a 2026-07-28 request
   * (the SDK's `isLegacyRequest` is false: it carries the `_meta` envelope, or is `server/discover`)
   * while the server behind is a 2025-era one. Opens the caller's upstream session to learn the
   * server's era when it is not known yet.
   * @throws Error when the server container cannot be reached (the caller answers 502).
   */
  async wants(req: http.IncomingMessage, body: unknown, identity: Identity | undefined): Promise<boolean> {
    if (req.method !== 'POST' || body === undefined || Array.isArray(body)) return false;
    if (Date.now() < this.modernUntil) return false;
    const probe = await toWebRequest(req as never, body);
    if (await isLegacyRequest(probe, body)) return false;
    const caller = this.caller(req, identity);
    const up = await this.upstream(caller);
    if (up.era === 'modern') {
      // A 2026-07-28 server: its requests pass through; this session is not needed.
      this.modernUntil = Date.now() + MODERN_UPSTREAM_TTL_MS;
      this.drop(caller.key);
      return false;
    }
    return true;
  }

  /**
   * Answers a request {@link wants} accepted, on `res` (JSON or an SSE stream, as the SDK's
   * modern leg chooses). Never throws: failures become JSON-RPC errors in the answer.
   */
  async serve(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: unknown,
    identity: Identity | undefined,
    grant: ToolGrant | undefined,
  ): Promise<void> {
    const method = (body as { method?: unknown }).method;
    this.counter?.inc({ method: typeof method === 'string' && KNOWN_METHODS.has(method) ? method : 'other' });
    const caller: CallerContext = { ...this.caller(req, identity), grant };
    (req as http.IncomingMessage & { auth?: unknown }).auth = {
      token: '',
      clientId: identity?.username ?? 'system:anonymous',
      scopes: [],
      extra: caller,
    };
    await this.node(req as never, res as never, body);
  }

  /** Closes every upstream session and the SDK handler. */
  async close(): Promise<void> {
    clearInterval(this.sweep);
    const all = [...this.sessions.keys()];
    await Promise.all(all.map((k) => this.drop(k)));
    await this.handler.close().catch(() => undefined);
  }

  /** The number of upstream sessions held (for tests and metrics). */
  get size(): number {
    return this.sessions.size;
  }

  private caller(req: http.IncomingMessage, identity: Identity | undefined): CallerContext {
    const path = new URL(req.url ?? '/', 'http://placeholder').pathname;
    const groups = identity ? passedGroups(identity.groups) : [];
    return { key: JSON.stringify([path, identity?.username ?? null, groups]), path, identity };
  }

  /** The caller's upstream session, opened (and its era learned) on first use. */
  private upstream(caller: CallerContext): Promise<Upstream> {
    const held = this.sessions.get(caller.key);
    if (held) {
      // Most recently used last: re-insert.
      this.sessions.delete(caller.key);
      this.sessions.set(caller.key, held);
      void held.then((u) => (u.lastUsed = Date.now())).catch(() => undefined);
      return held;
    }
    while (this.sessions.size >= this.maxSessions) void this.drop(this.sessions.keys().next().value!);
    const opening = this.open(caller);
    this.sessions.set(caller.key, opening);
    opening.catch(() => {
      if (this.sessions.get(caller.key) === opening) this.sessions.delete(caller.key);
    });
    return opening;
  }

  private async open(caller: CallerContext): Promise<Upstream> {
    const headers: http.OutgoingHttpHeaders = {};
    if (caller.identity) {
      headers[USER_HEADER] = caller.identity.username;
      const groups = passedGroups(caller.identity.groups);
      if (groups.length) headers[GROUP_HEADER] = groups; // one header line per group, as the proxy sends them
    }
    // node:http underneath (lib/kube-http.ts), so repeated X-Remote-Group lines stay apart
    // (the global fetch would join them with commas).
    const fetch = kubeFetch({
      applyToHTTPSOptions: async (o) => {
        o.headers = { ...(o.headers as http.OutgoingHttpHeaders), ...headers };
      },
    });
    const client = new Client(
      { name: 'kubemcp-gateway', version: '0.1.0' },
      { versionNegotiation: { mode: this.opts.negotiation ?? 'auto' }, capabilities: {} },
    );
    client.setNotificationHandler('notifications/tools/list_changed', () => this.handler.notify.toolsChanged());
    client.setNotificationHandler('notifications/prompts/list_changed', () => this.handler.notify.promptsChanged());
    client.setNotificationHandler('notifications/resources/list_changed', () => this.handler.notify.resourcesChanged());
    client.onerror = (err) => this.opts.log.debug({ err: err.message }, 'upstream session error');
    await client.connect(
      this.opts.transport?.(caller) ??
        new StreamableHTTPClientTransport(new URL(caller.path, this.opts.upstream), { fetch }),
    );
    return { client, era: client.getProtocolEra() ?? 'legacy', lastUsed: Date.now() };
  }

  private async drop(key: string): Promise<void> {
    const held = this.sessions.get(key);
    this.sessions.delete(key);
    const up = await held?.catch(() => undefined);
    await up?.client.close().catch(() => undefined);
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const [key, held] of this.sessions)
      void held.then((u) => (now - u.lastUsed > this.idleMs ? this.drop(key) : undefined)).catch(() => undefined);
  }

  /** The per-request server of the SDK's modern leg (the factory of `createMcpHandler`). */
  private async serverFor(caller: CallerContext): Promise<Server> {
    let up = await this.upstream(caller);
    const caps = { ...(up.client.getServerCapabilities() ?? {}) };
    // 2026-07-28 has no resources/subscribe on a request; single-URI subscriptions are not carried.
    if (caps.resources) caps.resources = { ...caps.resources, subscribe: undefined };
    // Logging is per request in 2026-07-28 (`_meta` logLevel), not logging/setLevel.
    delete (caps as { logging?: unknown }).logging;
    const server = new Server(up.client.getServerVersion() ?? { name: 'mcp-server', version: '0' }, {
      capabilities: caps,
      instructions: up.client.getInstructions(),
    });
    server.fallbackRequestHandler = async (request, ctx) => {
      const { _meta, ...params } = (request.params ?? {}) as Record<string, unknown>;
      const token = (_meta as { progressToken?: string | number } | undefined)?.progressToken;
      const send = (u: Upstream) =>
        u.client.request({ method: request.method, params } as never, anyResult, {
          signal: ctx.mcpReq.signal,
          timeout: UPSTREAM_REQUEST_TIMEOUT_MS,
          resetTimeoutOnProgress: true,
          onprogress:
            token === undefined
              ? undefined
              : (p) =>
                  void ctx.mcpReq
                    .notify({ method: 'notifications/progress', params: { ...p, progressToken: token } })
                    .catch(() => undefined),
        });
      let result: Record<string, unknown>;
      try {
        result = await send(up);
      } catch (err) {
        if (!sessionGone(err)) throw asProtocolError(err);
        // The server no longer knows the session (its container restarted): open another, once.
        // The request was not run (no session), so sending it again is safe.
        await this.drop(caller.key);
        up = await this.upstream(caller);
        try {
          result = await send(up);
        } catch (again) {
          throw asProtocolError(again);
        }
      }
      if (request.method === 'tools/list' && caller.grant && !caller.grant.all) {
        const g = caller.grant;
        const tools = Array.isArray(result.tools) ? (result.tools as Array<{ name?: unknown }>) : [];
        result = { ...result, tools: tools.filter((t) => typeof t.name === 'string' && allows(g, t.name)) };
      }
      return result as never;
    };
    return server;
  }
}

/** Whether `err` says the upstream session is gone (HTTP 404 to a request of the session). */
function sessionGone(err: unknown): boolean {
  const e = err as { status?: unknown; code?: unknown; message?: unknown };
  return e?.status === 404 || (typeof e?.message === 'string' && /\b404\b|Session not found/i.test(e.message));
}

/**
 * The upstream's JSON-RPC error as the server package's ProtocolError (the client package has its
 * own class: errors are matched by `code`, anchors/mcp-sdk-v2.md §6); any other failure (the
 * container did not answer, a timeout) is an internal error naming it.
 */
function asProtocolError(err: unknown): Error {
  const e = err as { code?: unknown; message?: unknown; data?: unknown };
  if (typeof e?.code === 'number' && Number.isInteger(e.code) && e.code < 0) {
    const message = String(e.message ?? '').replace(/^MCP error -?\d+: /, '');
    return new ProtocolError(e.code, message, e.data);
  }
  return new ProtocolError(-32603, `the MCP server container did not answer: ${String(e?.message ?? err)}`);
}
