/**
 * The stdio bridge: one long-lived stdio MCP process shared by many Streamable HTTP sessions
 * (issue 11). The HTTP side is gateway/http.ts; the FIFOs are gateway/fifo.ts;
 * how the pod wires them is gateway/wiring.ts.
 *
 * What the bridge does with each message (MCP spec 2025-11-25: Lifecycle, Transports, Utilities
 * > Progress and Cancellation, Server > Resources > Subscriptions):
 * - It initializes the process itself, once per process start (`initialize`, then
 *   `notifications/initialized`), with no client capabilities (so a well-behaved server sends
 *   no sampling, elicitation or roots requests), and answers every session's `initialize` from
 *   that result. A session's `notifications/initialized` is not forwarded.
 * - Requests: the JSON-RPC id is replaced by a bridge-wide unique one (`kb-<nonce>-<n>`), and a
 *   progress token by a unique token, so requests of different sessions never collide; the
 *   response goes back to the session that asked, with its own id.
 * - Notifications from the process: progress to the session of the request (with its own token,
 *   on that request's stream); `notifications/resources/updated` to the sessions subscribed to
 *   the URI; list_changed and everything else (logging) to every session.
 * - Cancellation from a session is forwarded with the rewritten id; a closed session's in-flight
 *   requests are cancelled. Subscriptions are reference-counted across sessions.
 * - Requests from the process: `ping` is answered. With `clientCapabilities` (declared to the
 *   process in the bridge's `initialize`; none by default), `sampling/createMessage`,
 *   `elicitation/create` and `roots/list` go to the one session that has requests in flight, if
 *   it declared the matching capability in its own `initialize`, with an id of the bridge's; its
 *   answer goes back to the process with the process's id. stdio carries no link from such a
 *   request to the request that caused it (MCP 2025-11-25 Transports > stdio), so when no
 *   session or several have requests in flight, or for any other method, the process gets
 *   "method not found". The request reaches the client on its session's GET stream, or on the
 *   causing request's SSE stream when that request was answered as a stream.
 * - When the process exits, every in-flight request gets a JSON-RPC error at once (no hang), the
 *   bridge is not ready until the restarted process answered `initialize` again, requests that
 *   arrive meanwhile wait up to `readyWaitMs`, and subscriptions are renewed.
 * - A line from the process that is not JSON-RPC is logged and skipped; a line over
 *   `maxMessageBytes` is dropped, and if it was a response, its request gets a JSON-RPC error.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type ClientCapabilities,
  type InitializeResult,
  type JSONRPCErrorResponse,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';

// Messages reach the bridge validated once (a session's by the SDK's HTTP transport, the
// process's by parseLine against JSONRPCMessageSchema); these tell the validated kinds apart
// without parsing them with zod again (the SDK's isJSONRPC* guards each run a schema parse).
const isRequest = (m: JSONRPCMessage): m is JSONRPCRequest => 'method' in m && 'id' in m;
const isNotification = (m: JSONRPCMessage): m is JSONRPCNotification => 'method' in m && !('id' in m);
const isResponse = (m: JSONRPCMessage): boolean => !('method' in m) && ('result' in m || 'error' in m);
const isError = (m: JSONRPCMessage): m is JSONRPCErrorResponse => !('method' in m) && 'error' in m;
import { Counter, Gauge, Registry } from 'prom-client';
import { FifoConnection, type OversizeLine } from './fifo.js';
import type { BridgePaths } from './wiring.js';

/**
 * JSON-RPC error codes of the bridge (the implementation-defined server-error range -32000 to
 * -32099 of JSON-RPC 2.0, section 5.1).
 */
export const BRIDGE_ERROR = {
  /** The stdio process is not (yet) initialized; the message says why. */
  notReady: -32010,
  /** The stdio process exited while the request was in flight. */
  processExited: -32011,
  /** The process's response exceeded the message size limit. */
  messageTooLarge: -32012,
} as const;

/** One HTTP session as the bridge sees it: something that accepts messages for one client. */
export interface BridgeSession {
  readonly id: string;
  /** Sends a message to the client; `relatedRequestId` puts it on that request's stream. */
  send(message: JSONRPCMessage, options?: { relatedRequestId?: RequestId }): Promise<void>;
}

