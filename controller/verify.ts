/**
 * Protocol-verified readiness (issue 10, part 2; both protocol eras since issue 18): an MCP
 * connection to an MCPServer's Service over Streamable HTTP with the official SDK v2 client
 * (`@modelcontextprotocol/client` 2.4.0) in `versionNegotiation: {mode: 'auto'}`:
 * - it first sends `server/discover` (MCP 2026-07-28,
 *   https://modelcontextprotocol.io/specification/2026-07-28/basic/lifecycle): a server that
 *   answers it is verified in the **modern** era, stateless, with the per-request `_meta` envelope
 *   on every later request and no session;
 * - a server that does not (every 2025-era server, `kubemcp serve` and the bridge today) gets the
 *   2025-11-25 handshake instead (https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle):
 *   `initialize` (the server answers with the version it supports, the client accepts any version
 *   the SDK supports: the spec's version negotiation), `notifications/initialized`, and the session
 *   is ended at the end (HTTP DELETE): the **legacy** era.
 * Then `tools/list` (all pages), and `prompts/list` and `resources/list` when the server declares
 * them. `status.serverInfo` records the negotiated protocol version and the era.
 *
 * On HTTP the SDK falls back to `initialize` only on definitive legacy signals: a probe that times
 * out, or is answered 401/403 or 5xx, rejects instead (SDK `VersionNegotiationMode` docs, client
 * dist/client-*.d.mts), so an outage or a refused token is reported as such (Timeout, AuthRequired,
 * HTTPError/ConnectionFailed), never hidden behind a fallback.
 *
 * Why the v2 client replaces the v1 one (`@modelcontextprotocol/sdk` 1.32) here rather than
 * running beside it: the v1 client only knows `initialize`, and v2 covers everything this module
 * did with v1: the same `Client` API for serverInfo (`getServerVersion`), capabilities
 * (`getServerCapabilities`), the negotiated version (`getNegotiatedProtocolVersion`, era
 * `getProtocolEra`), paginated lists, and a `StreamableHTTPClientTransport` taking a custom
 * `fetch`, through which the controller presents its audience-bound token to the gateway
 * (controller/token.ts `AudienceTokens.fetchFor`, controller.ts `verifyTargetFor`) and reaches the
 * apiserver's service proxy (`kubeFetch`), and `terminateSession` for the DELETE. One client in
 * `auto` mode does probe and fallback in one `connect`, so no second client is needed; a server
 * that serves both eras is verified in the modern one (what a current client gets). Nothing uses
 * `ping`, which modern connections lack. The tool hash is computed from the same fields as before,
 * so a 2025-era server keeps its `status.tools.hash` across the upgrade.
 *
 * {@link mcpHandshake} runs one handshake and classifies a failure; {@link Verifier} keeps one
 * result per MCPServer, runs at most one handshake per MCPServer at a time, re-verifies when the
 * ready pods or the URL change and on a jittered periodic interval.
 */
import { createHash } from 'node:crypto';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { Logger } from 'pino';
import { kubeStatus, type FetchLike } from '../lib/kube-http.js';
import type { ControllerMetrics } from './metrics.js';

/** Reasons of the `Verified` condition when it is False. */
export const VERIFY_FAILURE_REASONS = [
  'ConnectionFailed',
  'HTTPError',
  'ProtocolError',
  'Timeout',
  'AuthRequired',
] as const;
export type VerifyFailureReason = (typeof VERIFY_FAILURE_REASONS)[number];

/** At most this many tool names are kept in `status.tools.names`. */
export const MAX_TOOL_NAMES = 20;
/** At most this many pages of each list are read (the SDK's `listMaxPages`); more is a ProtocolError. */
export const MAX_PAGES = 20;

/** The tool fields {@link toolsHash} covers. */
export interface HashedTool {
  name: string;
  description?: string;
  inputSchema?: unknown;
}

