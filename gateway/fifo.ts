/**
 * The bridge's end of the two FIFOs of a bridged pod (gateway/wiring.ts): newline-
 * delimited JSON-RPC, as the MCP stdio transport specifies (spec 2025-11-25, Transports > stdio:
 * "Messages are delimited by newlines, and MUST NOT contain embedded newlines").
 *
 * Opening a FIFO blocks until the other side opens it too (fifo(7)), so {@link FifoConnection.open}
 * resolves only once the stdio process has started and its launcher has opened both FIFOs. Reads
 * and writes go through libuv pipe handles (net.Socket on the fd, non-blocking), not the thread
 * pool. End of file on the process's stdout means the process is gone (its container restarts
 * it): the connection closes and the bridge opens the FIFOs again for the next process.
 */
import { constants, lstatSync, open as openCb, close as closeCb, openSync, closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { promisify } from 'node:util';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { BridgePaths } from './wiring.js';

const openAsync = promisify(openCb);

/** Bytes of an oversize line kept from its start and from its end, to find its JSON-RPC id. */
export const OVERSIZE_WINDOW = 8192;

/** What {@link LineFramer} reports for a line longer than its limit. */
export interface OversizeLine {
  /** Length of the whole line in bytes (without the newline). */
  bytes: number;
  /** The first {@link OVERSIZE_WINDOW} bytes. */
  head: string;
  /** The last {@link OVERSIZE_WINDOW} bytes. */
  tail: string;
}

/**
 * Splits a byte stream into lines (`\n`, a trailing `\r` dropped) of at most `maxBytes`. A longer
 * line is never buffered whole: only its first and last {@link OVERSIZE_WINDOW} bytes are kept,
 * and it is reported through `onOversize` when its newline arrives.
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: Buffer) => void,
    private readonly onOversize: (line: OversizeLine) => void,
  ) {}

  /** Feeds a chunk; calls the callbacks for every line it completes. */
  push(chunk: Buffer): void {
    let start = 0;
    while (start <= chunk.length) {
      const nl = chunk.indexOf(10, start);
      const piece = chunk.subarray(start, nl === -1 ? chunk.length : nl);
      if (this.discarding || this.size + piece.length > this.maxBytes) this.discard(piece);
      else if (piece.length) {
        this.parts.push(piece);
        this.size += piece.length;
      }
      if (nl === -1) {
        // Copy what is kept: the chunk's memory may be reused by the stream.
        if (!this.discarding && this.parts.length && this.parts[this.parts.length - 1] === piece)
          this.parts[this.parts.length - 1] = Buffer.from(piece);
        return;
      }
      this.finishLine();
      start = nl + 1;
    }
  }

  private discard(piece: Buffer): void {
    if (!this.discarding) {
      const all = Buffer.concat([...this.parts, piece]);
      this.head = Buffer.from(all.subarray(0, OVERSIZE_WINDOW));
      this.tail = Buffer.from(all.subarray(Math.max(0, all.length - OVERSIZE_WINDOW)));
      this.parts = [];
      this.discarding = true;
    } else {
      const t = Buffer.concat([this.tail, piece]);
      this.tail = Buffer.from(t.subarray(Math.max(0, t.length - OVERSIZE_WINDOW)));
    }
    this.size += piece.length;
  }

  private finishLine(): void {
    if (this.discarding) {
      this.onOversize({ bytes: this.size, head: this.head.toString('utf8'), tail: this.tail.toString('utf8') });
    } else if (this.size) {
      let line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
      if (line[line.length - 1] === 13) line = line.subarray(0, line.length - 1);
      if (line.length) this.onLine(line);
    }
    this.parts = [];
    this.size = 0;
    this.discarding = false;
    this.head = this.tail = Buffer.alloc(0);
  }
}

/** Why a line from the process was not a JSON-RPC message. */
export type MalformedReason = 'not JSON' | 'not a JSON-RPC 2.0 message';

/**
 * Parses one line into a JSON-RPC message (checked with the MCP SDK's JSONRPCMessageSchema; the
 * original object is returned, so fields the schema does not know survive).
 */
