/**
 * stdio transport of `kubemcp serve` (seed 001's default run mode): JSON-RPC on stdin/stdout,
 * one message per line, logs only on stderr. Resolves when the client closes stdin.
 *
 * The transport is the MCP SDK's line framing (shared/stdio.js: a message per `\n`-terminated
 * line, JSON-RPC 2.0 objects) with one difference (issue 9, item 10): the SDK's
 * StdioServerTransport closes itself when a line exceeds its 10 MiB buffer, which ended or
 * wedged the server. Here a line over `maxMessageBytes` is skipped up to its newline, answered
 * with a JSON-RPC error (-32600, with the request's id when it can be read from the line's
 * start) and logged; a line that is not JSON is answered with -32700 (JSON-RPC 2.0 section 5.1);
 * the server keeps serving.
 *
 * The start (issue 9, "Speed and memory"): stdin is read from the first moment, before the MCP
 * SDK, zod and the tools are loaded (most of the start's CPU). With start answers (the bundle's
 * snapshot, start-answers.ts) `initialize` and `tools/list` are answered at once; every other
 * line waits in order in a queue. The real server is loaded right after the `tools/list` answer
 * (or when a queued request needs it, or `loadAfterMs` after the start), receives the client's
 * `initialize` again (its answer is not written: the client has it), then the queue.
 */
import process from 'node:process';
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { BuiltServer, ServerDeps } from './server.js';
import type { StartAnswers } from './start-answers.js';
import { looksModern } from '../lib/mcp-era.js';

/** What validates a JSON-RPC message: the SDK's JSONRPCMessageSchema (loaded with the SDK). */
export interface MessageSchema {
  safeParse(value: unknown): { success: true; data: JSONRPCMessage } | { success: false };
}

/** Largest stdio message accepted (bytes), as the MCP SDK's default read buffer. */
export const MAX_STDIO_MESSAGE_BYTES = 10 * 1024 * 1024;

/** The id of a JSON-RPC request, read from the start of a (possibly cut) message line. */
function idFromPrefix(prefix: string): string | number | null {
  const m = /"id"\s*:\s*(-?\d{1,15}|"(?:[^"\\]|\\.){0,200}")/.exec(prefix);
  if (!m) return null;
  try {
    return JSON.parse(m[1]!) as string | number;
  } catch {
    return null;
  }
}

/**
 * A stdio server transport that survives oversized and malformed lines (see the module comment).
 * It can read stdin before the server is connected (`listen`): lines are then offered to `early`
 * and otherwise queued, in order, until start() (the SDK's connect) hands them to the server.
 */