/**
 * A 16-hex-digit hash of a tool list: SHA-256 of the JSON of `[name, description, inputSchema]`
 * per tool, sorted by name (so the server's order does not matter). Pure.
 */
export function toolsHash(tools: readonly HashedTool[]): string {
  return createHash('sha256')
    .update(
      JSON.stringify(
        [...tools]
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .map((t) => [t.name, t.description ?? '', t.inputSchema ?? null]),
      ),
    )
    .digest('hex')
    .slice(0, 16);
}

/**
 * The protocol era of a verified connection: `modern` (MCP 2026-07-28 or later, negotiated by
 * `server/discover`) or `legacy` (the 2025-era `initialize` handshake). The SDK v2's `ProtocolEra`.
 */
export type ProtocolEra = 'modern' | 'legacy';

/** What the server declared in its `server/discover` (modern) or `initialize` (legacy) result. */
export interface ServerInfo {
  /** serverInfo.name; `''` when a modern server does not identify itself (a SHOULD in 2026-07-28). */
  name: string;
  /** serverInfo.version; `''` likewise. */
  version: string;
  /** The negotiated protocol version, e.g. `2026-07-28` or `2025-11-25`. */
  protocolVersion: string;
  /**
   * The era the connection negotiated; {@link mcpHandshake} always sets it (optional as in the
   * CRD, where results recorded before issue 18 lack it).
   */
  era?: ProtocolEra;
  /** Capability names the server declared (`tools`, `prompts`, `resources`, `logging`, ...), sorted. */
  capabilities: string[];
}

/** The outcome of one handshake. */
export interface HandshakeResult {
  ok: boolean;
  /** `Verified`, or one of {@link VERIFY_FAILURE_REASONS}. */
  reason: 'Verified' | VerifyFailureReason;
  message: string;
  durationMs: number;
  serverInfo?: ServerInfo;
  /** count, the first {@link MAX_TOOL_NAMES} names in the server's order, and a 16-hex-digit hash of all tools (name, description, input schema). */
  tools?: { count: number; names: string[]; hash: string };
  prompts?: { count: number };
  resources?: { count: number };
}

/** Options of {@link mcpHandshake}. */
export interface HandshakeOptions {
  /** The MCP endpoint URL (path included, e.g. `http://name.ns.svc.cluster.local:3001/mcp`). */
  url: string;
  /** The fetch to use (default: the global fetch); e.g. {@link kubeFetch} for the apiserver's service proxy. */
  fetch?: FetchLike;
  /** Deadline for the whole handshake, in ms. */
  timeoutMs: number;
}

interface LastResponse {
  status: number;
  wwwAuthenticate?: string | null;
  body?: string;
}

class HandshakeTimeout extends Error {}

/**
 * Runs one MCP handshake against `opts.url` (`server/discover` first, `initialize` when the server
 * is of the 2025 era; see the module docs) and classifies the outcome:
 * - `AuthRequired`: HTTP 401/403, to the probe or later (message carries the `WWW-Authenticate`
 *   challenge);
 * - `ConnectionFailed`: no TCP connection (refused, DNS), or the apiserver's service proxy could
 *   not reach a pod (503 with a Kubernetes Status body);
 * - `HTTPError`: any other HTTP status >= 400;
 * - `Timeout`: no complete handshake within `timeoutMs`;
 * - `ProtocolError`: an HTTP answer that is not MCP (a 200 HTML page, invalid JSON-RPC, an
 *   unsupported protocol version, a JSON-RPC error, a list of more than {@link MAX_PAGES} pages).
 * Never throws.
 */
