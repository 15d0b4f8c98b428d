/**
 * MCP 2026-07-28 clients in front of 2025-era servers (issue 18): the gateway's modern front.
 *
 * A 2026-07-28 client has no `initialize` handshake and no `Mcp-Session-Id`: it sends
 * `server/discover`, then stateless requests that each carry their protocol version, client info
 * and capabilities in `params._meta` (https://modelcontextprotocol.io/specification/2026-07-28/basic/lifecycle).
 * A 2025-11-25 server (every server built on `@modelcontextprotocol/sdk` 1.x, stdio servers, and
 * `kubemcp serve --legacy-only`) knows none of this. This module answers such requests in the gateway:
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
 * Sessions: upstream sessions are kept per caller (username and groups, as the server sees them in
 * `X-Remote-User`/`X-Remote-Group`, so a server that binds sessions to callers, `kubemcp serve
 * --impersonate gateway`, keeps doing so) and per the client capabilities the modern request declares
 * (elicitation, sampling, roots: the upstream session declares the same, so the server asks only for
 * what the client can give). Each carries one request at a time, so a request the server sends on it
 * belongs to that request without guessing; at most {@link MAX_SESSIONS_PER_CALLER} per caller
 * (beyond, requests share the least busy one, and a server request on a shared session is refused),
 * {@link MAX_UPSTREAM_SESSIONS} in all (the least recently used idle one is closed first), closed after
 * {@link UPSTREAM_IDLE_MS} unused, and re-opened once when the server no longer knows one (404, a
 * restarted container). Modern requests need no session of their own, so any replica serves them.
 *
 * Multi round-trip requests (2026-07-28 `InputRequiredResult`, SEP-2322): when the server sends
 * `elicitation/create`, `sampling/createMessage` or `roots/list` while carrying a modern request, the
 * gateway answers the client with `resultType: "input_required"`, the server's requests as
 * `inputRequests` (those sent together, within {@link INPUT_SETTLE_MS}, in one result) and a
 * `requestState` of its own: 24 random bytes naming the suspended call, bound to the caller, good
 * for {@link INPUT_WAIT_MS}. The client's retry with `inputResponses` and that `requestState`
 * answers the server's requests, and the call goes on: a result, or another round. A state that is
 * unknown, expired, another caller's or altered is refused (-32602); a retry missing some answers
 * gets those asked again; a call whose client never comes back has its server requests refused
 * when the state expires. Answers a request carries before the server asked for them (a
 * stateless client re-sending its `inputResponses`) answer the server's requests of the same key
 * at once. An input key is the server's `_meta["dev.kubemcp/input-key"]` on its request when it names
 * one (letters, digits, `_.-`, at most 64), else `<method>-<n>`. A server request the modern client
 * did not declare the capability for is refused (-32601) without asking it.
 *
 * Not carried: `resources/subscribe` of single URIs for modern clients (their `subscriptions/listen`
 * gets the server's list-changed notifications).
 */
import { randomBytes } from 'node:crypto';
import type * as http from 'node:http';
import { Client, StreamableHTTPClientTransport, type Transport } from '@modelcontextprotocol/client';
import { toNodeHandler, toWebRequest, type NodeMcpRequestHandler } from '@modelcontextprotocol/node';
import {
  CLIENT_CAPABILITIES_META_KEY,
  createMcpHandler,
  isLegacyRequest,
  inputRequired,
  ProtocolError,
  Server,
  type McpHttpHandler,
} from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { kubeFetch } from '../lib/kube-http.js';
import { GROUP_HEADER, INPUT_KEY_META, passedGroups, USER_HEADER } from './access.js';
import type { Identity } from './auth/tokenreview.js';
import { allows, type ToolGrant } from './tools.js';