export class SafeStdioServerTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Validates each message before it reaches the server; required by start(). */
  schema?: MessageSchema;
  /** Offered every JSON line read before start(); returns true when it answered the line itself. */
  early?: (json: unknown) => boolean;
  /** Called when a request (a line with an id) is queued before start(): the server is needed. */
  onqueue?: () => void;
  /** Told of every valid message just before the server gets it (the warm-up follows tools/list). */
  observe?: (message: JSONRPCMessage) => void;
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes of the current line being skipped (over the limit); -1 when not skipping. */
  private skipped = -1;
  private skippedPrefix = '';
  private listening = false;
  private started = false;
  /** JSON lines read before start(), in order. */
  private queue: unknown[] = [];
  /** Ids of replayed requests whose responses are not written (the client has its answer). */
  private readonly swallowed = new Set<string | number>();

  constructor(
    private readonly log: Logger,
    private readonly maxBytes = MAX_STDIO_MESSAGE_BYTES,
    private readonly stdin: Readable = process.stdin,
    private readonly stdout: Writable = process.stdout,
    schema?: MessageSchema,
  ) {
    this.schema = schema;
  }

  private readonly ondata = (chunk: Buffer) => {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const part = chunk.subarray(start, end);
      if (this.skipped >= 0) this.skipped += part.length;
      else if (this.size + part.length > this.maxBytes) {
        // Over the limit: keep the line's start (for its id), drop the rest up to the newline.
        this.skippedPrefix = Buffer.concat([...this.chunks, part])
          .subarray(0, 4096)
          .toString('utf8');
        this.skipped = this.size + part.length;
        this.chunks = [];
        this.size = 0;
      } else {
        this.chunks.push(part);
        this.size += part.length;
      }
      if (nl < 0) break;
      start = nl + 1;
      if (this.skipped >= 0) this.tooLarge();
      else this.line();
    }
  };

  private tooLarge(): void {
    const id = idFromPrefix(this.skippedPrefix);
    const message = `message of ${this.skipped} bytes exceeds the ${this.maxBytes}-byte limit of the stdio transport; it was skipped`;
    this.log.error({ bytes: this.skipped, limit: this.maxBytes, id }, 'stdio message too large; skipped');
    this.skipped = -1;
    this.skippedPrefix = '';
    void this.send({ jsonrpc: '2.0', id: id as never, error: { code: -32600, message } } as JSONRPCMessage);
  }

  private line(): void {
    const text = Buffer.concat(this.chunks).toString('utf8').replace(/\r$/, '');
    this.chunks = [];
    this.size = 0;
    if (!text.trim()) return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'stdio line is not JSON');
      void this.send({
        jsonrpc: '2.0',
        id: null as never,
        error: { code: -32700, message: `Parse error: ${(err as Error).message}` },
      } as JSONRPCMessage);
      return;
    }
    if (this.started) {
      this.dispatch(json);
      return;
    }
    if (this.early?.(json)) return;
    this.queue.push(json);
    if (json && typeof json === 'object' && 'id' in json) this.onqueue?.();
  }

  /** Validates one JSON line and hands it to the server (or answers -32600). */
  private dispatch(json: unknown): void {
    const parsed = this.schema!.safeParse(json);
    if (!parsed.success) {
      const id = (json as { id?: unknown })?.id;
      this.log.warn('stdio line is not a JSON-RPC message');
      void this.send({
        jsonrpc: '2.0',
        id: (typeof id === 'string' || typeof id === 'number' ? id : null) as never,
        error: { code: -32600, message: 'Invalid Request: not a JSON-RPC 2.0 message' },
      } as JSONRPCMessage);
      return;
    }
    this.observe?.(parsed.data);
    try {
      this.onmessage?.(parsed.data);
    } catch (err) {
      this.onerror?.(err as Error);
    }
  }

  private readonly onstdinerror = (err: Error) => this.onerror?.(err);

  /** Starts reading stdin before start(): lines go to `early`, else to the queue. Idempotent. */
  listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.stdin.on('data', this.ondata);
    this.stdin.on('error', this.onstdinerror);
  }

  /**
   * Queues `request` (a JSON-RPC request read before start()) under the id `id`; the server's
   * response to it will not be written. Used for the `initialize` answered early: the server
   * must see it (client capabilities and version), the client must not get a second answer.
   */
  replay(request: Record<string, unknown>, id: string): void {
    this.swallowed.add(id);
    this.queue.push({ ...request, id });
  }

  /** Connects the server (MCP SDK Protocol.connect): hands it the queued lines, then each new one. */
  async start(): Promise<void> {
    if (this.started) throw new Error('SafeStdioServerTransport already started');
    if (!this.schema) throw new Error('SafeStdioServerTransport.start: no message schema');
    this.started = true;
    this.listen();
    const queued = this.queue;
    this.queue = [];
    for (const json of queued) this.dispatch(json);
  }

  async close(): Promise<void> {
    this.stdin.off('data', this.ondata);
    this.stdin.off('error', this.onstdinerror);
    if (this.stdin.listenerCount('data') === 0) this.stdin.pause();
    this.chunks = [];
    this.queue = [];
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if ('id' in message && this.swallowed.has(message.id as string) && ('result' in message || 'error' in message)) {
      this.swallowed.delete(message.id as string);
      if ('error' in message)
        this.log.warn({ error: message.error }, 'the server refused the replayed initialize request');
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      if (this.stdout.write(JSON.stringify(message) + '\n')) resolve();
      else this.stdout.once('drain', resolve);
    });
  }
}