export async function mcpHandshake(opts: HandshakeOptions): Promise<HandshakeResult> {
  const started = Date.now();
  const deadline = new AbortController();
  let last: LastResponse | undefined;
  const baseFetch = opts.fetch ?? (globalThis.fetch as FetchLike);
  const recordingFetch: FetchLike = async (url, init) => {
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline.signal]) : deadline.signal;
    // A POST that fails on the network is not classified by an earlier answer (the probe's).
    if ((init?.method ?? 'GET') === 'POST') last = undefined;
    const res = await baseFetch(url, { ...init, signal });
    // The GET stream is optional (405 allowed) and the DELETE at the end is best effort.
    if ((init?.method ?? 'GET') === 'POST') {
      last = { status: res.status, wwwAuthenticate: res.headers.get('www-authenticate') };
      if (res.status >= 400)
        last.body = (
          await res
            .clone()
            .text()
            .catch(() => '')
        ).slice(0, 2000);
    }
    return res;
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new HandshakeTimeout(`no complete MCP handshake within ${opts.timeoutMs} ms`));
      deadline.abort();
    }, opts.timeoutMs);
  });
  const within = <T>(p: Promise<T>) => Promise.race([p, timeout]);
  const client = new Client(
    { name: 'kubemcp-controller', version: '0.1.0' },
    { capabilities: {}, versionNegotiation: { mode: 'auto' }, listMaxPages: MAX_PAGES },
  );
  const transport = new StreamableHTTPClientTransport(new URL(opts.url), {
    fetch: recordingFetch,
    reconnectionOptions: {
      maxRetries: 0,
      initialReconnectionDelay: 1000,
      maxReconnectionDelay: 1000,
      reconnectionDelayGrowFactor: 1,
    },
  });
  client.onerror = () => undefined; // errors of the optional GET stream; the requests report their own
  const reqOpts = () => ({ timeout: Math.max(1, opts.timeoutMs - (Date.now() - started)), signal: deadline.signal });
  try {
    await within(client.connect(transport, reqOpts()));
    const info = client.getServerVersion();
    const caps = client.getServerCapabilities() ?? {};
    const serverInfo: ServerInfo = {
      name: info?.name ?? '',
      version: info?.version ?? '',
      protocolVersion: client.getNegotiatedProtocolVersion() ?? '',
      era: client.getProtocolEra() ?? 'legacy',
      capabilities: Object.keys(caps).sort(),
    };
    // No cursor: the SDK walks every page (at most MAX_PAGES); 'bypass': always asked of the server.
    const list = { ...reqOpts(), cacheMode: 'bypass' as const };
    const tools = (await within(client.listTools(undefined, list))).tools;
    const result: HandshakeResult = {
      ok: true,
      reason: 'Verified',
      message: '',
      durationMs: 0,
      serverInfo,
      tools: {
        count: tools.length,
        names: tools.slice(0, MAX_TOOL_NAMES).map((t) => t.name),
        hash: toolsHash(tools),
      },
    };
    if (caps.prompts) result.prompts = { count: (await within(client.listPrompts(undefined, list))).prompts.length };
    if (caps.resources)
      result.resources = { count: (await within(client.listResources(undefined, list))).resources.length };
    result.message = `MCP handshake succeeded (${serverInfo.era} era): ${serverInfo.name} ${serverInfo.version}, protocol ${serverInfo.protocolVersion}, ${tools.length} tools`;
    // A legacy session is ended (DELETE); a modern connection has none.
    if (transport.sessionId) await within(transport.terminateSession()).catch(() => undefined);
    return { ...result, durationMs: Date.now() - started };
  } catch (err) {
    return { ...classify(err, last, opts.timeoutMs), durationMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
    timeout.catch(() => undefined);
    deadline.abort();
    await client.close().catch(() => undefined);
  }
}

const oneLine = (s: string, max = 300) => s.replace(/\s+/g, ' ').trim().slice(0, max);

