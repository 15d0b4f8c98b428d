/**
 * Graceful drain of kubemcp's HTTP servers on SIGTERM (issue 18, "Rollouts drain";
 * mcp-lifecycle-operator#180): the gateway's reverse proxy (gateway/proxy.ts), the bridge
 * (gateway/http.ts) and `kubemcp serve -t http` (mcp-server/http.ts) share it.
 *
 * What a drain does, from {@link HttpDrain.begin} (the SIGTERM handler calls it):
 * 1. Readiness answers 503 at once ({@link HttpDrain.draining}), so the kubelet's readiness probe
 *    fails; the Endpoints controller has already marked the terminating pod not ready
 *    (Kubernetes docs, "Pod Lifecycle > Termination of Pods": the pod is removed from
 *    EndpointSlices as soon as it is terminating), the probe is the belt to those braces.
 * 2. A new session is refused: an `initialize` without `Mcp-Session-Id` gets 503, a JSON-RPC
 *    error saying the server is shutting down, and `Retry-After` ({@link HttpDrain.refuse}), so a
 *    client (or a retrying balancer) goes to another replica (RFC 9110 §15.6.4 and §10.2.3).
 * 3. Everything else is still served: in-flight requests finish with their results (their SSE
 *    response streams included), and an existing session's next requests work. Every response sent
 *    during the drain carries `Connection: close`, so no keep-alive connection stays idle on this
 *    pod: a client's next connection goes through the Service to a live replica, and no request
 *    races the final close of an idle keep-alive socket (the reason Go's `Server.Shutdown` and
 *    `http-terminator` do the same).
 * 4. The drain ends when no tracked request is in flight and at least `settleMs` have passed (the
 *    time kube-proxy and other balancers take to stop sending new connections: connections that
 *    still arrive get the 503 of step 2 rather than a refused connection), or at `deadlineMs`,
 *    whichever comes first. At the deadline, requests still running are cut: a request whose
 *    answer has not started gets 503 with a JSON-RPC error, a started one is closed, and each cut
 *    is logged at warn (method, tool, session, age). Open GET streams (the standalone SSE stream
 *    of a session) never finish by themselves: they are ended cleanly at the end (the SDK client
 *    reconnects them, MCP 2025-11-25 Streamable HTTP "Resumability and Redelivery"), not waited for.
 * 5. Then the server closes: `server.close()` (stops listening, closes idle connections; Node >= 19)
 *    and `closeAllConnections()` for what is left. The caller exits 0.
 *
 * The listener stays open for the whole drain, not closed at once as `http-terminator` and a plain
 * `server.close()` would: probes, the pod's own preStop hook ({@link HttpDrain.waitDrained},
 * charts/mcpserver.ts) and requests of existing sessions that come on new connections (forwarded by
 * a peer replica's gateway, or direct on loopback) must still reach it. This is why the drain is
 * our own on Node's built-ins (`closeIdleConnections`, `closeAllConnections`) rather than
 * `http-terminator` (which closes the listener first, and is not a dependency of the project).
 *
 * Pod ordering (charts/mcpserver.ts): every container of a pod gets SIGTERM at once, after its own
 * preStop hook. The server container behind a gateway (an HTTP MCPServer's user image, or the
 * stdio process of a bridged one) gets a preStop `httpGet` on the gateway's
 * {@link DRAIN_WAIT_PATH}, which answers when the gateway's drain has ended, so the server keeps
 * serving until then, whatever its image does on SIGTERM.
 */
import type * as http from 'node:http';
import type { Logger } from 'pino';
import { send } from './http-json.js';

/**
 * The path of the preStop hook of a server container behind a gateway or bridge: a GET that answers
 * 200 once this process's drain has ended (or within {@link HOOK_START_WAIT_MS} when no drain
 * starts). Under the gateway's own prefix (gateway/wiring.ts GATEWAY_PATH_PREFIX), never proxied.
 */
