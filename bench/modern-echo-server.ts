/**
 * An MCP server on the SDK v2 that answers both eras on Streamable HTTP (createMcpHandler with
 * `legacy: 'stateless'`, as `kubemcp serve` does for 2026-07-28 requests), with one tool, `echo`,
 * answering `{message}` with `Echo: <message>` as npm's server-everything does, so the benches'
 * `echo` check (bench/shared.ts) applies to both. A bench's upstream for the 2026-07-28 rows:
 * what the gateway passes through untranslated (docs/gateway.md, "MCP 2026-07-28 clients").
 *
 *   PORT=<port> npx tsx bench/modern-echo-server.ts    (listens on 127.0.0.1:<port>/mcp)
 *
 * Prints `listening on http://127.0.0.1:<port>/mcp` on stderr; stops on SIGTERM.
 */
import { createServer } from 'node:http';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { z } from 'zod';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535)
  throw new Error(`PORT must be a TCP port, got "${process.env.PORT}"`);

const handler = createMcpHandler(
  () => {
    const s = new McpServer({ name: 'modern-echo', version: '1' });
    s.registerTool(
      'echo',
      { description: 'Echoes its message', inputSchema: z.object({ message: z.string() }) },
      ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }),
    );
    return s;
  },
  { legacy: 'stateless' },
);
const node = toNodeHandler(handler);
const server = createServer((req, res) => {
  if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') {
    res.statusCode = 404;
    return res.end();
  }
  void node(req, res);
});
server.listen(port, '127.0.0.1', () => process.stderr.write(`listening on http://127.0.0.1:${port}/mcp\n`));
process.once('SIGTERM', () => {
  void handler.close().finally(() => server.close(() => process.exit(0)));
  server.closeAllConnections();
});