/** Options of {@link StdioBridge}. */
export interface StdioBridgeOptions {
  paths: BridgePaths;
  log: Logger;
  /** Largest message in bytes, either direction (default 4 MiB, as the SDK's HTTP transport). */
  maxMessageBytes?: number;
  /** After this many ms without an answer to `initialize`, /ready says so (default 30 000; the bridge keeps waiting). */
  initTimeoutMs?: number;
  /** How long a session's request waits for a ready process before an error (ms, default 10 000). */
  readyWaitMs?: number;
  /** clientInfo the bridge sends in its `initialize`. */
  clientInfo?: { name: string; version: string };
  /**
   * Client capabilities the bridge declares to the process (default none): `sampling`,
   * `elicitation` and `roots` make the bridge forward the process's `sampling/createMessage`,
   * `elicitation/create` and `roots/list` to a session (see the module comment).
   */
  clientCapabilities?: ClientCapabilities;
  /** Registry for the bridge's Prometheus metrics (default: a new one). */
  registry?: Registry;
}

/** Lifecycle states of the process as the bridge sees it. */
export type BridgeState = 'waiting' | 'initializing' | 'ready' | 'failed' | 'closed';

interface InFlight {
  session: BridgeSession;
  clientId: RequestId;
  method: string;
  progressToken?: string | number;
  bridgeToken?: string;
  /** The URI of a resources/subscribe, released again if the process refuses it. */
  subscribeUri?: string;
}

/** A request of the process forwarded to a session, under the bridge's id. */
interface Outgoing {
  sessionId: string;
  /** The process's id of the request. */
  upstreamId: RequestId;
}

/** The client capability a server-to-client request needs (MCP 2025-11-25 Client features). */
function needsCapability(m: JSONRPCRequest, caps: ClientCapabilities | undefined): boolean {
  if (!caps) return false;
  switch (m.method) {
    case 'sampling/createMessage':
      return caps.sampling !== undefined;
    case 'roots/list':
      return caps.roots !== undefined;
    case 'elicitation/create': {
      const e = caps.elicitation as { form?: object; url?: object } | undefined;
      if (!e) return false;
      // An empty `elicitation: {}` means form mode (2025-11-25 Client Features > Elicitation > Capabilities).
      return (m.params as { mode?: string } | undefined)?.mode === 'url'
        ? e.url !== undefined
        : e.form !== undefined || e.url === undefined;
    }
    default:
      return false;
  }
}

interface Internal {
  resolve: (m: JSONRPCMessage | undefined) => void;
}

const DEFAULT_MAX = 4 * 1024 * 1024;

/** The multiplexer between HTTP sessions and one stdio process. */
export class StdioBridge {
  private readonly opts: Required<Omit<StdioBridgeOptions, 'registry' | 'clientInfo' | 'clientCapabilities'>> &
    Pick<StdioBridgeOptions, 'clientInfo' | 'clientCapabilities'>;
  private readonly prefix = `kb-${randomBytes(4).toString('hex')}-`;
  private readonly idPattern: RegExp;
  private seq = 0;
  private conn?: FifoConnection;
  private stateValue: BridgeState = 'waiting';
  private reasonValue = 'waiting for the stdio process to open its FIFOs';
  private initResult?: InitializeResult;
  private readonly inflight = new Map<string, InFlight>();
  private readonly tokens = new Map<string, string>(); // bridge progress token -> upstream request id
  private readonly internal = new Map<string, Internal>();
  private readonly outgoing = new Map<string, Outgoing>(); // bridge id -> the process's request
  private readonly sessionCaps = new Map<string, ClientCapabilities>(); // session id -> its initialize's capabilities
  private readonly sessions = new Map<string, BridgeSession>();
  private readonly subscriptions = new Map<string, Set<string>>(); // uri -> session ids
  private readyWaiters = new Set<() => void>();
  private readonly abort = new AbortController();
  private loopDone?: Promise<void>;
  /** Number of process starts seen (FIFOs opened). */
  starts = 0;
  readonly registry: Registry;
  private readonly m: {
    requests: Counter<'result'>;
    inflight: Gauge;
    starts: Counter;
    malformed: Counter;
    oversize: Counter;
    ready: Gauge;
  };