export const DRAIN_WAIT_PATH = '/.kubemcp/drained';
/** The gateway's readiness path (its liveness path `/.kubemcp/healthz` stays 200 while draining). */
export const GATEWAY_READY_PATH = '/.kubemcp/readyz';
/** The environment variable (and `--drain-seconds` flag) with the drain deadline in seconds. */
export const DRAIN_SECONDS_ENV = 'MCP_DRAIN_SECONDS';
/** Default drain deadline, seconds: under Kubernetes' default terminationGracePeriodSeconds of 30. */
export const DEFAULT_DRAIN_SECONDS = 25;
/** Default least drain time, ms (endpoint propagation; see the module comment, step 4). */
export const DEFAULT_SETTLE_MS = 2000;
/** How long {@link DRAIN_WAIT_PATH} waits for a drain to start before answering "not draining", ms. */
export const HOOK_START_WAIT_MS = 3000;
/** JSON-RPC error code of a refused or cut request (implementation-defined server error, JSON-RPC 2.0 §5.1). */
export const SHUTTING_DOWN = -32000;

/** Options of {@link HttpDrain}. */
export interface HttpDrainOptions {
  /** What drains, for logs (`kubemcp gateway`, `kubemcp bridge`, `kubemcp serve`). */
  name: string;
  log: Logger;
  /** Drain deadline in ms from {@link HttpDrain.begin} (default {@link DEFAULT_DRAIN_SECONDS} s). */
  deadlineMs?: number;
  /** Least drain time in ms (default {@link DEFAULT_SETTLE_MS}; at most the deadline). */
  settleMs?: number;
  /** `Retry-After` of a refused session, seconds (default 1). */
  retryAfterSeconds?: number;
}

/** What a tracked request is, for the log line of a cut one. */
export interface TrackedRequest {
  method?: string;
  tool?: string;
  session?: string;
  /** A JSON-RPC request id, used in the 503 answer of a request cut before its answer started. */
  id?: unknown;
}

/** The outcome of a drain. */
export interface DrainResult {
  /** Requests that finished during the drain. */
  finished: number;
  /** Requests still running at the deadline, cut. */
  cut: number;
  /** Open GET streams ended at the end. */
  streams: number;
  /** Whether the deadline ended the drain. */
  deadline: boolean;
  /** How long the drain took, ms. */
  ms: number;
}

interface Entry extends TrackedRequest {
  res: http.ServerResponse;
  at: number;
}

/** Parses a drain deadline in seconds (flag or {@link DRAIN_SECONDS_ENV}). @throws on anything but an integer 0-3600. */
export function parseDrainSeconds(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < 0 || n > 3600)
    throw new Error(`the drain deadline must be whole seconds from 0 to 3600, got "${v}"`);
  return n;
}

/** The drain state of one HTTP server (see the module comment for the whole behaviour). */
export class HttpDrain {
  private readonly inflight = new Set<Entry>();
  private readonly streams = new Map<http.ServerResponse, () => void>();
  private readonly waiters = new Set<http.ServerResponse>();
  private startedAt = 0;
  private finishedCount = 0;
  private done?: Promise<DrainResult>;
  private ended = false;
  private wake?: () => void;
  private readonly deadlineMs: number;
  private readonly settleMs: number;

  constructor(
    private readonly server: http.Server,
    private readonly opts: HttpDrainOptions,
  ) {
    this.deadlineMs = opts.deadlineMs ?? DEFAULT_DRAIN_SECONDS * 1000;
    this.settleMs = Math.min(opts.settleMs ?? DEFAULT_SETTLE_MS, this.deadlineMs);
  }

  /** Whether a drain has begun (readiness answers 503 from then on). */
  get draining(): boolean {
    return this.startedAt > 0;
  }

  /** Requests in flight now (GET streams and drain waiters not counted). */
  get inFlight(): number {
    return this.inflight.size;
  }

