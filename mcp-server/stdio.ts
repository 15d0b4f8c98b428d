/**
 * stdio transport of `kubemcp serve` (seed 001's default run mode): JSON-RPC on stdin/stdout,
 * logs only on stderr. Resolves when the client closes stdin.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { buildServer, type ServerDeps } from './server.js';

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
  const transport = new StdioServerTransport();
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