  constructor(options: StdioBridgeOptions) {
    this.opts = {
      paths: options.paths,
      log: options.log,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX,
      initTimeoutMs: options.initTimeoutMs ?? 30_000,
      readyWaitMs: options.readyWaitMs ?? 10_000,
      clientInfo: options.clientInfo,
      clientCapabilities: options.clientCapabilities,
    };
    this.idPattern = new RegExp(`"id"\\s*:\\s*"(${this.prefix}\\d+)"`, 'g');
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    this.m = {
      requests: new Counter({
        name: 'kubemcp_bridge_requests_total',
        help: 'Requests forwarded to the stdio process, by result',
        labelNames: ['result'],
        registers,
      }),
      inflight: new Gauge({
        name: 'kubemcp_bridge_inflight_requests',
        help: 'Requests waiting for the stdio process',
        registers,
      }),
      starts: new Counter({
        name: 'kubemcp_bridge_process_starts_total',
        help: 'Times a stdio process opened the FIFOs',
        registers,
      }),
      malformed: new Counter({
        name: 'kubemcp_bridge_malformed_lines_total',
        help: 'Lines from the stdio process that were not JSON-RPC (skipped)',
        registers,
      }),
      oversize: new Counter({
        name: 'kubemcp_bridge_oversize_messages_total',
        help: 'Messages over the size limit (dropped or refused)',
        registers,
      }),
      ready: new Gauge({
        name: 'kubemcp_bridge_ready',
        help: '1 when the stdio process answered initialize',
        registers,
      }),
    };
  }

  /** The largest message in bytes. */
  get maxMessageBytes(): number {
    return this.opts.maxMessageBytes;
  }

  /** Current state and the reason it is not ready (empty when ready). */
  status(): {
    ready: boolean;
    state: BridgeState;
    reason: string;
    starts: number;
    sessions: number;
    inflight: number;
    serverInfo?: InitializeResult['serverInfo'];
  } {
    return {
      ready: this.stateValue === 'ready',
      state: this.stateValue,
      reason: this.reasonValue,
      starts: this.starts,
      sessions: this.sessions.size,
      inflight: this.inflight.size,
      ...(this.initResult ? { serverInfo: this.initResult.serverInfo } : {}),
    };
  }

  /** Starts connecting to the process (in the background; see {@link status}). */
  start(): void {
    this.loopDone ??= this.loop();
  }

  /** Stops: fails in-flight requests, closes the FIFOs, stops waiting for a process. */
  async close(): Promise<void> {
    this.setState('closed', 'bridge closed');
    this.abort.abort();
    this.conn?.close();
    await this.loopDone;
  }