  /**
   * Tracks one request until its response closes; the drain waits for it. During a drain its
   * response gets `Connection: close`. Call it before any byte of the answer is written.
   */
  track(res: http.ServerResponse, what: TrackedRequest = {}): void {
    const e: Entry = { ...what, res, at: Date.now() };
    this.inflight.add(e);
    if (this.draining) this.closeAfter(res);
    res.once('close', () => {
      if (!this.inflight.delete(e)) return;
      if (this.draining) this.finishedCount++;
      this.wake?.();
    });
  }

  /** Adds what became known after {@link track} (the parsed JSON-RPC method, tool, id) for the log of a cut. */
  describe(res: http.ServerResponse, what: TrackedRequest): void {
    for (const e of this.inflight) if (e.res === res) Object.assign(e, what);
  }

  /**
   * Tracks a long-lived GET stream: not waited for, ended cleanly when the drain ends, by `end`
   * (default `res.end()`; a proxy also stops its upstream stream there).
   */
  stream(res: http.ServerResponse, end?: () => void): void {
    this.untrack(res);
    this.streams.set(res, end ?? (() => res.end()));
    if (this.draining) this.closeAfter(res);
    // Whoever writes the stream (the SDK transport, a pipe) may write once more after the end:
    // that write fails quietly instead of as an unhandled 'error' event.
    res.on('error', () => undefined);
    res.once('close', () => this.streams.delete(res));
  }

  /** Stops tracking `res` (e.g. a request answered by a path that is not MCP work). */
  untrack(res: http.ServerResponse): void {
    for (const e of this.inflight)
      if (e.res === res) {
        this.inflight.delete(e);
        this.wake?.();
      }
  }

  /**
   * Answers a new session during a drain: 503, `Retry-After`, `Connection: close` and a JSON-RPC
   * error with the request's id (MCP 2025-11-25 Streamable HTTP: a client may retry elsewhere).
   */
  refuse(res: http.ServerResponse, id: unknown = null): void {
    this.untrack(res);
    if (res.headersSent) return void res.destroy();
    send(
      res,
      503,
      {
        jsonrpc: '2.0',
        id: id ?? null,
        error: {
          code: SHUTTING_DOWN,
          message: `${this.opts.name} is shutting down (its pod is terminating): retry, another replica will take the new session`,
        },
      },
      { 'Retry-After': String(this.opts.retryAfterSeconds ?? 1), Connection: 'close' },
    );
  }

  /**
   * The answer of {@link DRAIN_WAIT_PATH} (a preStop hook): 200 once the drain has ended; when no
   * drain begins within {@link HOOK_START_WAIT_MS}, 200 "not draining" (a container restart, not a
   * pod termination). Not tracked: the drain does not wait for it.
   */
  waitDrained(res: http.ServerResponse): void {
    this.untrack(res);
    if (this.ended) return send(res, 200, { status: 'drained' });
    this.waiters.add(res);
    if (this.draining) {
      res.once('close', () => this.waiters.delete(res));
      return;
    }
    // The timer goes with its response: the path is reachable by any client of the port, so
    // nothing may outlive the request (a list of timers kept until a drain would grow without bound).
    const timer = setTimeout(() => {
      if (this.draining || !this.waiters.delete(res)) return;
      send(res, 200, { status: 'not draining' });
    }, HOOK_START_WAIT_MS);
    timer.unref();
    res.once('close', () => {
      clearTimeout(timer);
      this.waiters.delete(res);
    });
  }

  /** Answers a readiness probe during a drain: 503 `{status: 'draining'}`. @returns whether it answered. */
  answerReadiness(res: http.ServerResponse): boolean {
    if (!this.draining) return false;
    this.untrack(res);
    send(res, 503, { status: 'draining', reason: `${this.opts.name} is shutting down`, inFlight: this.inflight.size });
    return true;
  }

  /**
   * Begins the drain (idempotent) and resolves when it has ended and the server is closed.
   * Never rejects.
   */
  begin(): Promise<DrainResult> {
    this.done ??= this.run();
    return this.done;
  }