export function parseLine(line: string): { message: JSONRPCMessage } | { malformed: MalformedReason } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { malformed: 'not JSON' };
  }
  if (!JSONRPCMessageSchema.safeParse(value).success) return { malformed: 'not a JSON-RPC 2.0 message' };
  return { message: value as JSONRPCMessage };
}

/** Callbacks of a {@link FifoConnection}. */
export interface FifoHandlers {
  message(message: JSONRPCMessage): void;
  malformed(excerpt: string, reason: MalformedReason): void;
  oversize(line: OversizeLine): void;
}

/** Throws unless `path` is a FIFO (a regular file there would swallow messages silently). */
export function assertFifo(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    throw new Error(`${path} does not exist: the init container (kubemcp bridge-init) creates the FIFOs`);
  }
  if (!st.isFIFO())
    throw new Error(`${path} is not a FIFO: the init container (kubemcp bridge-init) creates the FIFOs`);
}

/** One connected stdio process: write messages to its stdin, receive lines from its stdout. */
export class FifoConnection {
  /** Resolves when the process's stdout reached end of file or either FIFO failed. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private open = true;

  private constructor(
    private readonly input: Socket,
    private readonly output: Socket,
    maxLineBytes: number,
    handlers: FifoHandlers,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    const framer = new LineFramer(
      maxLineBytes,
      (line) => {
        const text = line.toString('utf8');
        const r = parseLine(text);
        if ('message' in r) handlers.message(r.message);
        else handlers.malformed(text.slice(0, 200), r.malformed);
      },
      (o) => handlers.oversize(o),
    );
    output.on('data', (chunk: Buffer) => framer.push(chunk));
    output.on('end', () => this.close());
    output.on('error', () => this.close());
    output.on('close', () => this.close());
    input.on('error', () => this.close());
    input.on('close', () => this.close());
  }

  /**
   * Opens both FIFOs, waiting until the process opens its ends. Aborting `signal` stops the wait
   * (a blocked open is woken by briefly opening the FIFO read-write).
   * @throws Error when a path is not a FIFO, or AbortError when aborted.
   */
  static async open(
    paths: BridgePaths,
    maxLineBytes: number,
    handlers: FifoHandlers,
    signal?: AbortSignal,
  ): Promise<FifoConnection> {
    assertFifo(paths.stdin);
    assertFifo(paths.stdout);
    if (signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    // A blocked open(2) of a FIFO returns once the other side opens it. To stop waiting, hold the
    // FIFOs open read-write (both sides at once) until the pending opens have returned: a brief
    // open/close could come before the thread pool even started the blocking open.
    const holders: number[] = [];
    const wake = () => {
      for (const p of [paths.stdin, paths.stdout]) {
        try {
          holders.push(openSync(p, constants.O_RDWR | constants.O_NONBLOCK));
        } catch {
          /* gone already */
        }
      }
    };
    signal?.addEventListener('abort', wake, { once: true });
    const results = await Promise.allSettled([
      openAsync(paths.stdin, constants.O_WRONLY),
      openAsync(paths.stdout, constants.O_RDONLY),
    ]);
    signal?.removeEventListener('abort', wake);
    for (const fd of holders) closeSync(fd);
    const fds = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed || signal?.aborted) {
      for (const fd of fds) closeCb(fd, () => undefined);
      if (failed) throw failed.reason;
      throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    }
    const input = new Socket({ fd: fds[0]!, readable: false, writable: true });
    const output = new Socket({ fd: fds[1]!, readable: true, writable: false });
    return new FifoConnection(input, output, maxLineBytes, handlers);
  }

  /** Whether the process is still connected. */
  get isOpen(): boolean {
    return this.open;
  }

  /** Writes one message as a line to the process's stdin. @returns false when the process is gone. */
  write(message: JSONRPCMessage): boolean {
    if (!this.open) return false;
    this.input.write(JSON.stringify(message) + '\n');
    return true;
  }

  /** Closes both ends (the process sees end of file on stdin). */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.input.destroy();
    this.output.destroy();
    this.resolveClosed();
  }
}