/** Options of serveStdio. */
export interface StdioOptions {
  /** Logs (stderr), needed from the first line read. */
  log: Logger;
  /** Loads what the server needs; called once, when the real server is needed (see the module comment). */
  deps: () => Promise<ServerDeps>;
  /** Answers `initialize` and `tools/list` before the real server is loaded (the bundle's snapshot). */
  startAnswers?: StartAnswers;
  /** Milliseconds after the start when the real server is loaded at the latest (default 1 000). */
  loadAfterMs?: number;
  /**
   * Creates what the first call would otherwise create (command.ts: the Kubernetes gateway, and
   * its discovery in the background). Run once, right after the first `tools/list` answer has
   * been written and the server is loaded (or `warmUpAfterMs` after connect if none comes), so a
   * client's start (spawn -> initialize -> tools/list) does not wait for it. A throw is a start
   * failure: it is logged, the session ends and the exit code is 1.
   */
  warmUp?: (deps: ServerDeps) => void;
  /** Milliseconds after connect() when warmUp runs at the latest (default 5 000: a loaded machine can take seconds to send tools/list). */
  warmUpAfterMs?: number;
}

/** A private JSON-RPC id for the replayed `initialize` (no client uses it: it names this process). */
const replayId = () => `kubemcp-start-initialize-${process.pid}-${Date.now()}`;

/** Serves one MCP session over stdio until stdin closes; then releases the server's watches. */
export async function serveStdio(opts: StdioOptions): Promise<void> {
  const { log } = opts;
  const transport = new SafeStdioServerTransport(log);
  let stop: () => void = () => undefined;
  let ended = false;
  const closed = new Promise<void>((resolve) => {
    stop = () => {
      ended = true;
      resolve();
    };
    process.stdin.once('end', stop);
    process.stdin.once('close', stop);
  });
  let need: () => void = () => undefined;
  const needed = new Promise<void>((resolve) => (need = resolve));
  // Whether a tools/list request has been read (answered early or queued): the warm-up follows it.
  let listSeen = false;
  // The era of the connection, decided by its first request (MCP 2026-07-28: no initialize, the
  // `_meta` envelope on every request; lib/mcp-era.ts looksModern): a modern opening is served
  // by the SDK v2 (./modern.ts), anything else by the 2025 server, start answers included.
  let era: 'legacy' | 'modern' | undefined;
  let decide: () => void = () => undefined;
  const decided = new Promise<void>((resolve) => (decide = resolve));
  transport.early = (json) => {
    if (era === undefined && json && typeof json === 'object' && 'id' in json && 'method' in json) {
      era = looksModern(json) ? 'modern' : 'legacy';
      decide();
    }
    if (era === 'modern') return false; // queued for the modern server, which is needed now
    const answers = opts.startAnswers;
    const init = answers?.initialize(json);
    if (init) {
      transport.replay(json as Record<string, unknown>, replayId());
      void transport.send(init);
      log.debug('initialize answered from the start snapshot');
      return true;
    }
    if ((json as { method?: unknown })?.method === 'tools/list') listSeen = true;
    const list = answers?.toolsList(json);
    if (list) {
      void transport.send(list);
      log.debug('tools/list answered from the start snapshot');
      // A macrotask: runs after the answer has been handed to stdout.
      setTimeout(need, 0);
      return true;
    }
    return false;
  };
  transport.onqueue = () => need();
  let loadTimer: NodeJS.Timeout | undefined;
  if (opts.startAnswers) loadTimer = setTimeout(need, opts.loadAfterMs ?? 1000);
  else need();
  transport.listen();
  await Promise.race([needed, closed]);
  clearTimeout(loadTimer);
  if (ended) return;

  // zod without its JIT, set before any schema is built (the SDK's, the tools'): compiling a
  // parser per object schema costs more CPU at start than it saves on the few messages a session parses.
  // Loaded (the timer) before any request: the first request says which server to connect.
  await Promise.race([decided, closed]);
  if (ended) return;
  if (era === 'modern') return serveModern(opts, transport, closed, stop);

  let deps: ServerDeps;
  let built: BuiltServer;
  try {
    (await import('zod')).config({ jitless: true });
    const [{ buildServer }, { JSONRPCMessageSchema }, loaded] = await Promise.all([
      import('./server.js'),
      import('@modelcontextprotocol/sdk/types.js'),
      opts.deps(),
    ]);
    deps = loaded;
    built = buildServer(deps);
    transport.schema = JSONRPCMessageSchema as MessageSchema;
    transport.onclose = () => stop();
    await built.server.connect(transport);
  } catch (err) {
    // Stop reading stdin, so the process ends with the error (command.ts reports it).
    await transport.close();
    throw err;
  }
  const cancelWarmUp = scheduleWarmUp(opts, transport, deps, stop, listSeen);
  log.info({ tools: built.tools.length, early: !!opts.startAnswers }, 'kubemcp serve: stdio');
  await closed;
  cancelWarmUp();
  await built.close().catch(() => undefined);
}