/** Most upstream sessions held at once; the least recently used idle one is closed first. */
export const MAX_UPSTREAM_SESSIONS = 256;
/** Most upstream sessions of one caller (and capability set); beyond, requests share them. */
export const MAX_SESSIONS_PER_CALLER = 16;
/** An upstream session unused this long (ms) is closed. */
export const UPSTREAM_IDLE_MS = 10 * 60_000;
/** A request carried upstream fails after this long without a result or progress (ms). */
export const UPSTREAM_REQUEST_TIMEOUT_MS = 5 * 60_000;
/** How long (ms) a server found to speak 2026-07-28 itself is trusted to before it is asked again. */
export const MODERN_UPSTREAM_TTL_MS = 60_000;
/** Server requests arriving within this many ms of the first go into one InputRequiredResult. */
export const INPUT_SETTLE_MS = 30;
/** How long (ms) a suspended call waits for the client's retry before its server requests are refused. */
export const INPUT_WAIT_MS = 120_000;
/** Most server requests one call may have waiting on the client. */
export const MAX_INPUTS_PER_CALL = 16;
/** Most calls suspended on the client at once (each holds an upstream session). */
export const MAX_SUSPENDED_CALLS = 1024;

/** The server requests a modern client is asked to answer, and the capability each needs. */
const INPUT_METHODS = {
  'elicitation/create': 'elicitation',
  'sampling/createMessage': 'sampling',
  'roots/list': 'roots',
} as const;
type InputMethod = keyof typeof INPUT_METHODS;

/** The methods carried upstream, by the server capability that offers them. */
const CARRIED_METHODS = {
  tools: ['tools/list', 'tools/call'],
  resources: ['resources/list', 'resources/templates/list', 'resources/read'],
  prompts: ['prompts/list', 'prompts/get'],
  completions: ['completion/complete'],
} as const;

