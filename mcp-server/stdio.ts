/**
 * stdio transport of `kubemcp serve` (seed 001's default run mode): JSON-RPC on stdin/stdout,
 * logs only on stderr. Resolves when the client closes stdin.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { buildServer, type ServerDeps } from './server.js';

/** Serves one MCP session over stdio until stdin closes; then releases the server's watches. */
export async function serveStdio(deps: ServerDeps): Promise<void> {
  const built = buildServer(deps);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
    process.stdin.once('close', () => resolve());
  });
  await built.server.connect(transport);
  deps.log.info({ tools: built.tools.length }, 'kubemcp serve: stdio');
  await closed;
  await built.close().catch(() => undefined);
}