/** Classifies a failed handshake (see {@link mcpHandshake}). Pure; exported for unit tests. */
export function classify(
  err: unknown,
  last: LastResponse | undefined,
  timeoutMs: number,
): Omit<HandshakeResult, 'durationMs'> {
  const fail = (reason: VerifyFailureReason, message: string) => ({
    ok: false,
    reason,
    message: oneLine(message, 1000),
  });
  // A client-side request timeout, matched by shape, not class (the SDK bundles its classes per
  // package): SDK v2's SdkError `REQUEST_TIMEOUT`, or SDK v1's McpError -32001 (a v2 JSON-RPC
  // error from the server is a ProtocolError, so a server's -32001 is not taken for a timeout).
  const e = err as { name?: unknown; code?: unknown } | undefined;
  if (
    err instanceof HandshakeTimeout ||
    e?.code === 'REQUEST_TIMEOUT' ||
    (e?.name === 'McpError' && e.code === -32001)
  ) {
    return fail('Timeout', `no complete MCP handshake within ${timeoutMs} ms`);
  }
  if (last && (last.status === 401 || last.status === 403)) {
    const hint = last.wwwAuthenticate ? `; WWW-Authenticate: ${last.wwwAuthenticate}` : '';
    return fail('AuthRequired', `HTTP ${last.status}: the server requires authorization${hint}`);
  }
  if (last && last.status >= 400) {
    const status = kubeStatus(last.body);
    // The apiserver's service proxy answers 503 with a Status when it cannot reach a pod.
    if (status && last.status === 503)
      return fail('ConnectionFailed', `the apiserver's service proxy could not reach the server: ${status}`);
    return fail('HTTPError', `HTTP ${last.status}: ${status ?? oneLine(last.body ?? '', 200)}`);
  }
  // Network errors: fetch's TypeError('fetch failed') with a system error (ECONNREFUSED,
  // ENOTFOUND, ...) as its cause, possibly wrapped (the SDK's SdkError `ERA_NEGOTIATION_FAILED`
  // when the probe could not be sent, whose code is not a system error's); checked by shape, not
  // class (realms differ).
  for (
    let e: unknown = err, depth = 0;
    e && typeof e === 'object' && depth < 5;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code) && (e as Error).name !== 'SdkError')
      return fail('ConnectionFailed', `cannot connect: ${(e as Error).message ?? code}`);
    if ((e as Error).name === 'TypeError' && /fetch failed/.test((e as Error).message)) {
      const cause = (e as { cause?: { message?: string } }).cause;
      return fail('ConnectionFailed', `cannot connect: ${cause?.message ?? (e as Error).message}`);
    }
  }
  return fail('ProtocolError', `not an MCP server: ${err instanceof Error ? err.message : String(err)}`);
}

/** Where and how to reach one MCPServer's MCP endpoint. */
export interface VerifyTarget {
  url: string;
  fetch?: FetchLike;
}

/** Options of {@link Verifier}. */
export interface VerifierOptions {
  /** Re-verify a verified MCPServer after this many ms (jittered by +-10%). */
  intervalMs: number;
  /** Deadline of one handshake, in ms. */
  timeoutMs: number;
  /** Called when a handshake finished (the controller enqueues the MCPServer). */
  onDone: (key: string) => void;
  metrics?: ControllerMetrics;
  log: Logger;
  /** The handshake to run (default {@link mcpHandshake}). */
  handshake?: (opts: HandshakeOptions) => Promise<HandshakeResult>;
}

/** What a reconcile learns from {@link Verifier.check}. */
export interface VerifyObservation {
  /** The latest finished handshake for this MCPServer (possibly for older inputs, while a new one runs). */
  result?: HandshakeResult;
  /** Whether `result` was obtained with the current inputs (pods, URL). */
  current: boolean;
  /** Whether a handshake is running now. */
  inFlight: boolean;
  /** When to reconcile again so the periodic re-verification happens, in ms. */
  requeueAfterMs?: number;
}