  private setState(state: BridgeState, reason: string): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = state;
    this.reasonValue = reason;
    this.m.ready.set(state === 'ready' ? 1 : 0);
    if (state === 'ready') {
      for (const w of this.readyWaiters) w();
      this.readyWaiters.clear();
    }
  }

  private async loop(): Promise<void> {
    const log = this.opts.log;
    while (!this.abort.signal.aborted) {
      this.setState('waiting', 'waiting for the stdio process to open its FIFOs');
      let conn: FifoConnection;
      try {
        conn = await FifoConnection.open(
          this.opts.paths,
          this.opts.maxMessageBytes,
          {
            message: (m) => this.fromProcess(m),
            malformed: (excerpt, reason) => {
              this.m.malformed.inc();
              log.warn({ reason, excerpt }, 'skipped a line from the stdio process that is not JSON-RPC');
            },
            oversize: (o) => this.oversizeFromProcess(o),
          },
          this.abort.signal,
        );
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.setState('failed', `cannot open the FIFOs: ${(err as Error).message}`);
        log.error({ err: (err as Error).message }, 'cannot open the FIFOs; retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      this.conn = conn;
      this.starts++;
      this.m.starts.inc();
      log.info({ start: this.starts }, 'stdio process connected; initializing');
      void this.initialize(conn);
      await conn.closed;
      this.processGone(conn);
    }
  }

  /** Initializes a freshly connected process; on success the bridge is ready. */
  private async initialize(conn: FifoConnection): Promise<void> {
    this.setState('initializing', 'waiting for the stdio process to answer initialize');
    const timer = setTimeout(() => {
      if (this.conn === conn && this.stateValue === 'initializing') {
        this.reasonValue = `the stdio process has not answered initialize within ${Math.round(this.opts.initTimeoutMs / 1000)} s`;
        this.opts.log.warn(this.reasonValue);
      }
    }, this.opts.initTimeoutMs);
    const answer = await this.request(conn, 'initialize', {
      protocolVersion: LATEST_PROTOCOL_VERSION,
      capabilities: this.opts.clientCapabilities ?? {},
      clientInfo: this.opts.clientInfo ?? { name: 'kubemcp-bridge', version: '0.1.0' },
    });
    clearTimeout(timer);
    if (this.conn !== conn || !conn.isOpen) return;
    if (!answer) return; // process gone before answering
    if (isError(answer)) {
      this.setState(
        'failed',
        `the stdio process refused initialize: ${answer.error.message} (code ${answer.error.code})`,
      );
      this.opts.log.error({ error: answer.error }, 'initialize refused');
      return;
    }
    const result = (answer as unknown as { result: InitializeResult }).result;
    if (
      !result ||
      typeof result.protocolVersion !== 'string' ||
      !SUPPORTED_PROTOCOL_VERSIONS.includes(result.protocolVersion)
    ) {
      this.setState(
        'failed',
        `the stdio process answered initialize with an unsupported protocol version ${JSON.stringify(result?.protocolVersion)}`,
      );
      return;
    }
    const again = this.initResult !== undefined;
    this.initResult = result;
    conn.write({ jsonrpc: '2.0', method: 'notifications/initialized' });
    for (const uri of this.subscriptions.keys()) void this.request(conn, 'resources/subscribe', { uri });
    this.setState('ready', '');
    this.opts.log.info(
      { serverInfo: result.serverInfo, protocolVersion: result.protocolVersion, start: this.starts },
      'stdio process initialized',
    );
    if (again) {
      // The restarted process may offer other tools, prompts or resources.
      const caps = result.capabilities ?? {};
      for (const kind of ['tools', 'prompts', 'resources'] as const) {
        if ((caps[kind] as { listChanged?: boolean } | undefined)?.listChanged)
          this.broadcast({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
      }
    }
  }

  /** Sends a request of the bridge's own; resolves with the answer, or undefined if the process went away. */
  private request(
    conn: FifoConnection,
    method: string,
    params: Record<string, unknown>,
  ): Promise<JSONRPCMessage | undefined> {
    const id = this.nextId();
    return new Promise((resolve) => {
      this.internal.set(id, { resolve });
      if (!conn.write({ jsonrpc: '2.0', id, method, params })) {
        this.internal.delete(id);
        resolve(undefined);
      }
    });
  }

  private nextId(): string {
    return `${this.prefix}${++this.seq}`;
  }

  /** The process is gone: fail every in-flight request now, forget the process's state. */
  private processGone(conn: FifoConnection): void {
    if (this.conn === conn) this.conn = undefined;
    const n = this.inflight.size;
    for (const [id, f] of this.inflight) {
      this.inflight.delete(id);
      this.m.requests.inc({ result: 'process-exited' });
      void this.reply(f.session, {
        jsonrpc: '2.0',
        id: f.clientId,
        error: {
          code: BRIDGE_ERROR.processExited,
          message: `the stdio MCP server exited while handling ${f.method}; the request is lost (the container restarts the process and the bridge initializes it again)`,
        },
      });
    }
    this.tokens.clear();
    this.outgoing.clear();
    this.m.inflight.set(0);
    for (const [, i] of this.internal) i.resolve(undefined);
    this.internal.clear();
    if (this.stateValue !== 'closed')
      this.opts.log.warn({ failedRequests: n }, 'stdio process exited; waiting for the restarted process');
  }

  private async reply(session: BridgeSession, message: JSONRPCMessage, relatedRequestId?: RequestId): Promise<void> {
    try {
      await session.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId });
    } catch (err) {
      // The client went away (its HTTP stream closed): nothing left to deliver to.
      this.opts.log.debug({ session: session.id, err: (err as Error).message }, 'could not deliver to session');
    }
  }

  private broadcast(message: JSONRPCMessage): void {
    for (const s of this.sessions.values()) void this.reply(s, message);
  }

  /** Waits until ready, at most `ms`. @returns whether it is ready. */
  private async whenReady(ms: number): Promise<boolean> {
    if (this.stateValue === 'ready') return true;
    if (this.stateValue === 'closed') return false;
    let done!: () => void;
    const ready = new Promise<void>((r) => (done = r));
    this.readyWaiters.add(done);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ready, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    this.readyWaiters.delete(done);
    return this.status().ready;
  }

  private notReadyError(id: RequestId): JSONRPCMessage {
    return {
      jsonrpc: '2.0',
      id,
      error: { code: BRIDGE_ERROR.notReady, message: `the stdio MCP server is not ready: ${this.reasonValue}` },
    };
  }

  /** Registers a session, so it receives broadcast notifications. */
  addSession(session: BridgeSession): void {
    this.sessions.set(session.id, session);
  }

  /**
   * Forgets a session: its in-flight requests are cancelled in the process, its subscriptions
   * released (the process is unsubscribed from a URI no session wants any more).
   */
  removeSession(sessionId: string): void {
    this.sessions.delete(sessionId);
    this.sessionCaps.delete(sessionId);
    for (const [id, o] of this.outgoing) {
      if (o.sessionId !== sessionId) continue;
      this.outgoing.delete(id);
      this.conn?.write({
        jsonrpc: '2.0',
        id: o.upstreamId,
        error: { code: -32603, message: 'the HTTP session this request was sent to was closed' },
      });
    }
    for (const [id, f] of this.inflight) {
      if (f.session.id !== sessionId) continue;
      this.finish(id);
      this.conn?.write({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: id, reason: 'the HTTP session was closed' },
      });
    }
    for (const [uri, subs] of this.subscriptions) {
      if (subs.delete(sessionId) && subs.size === 0) {
        this.subscriptions.delete(uri);
        if (this.conn && this.stateValue === 'ready') void this.request(this.conn, 'resources/unsubscribe', { uri });
      }
    }
  }

  private finish(upstreamId: string): InFlight | undefined {
    const f = this.inflight.get(upstreamId);
    if (!f) return undefined;
    this.inflight.delete(upstreamId);
    if (f.bridgeToken) this.tokens.delete(f.bridgeToken);
    this.m.inflight.set(this.inflight.size);
    return f;
  }

  /**
   * Handles one message a session's client sent (called by the HTTP side for every message).
   * Never throws: problems are answered with JSON-RPC errors.
   */
  async fromSession(session: BridgeSession, message: JSONRPCMessage): Promise<void> {
    if (isRequest(message)) return this.requestFromSession(session, message);
    if (isNotification(message)) return this.notificationFromSession(session, message);
    // A response to a request of the process the bridge forwarded to this session.
    const id = String((message as { id?: RequestId }).id);
    const o = this.outgoing.get(id);
    if (isResponse(message) && o?.sessionId === session.id) {
      this.outgoing.delete(id);
      this.conn?.write({ ...message, id: o.upstreamId } as JSONRPCMessage);
      return;
    }
    this.opts.log.debug({ session: session.id }, 'dropped a response from a client that answers no forwarded request');
  }

  private async requestFromSession(session: BridgeSession, req: JSONRPCRequest): Promise<void> {
    if (!(await this.whenReady(this.opts.readyWaitMs)) || !this.conn) {
      this.m.requests.inc({ result: 'not-ready' });
      return this.reply(session, this.notReadyError(req.id));
    }
    if (req.method === 'initialize') {
      this.sessionCaps.set(session.id, (req.params as { capabilities?: ClientCapabilities }).capabilities ?? {});
      return this.reply(session, {
        jsonrpc: '2.0',
        id: req.id,
        result: this.initResult as unknown as Record<string, unknown>,
      });
    }
    const uri = typeof req.params?.uri === 'string' ? req.params.uri : undefined;
    if (req.method === 'resources/subscribe' && uri !== undefined) {
      const subs = this.subscriptions.get(uri);
      if (subs) {
        subs.add(session.id);
        return this.reply(session, { jsonrpc: '2.0', id: req.id, result: {} });
      }
      this.subscriptions.set(uri, new Set([session.id]));
    }
    if (req.method === 'resources/unsubscribe' && uri !== undefined) {
      const subs = this.subscriptions.get(uri);
      subs?.delete(session.id);
      if (subs && subs.size > 0) return this.reply(session, { jsonrpc: '2.0', id: req.id, result: {} });
      this.subscriptions.delete(uri);
    }
    const id = this.nextId();
    const f: InFlight = {
      session,
      clientId: req.id,
      method: req.method,
      ...(req.method === 'resources/subscribe' && uri !== undefined ? { subscribeUri: uri } : {}),
    };
    let out: JSONRPCRequest = { ...req, id };
    const meta = req.params?._meta as { progressToken?: string | number } | undefined;
    if (meta?.progressToken !== undefined) {
      f.progressToken = meta.progressToken;
      f.bridgeToken = `${id}-p`;
      this.tokens.set(f.bridgeToken, id);
      out = { ...out, params: { ...req.params, _meta: { ...meta, progressToken: f.bridgeToken } } };
    }
    const line = JSON.stringify(out);
    if (Buffer.byteLength(line) > this.opts.maxMessageBytes) {
      this.m.oversize.inc();
      if (f.bridgeToken) this.tokens.delete(f.bridgeToken);
      return this.reply(session, {
        jsonrpc: '2.0',
        id: req.id,
        error: {
          code: BRIDGE_ERROR.messageTooLarge,
          message: `request of ${Buffer.byteLength(line)} bytes exceeds the bridge's limit of ${this.opts.maxMessageBytes} bytes`,
        },
      });
    }
    this.inflight.set(id, f);
    this.m.inflight.set(this.inflight.size);
    this.conn.write(out);
  }

  private notificationFromSession(session: BridgeSession, n: JSONRPCNotification): void {
    switch (n.method) {
      case 'notifications/initialized': // the bridge initialized the process itself
      case 'notifications/roots/list_changed': // the bridge declared no roots capability
        return;
      case 'notifications/cancelled': {
        const requestId = (n.params as { requestId?: RequestId } | undefined)?.requestId;
        for (const [id, f] of this.inflight) {
          if (f.session.id === session.id && f.clientId === requestId) {
            this.finish(id);
            this.m.requests.inc({ result: 'cancelled' });
            this.conn?.write({ ...n, params: { ...n.params, requestId: id } });
            return;
          }
        }
        return; // already answered, or not ours
      }
      default:
        // Progress about a server-to-client request, or anything newer: nothing to route.
        this.opts.log.debug({ method: n.method, session: session.id }, 'dropped a notification from a client');
    }
  }

  /** Routes one message from the process. */
  private fromProcess(m: JSONRPCMessage): void {
    if (isResponse(m)) {
      const id = String((m as { id: RequestId }).id);
      const internal = this.internal.get(id);
      if (internal) {
        this.internal.delete(id);
        internal.resolve(m);
        return;
      }
      const f = this.finish(id);
      if (!f) return; // cancelled, or its session is gone
      this.m.requests.inc({ result: isError(m) ? 'error' : 'ok' });
      if (f.subscribeUri !== undefined && isError(m)) {
        const subs = this.subscriptions.get(f.subscribeUri);
        if (subs?.delete(f.session.id) && subs.size === 0) this.subscriptions.delete(f.subscribeUri);
      }
      void this.reply(f.session, { ...m, id: f.clientId });
      return;
    }
    if (isRequest(m)) {
      if (m.method === 'ping') {
        this.conn?.write({ jsonrpc: '2.0', id: m.id, result: {} });
        return;
      }
      if (this.forwardToSession(m)) return;
      this.conn?.write({
        jsonrpc: '2.0',
        id: m.id,
        error: {
          code: -32601,
          message: `${m.method} is not available: the kubemcp bridge shares this process between sessions and forwards it only to the one session with requests in flight, when that session declared the capability`,
        },
      });
      return;
    }
    if (!isNotification(m)) return;
    if (m.method === 'notifications/progress') {
      const token = (m.params as { progressToken?: unknown } | undefined)?.progressToken;
      const upstreamId = typeof token === 'string' ? this.tokens.get(token) : undefined;
      const f = upstreamId ? this.inflight.get(upstreamId) : undefined;
      if (f) void this.reply(f.session, { ...m, params: { ...m.params, progressToken: f.progressToken } }, f.clientId);
      return;
    }
    if (m.method === 'notifications/cancelled') {
      // About a request of the process: tell the session it was forwarded to, if any.
      const requestId = (m.params as { requestId?: RequestId } | undefined)?.requestId;
      for (const [id, o] of this.outgoing) {
        if (o.upstreamId !== requestId) continue;
        this.outgoing.delete(id);
        const s = this.sessions.get(o.sessionId);
        if (s) void this.reply(s, { ...m, params: { ...m.params, requestId: id } });
      }
      return;
    }
    if (m.method === 'notifications/resources/updated') {
      const uri = (m.params as { uri?: unknown } | undefined)?.uri;
      for (const sid of this.subscriptions.get(String(uri)) ?? []) {
        const s = this.sessions.get(sid);
        if (s) void this.reply(s, m);
      }
      return;
    }
    // list_changed, logging messages and anything else: every session shares this process.
    this.broadcast(m);
  }

  /**
   * Forwards a request of the process (sampling, elicitation, roots) to the one session with
   * requests in flight, under a bridge id, if the bridge declared and that session declared the
   * capability it needs. On that request's SSE stream when it has one (the session registered
   * under its id is the one that asked), else on the session's GET stream.
   * @returns false when it cannot be routed (the caller answers the process with an error).
   */
  private forwardToSession(m: JSONRPCRequest): boolean {
    if (!needsCapability(m, this.opts.clientCapabilities)) return false;
    const ids = new Set([...this.inflight.values()].map((f) => f.session.id));
    if (ids.size !== 1) return false;
    const sessionId = [...ids][0]!;
    const session = this.sessions.get(sessionId);
    if (!session || !needsCapability(m, this.sessionCaps.get(sessionId))) return false;
    // A request answered as one JSON body (gateway/http.ts answerAsJson) has no stream to carry this.
    const streamed = [...this.inflight.values()].find((f) => f.session === session);
    const id = this.nextId();
    this.outgoing.set(id, { sessionId, upstreamId: m.id });
    const related = streamed ? { relatedRequestId: streamed.clientId } : undefined;
    session.send({ ...m, id }, related).catch((err: unknown) => {
      // Not delivered (the client's stream is gone): the process hears so now rather than at its timeout.
      if (!this.outgoing.delete(id)) return;
      this.conn?.write({
        jsonrpc: '2.0',
        id: m.id,
        error: { code: -32603, message: `could not deliver ${m.method} to the session: ${(err as Error).message}` },
      });
    });
    return true;
  }

  /** A line over the limit: if it answers an in-flight request, that request gets an error. */
  private oversizeFromProcess(o: OversizeLine): void {
    this.m.oversize.inc();
    const ids = [...`${o.head}\n${o.tail}`.matchAll(this.idPattern)].map((x) => x[1]!);
    const id = ids.reverse().find((i) => this.inflight.has(i));
    this.opts.log.warn(
      { bytes: o.bytes, limit: this.opts.maxMessageBytes, request: id },
      'dropped a message from the stdio process over the size limit',
    );
    if (!id) return;
    const f = this.finish(id)!;
    this.m.requests.inc({ result: 'too-large' });
    void this.reply(f.session, {
      jsonrpc: '2.0',
      id: f.clientId,
      error: {
        code: BRIDGE_ERROR.messageTooLarge,
        message: `the stdio MCP server's response to ${f.method} is ${o.bytes} bytes, over the bridge's limit of ${this.opts.maxMessageBytes} bytes (kubemcp bridge --max-message-bytes)`,
      },
    });
  }
}