/**
 * The rest of a connection whose first request was a 2026-07-28 one: the SDK v2's stdio entry
 * (./modern.ts serveModernStdio) over the same transport, the queued lines first; the warm-up
 * follows the first tools/list (or `warmUpAfterMs`), as for a 2025 session.
 */
async function serveModern(
  opts: StdioOptions,
  transport: SafeStdioServerTransport,
  closed: Promise<void>,
  stop: () => void,
): Promise<void> {
  const { log } = opts;
  let handle: { close: () => Promise<void> };
  let deps: ServerDeps;
  let cancelWarmUp: () => void = () => undefined;
  try {
    (await import('zod')).config({ jitless: true });
    const [{ serveModernStdio }, { JSONRPCMessageSchema }, loaded] = await Promise.all([
      import('./modern.js'),
      import('@modelcontextprotocol/sdk/types.js'),
      opts.deps(),
    ]);
    deps = loaded;
    transport.schema = JSONRPCMessageSchema as MessageSchema;
    cancelWarmUp = scheduleWarmUp(opts, transport, deps, stop, false);
    handle = serveModernStdio(deps, transport as never);
    const prev = transport.onclose;
    transport.onclose = () => {
      prev?.();
      stop();
    };
  } catch (err) {
    await transport.close();
    throw err;
  }
  log.info({ era: 'modern' }, 'kubemcp serve: stdio (MCP 2026-07-28)');
  await closed;
  cancelWarmUp();
  await handle.close().catch(() => undefined);
}

/**
 * Runs `opts.warmUp` once (see {@link StdioOptions.warmUp}): right after the first tools/list has
 * been answered (at once when `listSeen`: one was answered before the server was connected), or
 * `warmUpAfterMs` from now at the latest. The SDK answers a request in microtasks, so a macrotask
 * scheduled when tools/list arrives runs after the answer is written. A throw is a start failure:
 * logged, exit code 1, the session ends (`stop`).
 * @returns what cancels the fallback timer (the session ended first).
 */
function scheduleWarmUp(
  opts: StdioOptions,
  transport: SafeStdioServerTransport,
  deps: ServerDeps,
  stop: () => void,
  listSeen: boolean,
): () => void {
  const warmUp = opts.warmUp;
  if (!warmUp) return () => undefined;
  let warmed = false;
  let fallback: NodeJS.Timeout | undefined;
  const warm = () => {
    if (warmed) return;
    warmed = true;
    clearTimeout(fallback);
    try {
      warmUp(deps);
    } catch (err) {
      opts.log.error({ err: (err as Error).message }, 'kubemcp serve cannot start');
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = 1;
      stop();
    }
  };
  if (listSeen) setTimeout(warm, 0);
  else {
    transport.observe = (message) => {
      if (!warmed && 'method' in message && message.method === 'tools/list') setTimeout(warm, 0);
    };
    fallback = setTimeout(warm, opts.warmUpAfterMs ?? 5000);
    fallback.unref();
  }
  return () => clearTimeout(fallback);
}