/** The methods named in the metric's `method` label; any other is `other` (bounded label values). */
const KNOWN_METHODS = new Set<string>([
  'server/discover',
  'subscriptions/listen',
  ...Object.values(CARRIED_METHODS).flat(),
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
  /** How long a suspended call waits for the client's retry, ms (default {@link INPUT_WAIT_MS}). */
  inputWaitMs?: number;
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

/** The client capabilities an upstream session declares (those of the modern request it carries). */
interface InputCapabilities {
  elicitation?: Record<string, unknown>;
  sampling?: Record<string, unknown>;
  roots?: Record<string, unknown>;
}

/** One upstream session. */
interface Upstream {
  client: Client;
  era: 'modern' | 'legacy';
  lastUsed: number;
  /** The calls it carries now (one, unless the caller's sessions are all busy). */
  calls: Set<Call>;
  closed: boolean;
}

/** A server request waiting on the modern client. */
interface Asked {
  request: { method: InputMethod; params?: Record<string, unknown> };
  resolve: (result: Record<string, unknown>) => void;
  reject: (err: Error) => void;
}

/** A modern request carried upstream, possibly across several rounds of the client. */
interface Call {
  key: string;
  up: Upstream;
  caps: InputCapabilities;
  /** Settles (never rejects) with the server's answer. */
  result: Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; err: unknown }>;
  abort: AbortController;
  asked: Map<string, Asked>;
  /** Answers the client sent before they were asked for (by input key): used when the server asks. */
  given: Map<string, Record<string, unknown>>;
  count: number;
  /** Wakes the round waiting for the server when it sends a request. */
  wake?: () => void;
  /** The round's progress notifications still being sent. */
  notifying: Set<Promise<unknown>>;
  /** Where progress of the current round goes (the token of the round that started the call). */
  progress?: (p: Record<string, unknown>) => void;
  expiry?: NodeJS.Timeout;
}

/** What the per-request server needs about its caller (passed as the request's `authInfo.extra`). */
interface CallerContext {
  key: string;
  path: string;
  identity?: Identity;
  grant?: ToolGrant;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/**
 * The gateway's 2026-07-28 front for a 2025-era server (see the module comment).
 * Use: `if (await front.wants(req, body, identity)) return front.serve(req, res, body, identity, grant)`
 * after access and per-tool checks passed; anything else goes upstream as before.
 */
export class ModernFront {
  private readonly handler: McpHttpHandler;
  private readonly node: NodeMcpRequestHandler;
  /** Upstream sessions by caller key and capability set. */
  private readonly pools = new Map<string, Upstream[]>();
  private total = 0;
  /** Suspended calls by their requestState. */
  private readonly suspended = new Map<string, Call>();
  private readonly counter?: Counter<'method'>;
  private readonly sweep: NodeJS.Timeout;
  private modernUntil = 0;
  private readonly maxSessions: number;
  private readonly idleMs: number;
  private readonly inputWaitMs: number;

  constructor(private readonly opts: ModernFrontOptions) {
    this.maxSessions = opts.maxSessions ?? MAX_UPSTREAM_SESSIONS;
    this.idleMs = opts.idleMs ?? UPSTREAM_IDLE_MS;
    this.inputWaitMs = opts.inputWaitMs ?? INPUT_WAIT_MS;
    const onerror = (err: Error) => opts.log.warn({ err: err.message }, '2026-07-28 request failed in the gateway');
    this.handler = createMcpHandler((ctx) => this.serverFor(ctx.authInfo?.extra as unknown as CallerContext), {
      legacy: 'reject',
      onerror,
    });
    this.node = toNodeHandler(this.handler, { onerror });
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
   * while the server behind is a 2025-era one. Opens an upstream session for the caller to learn
   * the server's era when it is not known yet.
   * @throws Error when the server container cannot be reached (the caller answers 502).
   */
  async wants(req: http.IncomingMessage, body: unknown, identity: Identity | undefined): Promise<boolean> {
    if (req.method !== 'POST' || body === undefined || Array.isArray(body)) return false;
    if (Date.now() < this.modernUntil) return false;
    const probe = await toWebRequest(req as never, body);
    if (await isLegacyRequest(probe, body)) return false;
    const caller = this.caller(req, identity);
    const up = await this.acquire(caller, {});
    if (up.era === 'modern') {
      // A 2026-07-28 server: its requests pass through; this session is not needed.
      this.modernUntil = Date.now() + MODERN_UPSTREAM_TTL_MS;
      await this.close1(up, caller.key, {});
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

  /** Closes every upstream session, refuses the server requests of suspended calls, closes the SDK handler. */
  async close(): Promise<void> {
    clearInterval(this.sweep);
    for (const [state, call] of this.suspended) this.expire(state, call, 'the gateway is closing');
    const all = [...this.pools].flatMap(([key, pool]) => pool.map((u) => [key, u] as const));
    await Promise.all(all.map(([, u]) => this.closeUpstream(u)));
    this.pools.clear();
    await this.handler.close().catch(() => undefined);
  }

  /** Upstream sessions held, and calls suspended on their clients (for tests and metrics). */
  get size(): { sessions: number; suspended: number } {
    return { sessions: this.total, suspended: this.suspended.size };
  }

  private caller(req: http.IncomingMessage, identity: Identity | undefined): CallerContext {
    const path = new URL(req.url ?? '/', 'http://placeholder').pathname;
    const groups = identity ? passedGroups(identity.groups) : [];
    return { key: JSON.stringify([path, identity?.username ?? null, groups]), path, identity };
  }

  /** The pool key of a caller and a capability set. */
  private poolKey(callerKey: string, caps: InputCapabilities): string {
    return `${callerKey}|${caps.elicitation ? 'e' : ''}${caps.sampling ? 's' : ''}${caps.roots ? 'r' : ''}`;
  }

  /**
   * An upstream session for one call of `caller` declaring `caps`: an idle one of the pool, a new
   * one while the pool and the total allow, else the least busy of the pool.
   * @throws Error when the server cannot be reached, or every session is busy and none may be opened.
   */
  private async acquire(caller: CallerContext, caps: InputCapabilities): Promise<Upstream> {
    const key = this.poolKey(caller.key, caps);
    const pool = this.pools.get(key) ?? [];
    const idle = pool.find((u) => u.calls.size === 0 && !u.closed);
    if (idle) {
      idle.lastUsed = Date.now();
      return idle;
    }
    if (pool.length < MAX_SESSIONS_PER_CALLER) {
      if (this.total >= this.maxSessions) await this.evictIdle();
      if (this.total < this.maxSessions) {
        this.total++;
        try {
          const up = await this.open(caller, caps);
          const now = this.pools.get(key) ?? [];
          now.push(up);
          this.pools.set(key, now);
          return up;
        } catch (err) {
          this.total--;
          throw err;
        }
      }
    }
    const busy = pool.filter((u) => !u.closed).sort((a, b) => a.calls.size - b.calls.size)[0];
    if (!busy) throw new Error(`all ${this.maxSessions} upstream sessions of the gateway are in use`);
    return busy;
  }

  private async open(caller: CallerContext, caps: InputCapabilities): Promise<Upstream> {
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
      { versionNegotiation: { mode: this.opts.negotiation ?? 'auto' }, capabilities: { ...caps } as never },
    );
    const up: Upstream = { client, era: 'legacy', lastUsed: Date.now(), calls: new Set(), closed: false };
    client.setNotificationHandler('notifications/tools/list_changed', () => this.handler.notify.toolsChanged());
    client.setNotificationHandler('notifications/prompts/list_changed', () => this.handler.notify.promptsChanged());
    client.setNotificationHandler('notifications/resources/list_changed', () => this.handler.notify.resourcesChanged());
    for (const method of Object.keys(INPUT_METHODS) as InputMethod[])
      if (caps[INPUT_METHODS[method]])
        client.setRequestHandler(
          method as 'roots/list',
          (request: { params?: unknown }) =>
            this.ask(up, { method, params: request.params as Record<string, unknown> | undefined }) as never,
        );
    client.onerror = (err) => this.opts.log.debug({ err: err.message }, 'upstream session error');
    client.onclose = () => (up.closed = true);
    await client.connect(
      this.opts.transport?.(caller) ??
        new StreamableHTTPClientTransport(new URL(caller.path, this.opts.upstream), { fetch }),
    );
    up.era = client.getProtocolEra() ?? 'legacy';
    return up;
  }

  private async closeUpstream(up: Upstream): Promise<void> {
    if (!up.closed) this.total--;
    up.closed = true;
    await up.client.close().catch(() => undefined);
  }

  /** Closes `up` and takes it out of its pool. */
  private async close1(up: Upstream, callerKey: string, caps: InputCapabilities): Promise<void> {
    const key = this.poolKey(callerKey, caps);
    const pool = (this.pools.get(key) ?? []).filter((u) => u !== up);
    if (pool.length) this.pools.set(key, pool);
    else this.pools.delete(key);
    await this.closeUpstream(up);
  }

  /** Closes the least recently used idle session of any pool. */
  private async evictIdle(): Promise<void> {
    let oldest: { key: string; up: Upstream } | undefined;
    for (const [key, pool] of this.pools)
      for (const up of pool)
        if (up.calls.size === 0 && (!oldest || up.lastUsed < oldest.up.lastUsed)) oldest = { key, up };
    if (!oldest) return;
    const pool = this.pools.get(oldest.key)!.filter((u) => u !== oldest!.up);
    if (pool.length) this.pools.set(oldest.key, pool);
    else this.pools.delete(oldest.key);
    await this.closeUpstream(oldest.up);
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const [key, pool] of this.pools) {
      const keep = pool.filter((u) => !u.closed && (u.calls.size > 0 || now - u.lastUsed <= this.idleMs));
      for (const u of pool) if (!keep.includes(u)) void this.closeUpstream(u);
      if (keep.length) this.pools.set(key, keep);
      else this.pools.delete(key);
    }
  }

  /**
   * A request of the server on `up` (elicitation, sampling, roots): kept for the one call `up`
   * carries until the client answers it in a retry. Refused when `up` carries several calls
   * (whose it is cannot be told) or the call already waits on too many.
   */
  private ask(up: Upstream, request: Asked['request']): Promise<Record<string, unknown>> {
    const call = up.calls.size === 1 ? [...up.calls][0]! : undefined;
    if (!call)
      return Promise.reject(
        new ProtocolError(-32603, `the kubemcp gateway cannot tell which request ${request.method} is for`),
      );
    if (call.asked.size >= MAX_INPUTS_PER_CALL)
      return Promise.reject(
        new ProtocolError(-32603, `more than ${MAX_INPUTS_PER_CALL} requests waiting on the client`),
      );
    const params = { ...(request.params ?? {}) };
    const meta = params._meta as Record<string, unknown> | undefined;
    const named = meta?.[INPUT_KEY_META];
    let key = typeof named === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(named) && !call.asked.has(named) ? named : '';
    if (meta) {
      const { [INPUT_KEY_META]: _hint, ...rest } = meta;
      if (Object.keys(rest).length) params._meta = rest;
      else delete params._meta;
    }
    if (!key) {
      do key = `${request.method.split('/')[0]}-${++call.count}`;
      while (call.asked.has(key));
    }
    // Answered already: the client's request carried it (a stateless retry names its answers by key).
    const given = call.given.get(key);
    if (given) {
      call.given.delete(key);
      return Promise.resolve(given);
    }
    return new Promise((resolve, reject) => {
      call.asked.set(key, { request: { method: request.method, params }, resolve, reject });
      call.wake?.();
    });
  }

  /**
   * Carries one modern request: a retry of a suspended call (its `requestState`) or a new call.
   * @returns the server's result, or an InputRequiredResult while the server waits on the client
   * @throws ProtocolError -32602 for an unknown/expired/foreign requestState or malformed inputResponses;
   *   the server's own JSON-RPC error; -32603 when the server did not answer
   */
  private async carry(
    caller: CallerContext,
    request: { method: string; params?: Record<string, unknown> },
    ctx: {
      mcpReq: {
        signal: AbortSignal;
        requestState: () => unknown;
        inputResponses?: Record<string, unknown>;
        envelope?: Record<string, unknown>;
        notify: (n: { method: 'notifications/progress'; params: Record<string, unknown> }) => Promise<void>;
      };
    },
  ): Promise<Record<string, unknown>> {
    const raw = request.params ?? {};
    const { _meta, inputResponses: rawResponses, requestState: rawState, ...params } = raw;
    if (rawResponses !== undefined && !isRecordOfObjects(rawResponses))
      throw new ProtocolError(-32602, 'inputResponses must map each input key to its result object');
    // Entries the SDK dropped (not results) count as not given: their requests are asked again.
    const dropped = new Set((ctx.mcpReq as { droppedInputResponseKeys?: string[] }).droppedInputResponseKeys ?? []);
    const state = (ctx.mcpReq.requestState() ?? rawState) as unknown;
    const responses: Record<string, unknown> = {
      ...(ctx.mcpReq.inputResponses ?? {}),
      ...((rawResponses as Record<string, unknown>) ?? {}),
    };
    for (const k of dropped) delete responses[k];
    const token = (_meta as { progressToken?: string | number } | undefined)?.progressToken;
    const progress =
      token === undefined
        ? undefined
        : (call: Call) => (p: Record<string, unknown>) => {
            const sent = ctx.mcpReq
              .notify({ method: 'notifications/progress', params: { ...p, progressToken: token } })
              .catch(() => undefined);
            call.notifying.add(sent);
            void sent.finally(() => call.notifying.delete(sent));
          };

    if (state !== undefined) {
      const call = typeof state === 'string' ? this.suspended.get(state) : undefined;
      if (!call || call.key !== caller.key) throw new ProtocolError(-32602, 'Invalid or expired requestState');
      this.suspended.delete(state as string);
      clearTimeout(call.expiry);
      for (const [k, a] of call.asked)
        if (k in responses) {
          a.resolve(responses[k] as Record<string, unknown>);
          call.asked.delete(k);
          delete responses[k];
        }
      for (const [k, v] of Object.entries(responses)) call.given.set(k, v as Record<string, unknown>);
      call.progress = progress?.(call);
      if (call.asked.size) return this.suspend(call); // some answers missing: ask for those again
      return this.next(call, ctx.mcpReq.signal);
    }

    const envelopeCaps = (ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? {}) as InputCapabilities;
    const caps: InputCapabilities = {};
    for (const c of ['elicitation', 'sampling', 'roots'] as const)
      if (envelopeCaps[c] && typeof envelopeCaps[c] === 'object') caps[c] = envelopeCaps[c];
    const start = async (): Promise<Call> => {
      const up = await this.acquire(caller, caps);
      const abort = new AbortController();
      const call: Call = {
        key: caller.key,
        up,
        caps,
        abort,
        asked: new Map(),
        // A new call may carry answers already (keys the server will ask by).
        given: new Map(Object.entries(responses) as Array<[string, Record<string, unknown>]>),
        count: 0,
        notifying: new Set(),
        result: undefined as never,
      };
      call.progress = progress?.(call);
      up.calls.add(call);
      up.lastUsed = Date.now();
      call.result = up.client
        .request({ method: request.method, params } as never, anyResult, {
          signal: abort.signal,
          timeout: UPSTREAM_REQUEST_TIMEOUT_MS,
          resetTimeoutOnProgress: true,
          onprogress: (p) => call.progress?.(p as Record<string, unknown>),
        })
        .then(
          (value) => ({ ok: true as const, value: value as Record<string, unknown> }),
          (err: unknown) => ({ ok: false as const, err }),
        );
      return call;
    };
    let call = await start();
    const cancelFirst = () => call.abort.abort(ctx.mcpReq.signal.reason);
    ctx.mcpReq.signal.addEventListener('abort', cancelFirst, { once: true });
    const first = await Promise.race([call.result, new Promise<'input'>((r) => (call.wake = () => r('input')))]);
    ctx.mcpReq.signal.removeEventListener('abort', cancelFirst);
    if (first !== 'input' && !first.ok && sessionGone(first.err)) {
      // The server no longer knows the session (its container restarted): another session, once.
      // The request was not run (no session), so sending it again is safe.
      call.up.calls.delete(call);
      await this.close1(call.up, caller.key, caps);
      call = await start();
    } else if (first !== 'input') {
      return this.finish(call, first);
    }
    return this.next(call, ctx.mcpReq.signal, first === 'input');
  }

  /**
   * Waits for the server: its result ends the call; a request of its suspends the call and
   * answers the client with an InputRequiredResult. While waiting, the client's cancellation of
   * this round cancels the call upstream.
   */
  private async next(call: Call, signal: AbortSignal, asked = false): Promise<Record<string, unknown>> {
    const cancel = () => call.abort.abort(signal.reason);
    signal.addEventListener('abort', cancel, { once: true });
    try {
      if (!asked && call.asked.size === 0) {
        const got = await Promise.race([call.result, new Promise<'input'>((r) => (call.wake = () => r('input')))]);
        call.wake = undefined;
        if (got !== 'input') return await this.finish(call, got);
      }
      call.wake = undefined;
      // Requests the server sends together (Promise.all) arrive within a few ms: ask them in one round.
      await Promise.race([sleep(INPUT_SETTLE_MS), call.result]);
      return this.suspend(call);
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  /** Ends `call` with the server's answer: its session is free again; progress sent first. */
  private async finish(
    call: Call,
    got: { ok: true; value: Record<string, unknown> } | { ok: false; err: unknown },
  ): Promise<Record<string, unknown>> {
    call.up.calls.delete(call);
    call.up.lastUsed = Date.now();
    // The server's last progress notification is dispatched by the client SDK after it read the
    // result from the same stream: let it be handed over before the answer ends the stream.
    await new Promise((r) => setImmediate(r));
    await Promise.all(call.notifying);
    if (!got.ok) throw asProtocolError(got.err);
    return got.value;
  }

  /** Answers the client with the call's waiting server requests and a new requestState for its retry. */
  private suspend(call: Call): Record<string, unknown> {
    if (this.suspended.size >= MAX_SUSPENDED_CALLS) {
      for (const a of call.asked.values()) a.reject(new ProtocolError(-32603, 'too many calls wait on their clients'));
      call.asked.clear();
      throw new ProtocolError(-32603, `more than ${MAX_SUSPENDED_CALLS} calls wait on their clients in this gateway`);
    }
    const state = randomBytes(24).toString('base64url');
    this.suspended.set(state, call);
    call.progress = undefined;
    call.expiry = setTimeout(
      () => this.expire(state, call, 'no retry from the client in time'),
      this.inputWaitMs,
    ).unref();
    return inputRequired({
      inputRequests: Object.fromEntries([...call.asked].map(([k, a]) => [k, a.request])) as never,
      requestState: state,
    }) as unknown as Record<string, unknown>;
  }

  /** Gives up on a suspended call: its server requests are refused; its session is freed when the server answers. */
  private expire(state: string, call: Call, why: string): void {
    if (this.suspended.get(state) !== call) return;
    this.suspended.delete(state);
    for (const a of call.asked.values()) a.reject(new ProtocolError(-32603, `the client did not answer: ${why}`));
    call.asked.clear();
    void call.result.then(() => {
      call.up.calls.delete(call);
      call.up.lastUsed = Date.now();
    });
  }

  /** The per-request server of the SDK's modern leg (the factory of `createMcpHandler`). */
  private async serverFor(caller: CallerContext): Promise<Server> {
    const up = await this.acquire(caller, {});
    const caps = { ...(up.client.getServerCapabilities() ?? {}) };
    // 2026-07-28 has no resources/subscribe on a request; single-URI subscriptions are not carried.
    if (caps.resources) caps.resources = { ...caps.resources, subscribe: undefined };
    // Logging is per request in 2026-07-28 (`_meta` logLevel), not logging/setLevel.
    delete (caps as { logging?: unknown }).logging;
    const server = new Server(up.client.getServerVersion() ?? { name: 'mcp-server', version: '0' }, {
      capabilities: caps,
      instructions: up.client.getInstructions(),
    });
    // Only what the server offers is carried; any other method gets the SDK's own -32601 (HTTP 404).
    for (const [cap, methods] of Object.entries(CARRIED_METHODS))
      if ((caps as Record<string, unknown>)[cap])
        for (const method of methods)
          server.setRequestHandler(
            method as 'tools/list',
            (async (request: { method: string; params?: Record<string, unknown> }, ctx: never) => {
              let result = await this.carry(caller, { method, params: request.params }, ctx).catch((err: unknown) => {
                throw method === 'resources/read' ? resourceNotFound(err, request.params?.uri) : err;
              });
              if (method === 'tools/list' && caller.grant && !caller.grant.all && Array.isArray(result.tools)) {
                const g = caller.grant;
                result = {
                  ...result,
                  tools: (result.tools as Array<{ name?: unknown }>).filter(
                    (t) => typeof t.name === 'string' && allows(g, t.name),
                  ),
                };
              }
              return result;
            }) as never,
          );
    return server;
  }
}

/**
 * A 2025-era "resource not found" error as 2026-07-28 has it (SEP-2164): code -32002 becomes
 * -32602 (Invalid Params), and a not-found error without `data.uri` gets the requested URI.
 * Any other error is returned as it is.
 */
export function resourceNotFound(err: unknown, uri: unknown): unknown {
  const e = err as { code?: unknown; message?: unknown; data?: unknown };
  if (!(err instanceof Error) || typeof e.code !== 'number' || typeof uri !== 'string') return err;
  const notFound = e.code === -32002 || (e.code === -32602 && /not found/i.test(String(e.message)));
  if (!notFound) return err;
  const data = e.data && typeof e.data === 'object' ? (e.data as Record<string, unknown>) : {};
  return new ProtocolError(-32602, String(e.message), { ...data, uri: typeof data.uri === 'string' ? data.uri : uri });
}

/** Whether `v` maps keys to objects (the shape of `inputResponses`). */
function isRecordOfObjects(v: unknown): v is Record<string, Record<string, unknown>> {
  return (
    !!v &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => !!x && typeof x === 'object' && !Array.isArray(x))
  );
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
