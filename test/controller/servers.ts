/**
 * Real HTTP servers on 127.0.0.1 for the handshake tests: `kubemcp serve` child processes and
 * plain node:http servers, and SDK v2 servers of either era (2026-07-28 only, or both). Processes are stopped by pid; startup waits are bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { AddressInfo } from 'node:net';
import { ROOT } from '../mcp-server/helpers.js';

/** A `kubemcp serve` child process on 127.0.0.1 with a free port; resolves its /mcp URL. */
export async function startServe(args: string[] = []): Promise<{ url: string; child: ChildProcess; stop: () => void }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'cli.ts', 'serve', '--transport', 'streamable-http', '--port', '0', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', MCP_AUDIT_LOG: 'off' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    // Generous: on a loaded 2-core machine tsx's first compile of the CLI can take a minute.
    const timer = setTimeout(() => {
      if (child.exitCode === null) process.kill(child.pid!, 'SIGTERM'); // never leave it running
      reject(new Error(`kubemcp serve did not start within 150 s: ${err}`));
    }, 150_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!.endsWith('/mcp') ? m[1]! : `${m[1]!.replace(/\/$/, '')}/mcp`);
      }
    });
    child.once('exit', (code) => reject(new Error(`kubemcp serve exited (${code}): ${err}`)));
  });
  return {
    url,
    child,
    stop: () => {
      if (child.exitCode === null) process.kill(child.pid!, 'SIGTERM');
    },
  };
}

/** A node:http server on 127.0.0.1:0 answering every request with `handler`. */
export async function startHttp(
  handler: (res: ServerResponse, count: number) => void,
): Promise<{ url: string; server: Server; requests: () => number }> {
  let count = 0;
  const server = createServer((req, res) => {
    count++;
    req.resume();
    handler(res, count);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server, requests: () => count };
}

export const closeServer = (s: Server) =>
  new Promise((r) => {
    s.closeAllConnections();
    s.close(r);
  });

/** The modern fixture's tools: two, one with an input schema. */
function fixtureServer(): McpServer {
  const s = new McpServer({ name: 'modern-fixture', version: '2.4.0-test' });
  s.registerTool(
    'echo',
    { description: 'Echoes its text', inputSchema: z.object({ text: z.string() }) },
    ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  s.registerTool('now', { description: 'The time' }, () => ({
    content: [{ type: 'text', text: new Date().toISOString() }],
  }));
  return s;
}

/** An SDK v2 handler on node:http at 127.0.0.1:0; `legacy: 'reject'` makes it modern-only. */
export async function startModern(
  legacy: 'reject' | 'stateless',
): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const handler = createMcpHandler(() => fixtureServer(), { legacy });
  const node = toNodeHandler(handler);
  const server = createServer((req: IncomingMessage, res) => void node(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    server,
    close: async () => {
      await handler.close();
      await closeServer(server);
    },
  };
}
