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
 */
import process from 'node:process';
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { buildServer, type ServerDeps } from './server.js';

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

/** A stdio server transport that survives oversized and malformed lines (see the module comment). */
export class SafeStdioServerTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes of the current line being skipped (over the limit); -1 when not skipping. */
  private skipped = -1;
  private skippedPrefix = '';
  private started = false;

  constructor(
    private readonly log: Logger,
    private readonly maxBytes = MAX_STDIO_MESSAGE_BYTES,
    private readonly stdin: Readable = process.stdin,
    private readonly stdout: Writable = process.stdout,
  ) {}

  private readonly ondata = (chunk: Buffer) => {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const part = chunk.subarray(start, end);
      if (this.skipped >= 0) this.skipped += part.length;
      else if (this.size + part.length > this.maxBytes) {
        // Over the limit: keep the line's start (for its id), drop the rest up to the newline.
        this.skippedPrefix = Buffer.concat([...this.chunks, part]).subarray(0, 4096).toString('utf8');
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
      void this.send({ jsonrpc: '2.0', id: null as never, error: { code: -32700, message: `Parse error: ${(err as Error).message}` } } as JSONRPCMessage);
      return;
    }
    const parsed = JSONRPCMessageSchema.safeParse(json);
    if (!parsed.success) {
      const id = (json as { id?: unknown })?.id;
      this.log.warn('stdio line is not a JSON-RPC message');
      void this.send({ jsonrpc: '2.0', id: (typeof id === 'string' || typeof id === 'number' ? id : null) as never, error: { code: -32600, message: 'Invalid Request: not a JSON-RPC 2.0 message' } } as JSONRPCMessage);
      return;
    }
    try {
      this.onmessage?.(parsed.data);
    } catch (err) {
      this.onerror?.(err as Error);
    }
  }

  private readonly onstdinerror = (err: Error) => this.onerror?.(err);

  async start(): Promise<void> {
    if (this.started) throw new Error('SafeStdioServerTransport already started');
    this.started = true;
    this.stdin.on('data', this.ondata);
    this.stdin.on('error', this.onstdinerror);
  }

  async close(): Promise<void> {
    this.stdin.off('data', this.ondata);
    this.stdin.off('error', this.onstdinerror);
    if (this.stdin.listenerCount('data') === 0) this.stdin.pause();
    this.chunks = [];
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => {
      if (this.stdout.write(JSON.stringify(message) + '\n')) resolve();
      else this.stdout.once('drain', resolve);
    });
  }
}

/** Serves one MCP session over stdio until stdin closes; then releases the server's watches. */
/** Options of serveStdio. */
export interface StdioOptions {
  /**
   * Creates what the first call would otherwise create (command.ts: the Kubernetes gateway). Run
   * once, right after the first `tools/list` answer has been written (or `warmUpAfterMs` after the
   * start if none comes), so a client's start (spawn -> initialize -> tools/list) does not wait
   * for it. A throw is a start failure: it is logged, the session ends and the exit code is 1.
   */
  warmUp?: () => void;
  /** Milliseconds after connect() when warmUp runs at the latest (default 5 000: a loaded machine can take seconds to send tools/list). */
  warmUpAfterMs?: number;
}

/** Serves one MCP session over stdio until stdin closes; then releases the server's watches. */
export async function serveStdio(deps: ServerDeps, opts: StdioOptions = {}): Promise<void> {
  const built = buildServer(deps);
  const transport = new SafeStdioServerTransport(deps.log);
  let stop: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    stop = resolve;
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
    process.stdin.once('close', () => resolve());
  });
  await built.server.connect(transport);
  let fallback: NodeJS.Timeout | undefined;
  if (opts.warmUp) {
    let warmed = false;
    const warm = () => {
      if (warmed) return;
      warmed = true;
      clearTimeout(fallback);
      try {
        opts.warmUp!();
      } catch (err) {
        deps.log.error({ err: (err as Error).message }, 'kubemcp serve cannot start');
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = 1;
        stop();
      }
    };
    // The SDK answers a request in microtasks; a macrotask scheduled when tools/list arrives runs
    // after the answer is written.
    const onmessage = transport.onmessage;
    transport.onmessage = (message) => {
      onmessage?.(message);
      if (!warmed && 'method' in message && message.method === 'tools/list') setTimeout(warm, 0);
    };
    fallback = setTimeout(warm, opts.warmUpAfterMs ?? 5000);
    fallback.unref();
  }
  deps.log.info({ tools: built.tools.length }, 'kubemcp serve: stdio');
  await closed;
  clearTimeout(fallback);
  await built.close().catch(() => undefined);
}