interface VerifyState {
  inputs?: string;
  result?: HandshakeResult;
  inFlight?: Promise<void>;
  /** Epoch ms after which the result is re-verified. */
  dueAt: number;
  /** Failed handshakes in a row (0 after a success): the retry backoff's exponent. */
  failures?: number;
  /** Handshakes that succeeded for the current inputs (a confirmation follows the first one). */
  successes?: number;
}

/** First retry after a failed handshake, in ms; doubles per failure in a row, capped at the interval. */
export const VERIFY_RETRY_BASE_MS = 2000;
/**
 * After the first successful handshake for new inputs (a rollout's new ready pods), one more
 * handshake follows after this many ms (capped at the interval): the first may have reached a pod
 * that was on its way out, because kube-proxy's rules and the Service's endpoints trail the pods
 * the controller sees, and its answer (the old tool list) would otherwise stand until the
 * periodic re-verification.
 */
export const VERIFY_CONFIRM_MS = 10_000;

/**
 * One handshake result per MCPServer key. {@link check} starts a handshake (asynchronously, never
 * blocking the reconcile) when there is no result for the current inputs or the periodic
 * re-verification is due, and never while one runs for the same key.
 */
export class Verifier {
  private readonly states = new Map<string, VerifyState>();

  constructor(private readonly opts: VerifierOptions) {}

  /**
   * @param key `namespace/name` of the MCPServer.
   * @param inputs a fingerprint of what the result depends on (URL, ready pods): a change re-verifies.
   */
  check(key: string, inputs: string, target: () => VerifyTarget): VerifyObservation {
    let st = this.states.get(key);
    if (!st) this.states.set(key, (st = { dueAt: 0 }));
    const now = Date.now();
    if (!st.inFlight && (st.inputs !== inputs || now >= st.dueAt)) this.start(key, st, inputs, target());
    return {
      result: st.result,
      current: !!st.result && st.inputs === inputs,
      inFlight: !!st.inFlight,
      requeueAfterMs: st.inFlight ? undefined : Math.max(1000, st.dueAt - now),
    };
  }

  /** Drops the state of an MCPServer (deleted, or no longer verifiable). */
  forget(key: string): void {
    this.states.delete(key);
  }

  private start(key: string, st: VerifyState, inputs: string, target: VerifyTarget): void {
    const end = this.opts.metrics?.handshakeDuration.startTimer();
    const run = this.opts.handshake ?? mcpHandshake;
    st.inFlight = run({ url: target.url, fetch: target.fetch, timeoutMs: this.opts.timeoutMs })
      .catch((err: unknown): HandshakeResult => ({
        ok: false,
        reason: 'ProtocolError',
        message: String(err),
        durationMs: 0,
      }))
      .then((result) => {
        end?.();
        this.opts.metrics?.handshakes.inc({ result: result.reason });
        this.opts.log.debug(
          { mcpserver: key, url: target.url, reason: result.reason, ms: result.durationMs },
          'MCP handshake',
        );
        st.successes = st.inputs === inputs && result.ok ? (st.successes ?? 0) + 1 : result.ok ? 1 : 0;
        st.result = result;
        st.inputs = inputs;
        // A success is re-verified on the interval (the first one for new inputs is confirmed
        // after VERIFY_CONFIRM_MS); a failure (a Service kube-proxy has not programmed yet, a
        // server still starting) is retried sooner: 2 s, 4 s, 8 s, ... up to the interval, so
        // status turns True soon after the cause goes away.
        st.failures = result.ok ? 0 : (st.failures ?? 0) + 1;
        const wait = result.ok
          ? st.successes === 1
            ? Math.min(this.opts.intervalMs, VERIFY_CONFIRM_MS)
            : this.opts.intervalMs
          : Math.min(this.opts.intervalMs, VERIFY_RETRY_BASE_MS * 2 ** Math.min(st.failures - 1, 20));
        st.dueAt = Date.now() + wait * (0.9 + Math.random() * 0.2);
        st.inFlight = undefined;
        if (this.states.get(key) === st) this.opts.onDone(key);
      });
  }
}