  /** Resolves when `res` has been sent (or closed), at most 500 ms. */
  private flushed(res: http.ServerResponse): Promise<void> {
    return new Promise<void>((resolve) => {
      res.once('finish', resolve);
      res.once('close', resolve);
      setTimeout(resolve, 500).unref();
    });
  }

  private closeAfter(res: http.ServerResponse): void {
    if (!res.headersSent) res.setHeader('Connection', 'close');
  }

  private async run(): Promise<DrainResult> {
    const log = this.opts.log;
    this.startedAt = Date.now();
    for (const e of this.inflight) this.closeAfter(e.res);
    for (const s of this.streams.keys()) this.closeAfter(s);
    log.info(
      { inFlight: this.inflight.size, streams: this.streams.size, deadlineMs: this.deadlineMs },
      `${this.opts.name}: draining (SIGTERM): not ready, no new sessions, in-flight requests finish`,
    );
    const deadline = this.startedAt + this.deadlineMs;
    const settle = this.startedAt + this.settleMs;
    let byDeadline = false;
    for (;;) {
      const now = Date.now();
      if (now >= deadline) {
        byDeadline = this.inflight.size > 0;
        break;
      }
      if (this.inflight.size === 0 && now >= settle) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, (this.inflight.size === 0 ? settle : deadline) - now);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    let cut = 0;
    const flushed: Promise<void>[] = [];
    for (const e of [...this.inflight]) {
      cut++;
      log.warn(
        {
          method: e.method,
          tool: e.tool,
          session: e.session,
          ageMs: Date.now() - e.at,
          answered: e.res.headersSent,
        },
        `${this.opts.name}: drain deadline of ${this.deadlineMs} ms reached: request cut`,
      );
      this.inflight.delete(e);
      if (e.res.headersSent) {
        e.res.destroy();
        continue;
      }
      flushed.push(this.flushed(e.res));
      send(
        e.res,
        503,
        {
          jsonrpc: '2.0',
          id: e.id ?? null,
          error: {
            code: SHUTTING_DOWN,
            message: `${this.opts.name} shut down before the request finished (drain deadline of ${Math.round(this.deadlineMs / 1000)} s): it may or may not have taken effect`,
          },
        },
        { Connection: 'close' },
      );
    }
    const streams = this.streams.size;
    for (const end of this.streams.values()) end();
    this.streams.clear();
    this.ended = true;
    // Answer the preStop hooks; let these answers and the cut ones reach their peers before closing.
    for (const w of this.waiters) {
      flushed.push(this.flushed(w));
      send(w, 200, { status: 'drained' });
    }
    this.waiters.clear();
    await Promise.all(flushed);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.server.closeAllConnections();
    await closed;
    const result: DrainResult = {
      finished: this.finishedCount,
      cut,
      streams,
      deadline: byDeadline,
      ms: Date.now() - this.startedAt,
    };
    if (cut)
      log.warn(
        result,
        `${this.opts.name}: drained at the deadline: ${cut} request(s) cut, ${result.finished} finished`,
      );
    else log.info(result, `${this.opts.name}: drained: ${result.finished} in-flight request(s) finished, none cut`);
    return result;
  }
}

/**
 * Waits for SIGTERM or SIGINT (the run loop of `kubemcp gateway`, `bridge` and `serve -t http`).
 * On SIGTERM runs `drain` (a server's {@link HttpDrain.begin}, which logs the outcome); on SIGINT,
 * or a second signal during the drain, returns without draining.
 * @returns the drain's outcome, or undefined when it did not drain.
 */
export async function untilSignal(drain: () => Promise<DrainResult>): Promise<DrainResult | undefined> {
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  if (signal !== 'SIGTERM') return undefined;
  // A second signal stops the drain (the kubelet sends SIGKILL at the grace period's end anyway).
  const again = new Promise<undefined>((resolve) => {
    process.once('SIGINT', () => resolve(undefined));
    process.once('SIGTERM', () => resolve(undefined));
  });
  return Promise.race([drain(), again]);
}
