/**
 * Helpers for the `kubemcp serve` tests: an SDK client over a real child process (stdio) or over
 * Streamable HTTP to an in-process server on 127.0.0.1 port 0, both against the local control
 * plane ($KUBECONFIG). Every process started here is stopped by its pid; every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type * as k8s from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import type { Sure } from '../shapes.js';
import type { HubOptions } from '../../mcp-server/resources.js';
import { KubeGateway } from '../../mcp-server/kube.js';
import { Policy, type PolicyOptions } from '../../mcp-server/policy.js';
import { Audit } from '../../mcp-server/audit.js';
import { Metrics } from '../../mcp-server/metrics.js';
import { startHttp, type HttpOptions, type RunningHttp } from '../../mcp-server/http.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

/**
 * What the tests read of the tools' `structuredContent`: the union, over the tools, of the fields
 * they assert on (the tools' output schemas in mcp-server/tools/ are the source of these shapes).
 */
export interface ToolOutput {
  kind: string;
  name: string;
  namespace: string;
  status: string;
  truncated: boolean;
  total: number;
  shown: number;
  matches: number;
  columns: string[];
  rows: string[][];
  continue: string;
  object: k8s.KubernetesObject & {
    metadata: k8s.V1ObjectMeta;
    spec: { replicas: number };
    data: Record<string, string>;
  };
  pods: Array<{ pod: string; container: string; bytes: number; cut: boolean }>;
  conditions: Array<{ type: string; status: string }>;
  owners: Array<{ kind: string; name: string }>;
  events: string[][];
}

/**
 * A tool result as the tests read it: the SDK's CallToolResult (content blocks, `isError`) with a
 * `structuredContent` of {@link ToolOutput}'s fields. A field a tool does not return reads as
 * undefined at run time, and the assertion on it fails.
 */
export type ToolResult = Omit<CallToolResult, 'structuredContent'> & { structuredContent: Sure<ToolOutput> };

/**
 * Calls the tool `name` with `args` through `client` and returns its result as a {@link ToolResult}.
 * @throws what Client.callTool throws (a JSON-RPC error; a tool's own failure is `isError: true`).
 */
export async function callTool(client: Client, name: string, args: Record<string, unknown> = {}): Promise<ToolResult> {
  return (await client.callTool({ name, arguments: args })) as unknown as ToolResult;
}

/** The Streamable HTTP transport a client is connected with. @throws when it uses another transport. */
export function httpTransport(client: Client): StreamableHTTPClientTransport {
  const t = client.transport;
  if (!(t instanceof StreamableHTTPClientTransport))
    throw new Error('the client is not connected over Streamable HTTP');
  return t;
}

/** The text of the first content block of a tool result ('' when there is none). */
export function text(r: unknown): string {
  const first = (r as { content?: Array<{ text?: unknown }> } | undefined)?.content?.[0];
  return typeof first?.text === 'string' ? first.text : '';
}

/** A client connected to `kubemcp serve` in a child process (stdio). */
export interface StdioServer {
  client: Client;
  pid: number;
  stderr: () => string;
  close: () => Promise<void>;
}

/** Spawns `tsx cli.ts serve <args>` and connects an SDK client to it over stdio. */
export async function spawnStdio(args: string[] = [], env: Record<string, string> = {}): Promise<StdioServer> {
  const transport = new StdioClientTransport({
    command: TSX,
    args: ['cli.ts', 'serve', ...args],
    cwd: ROOT,
    env: { ...(process.env as Record<string, string>), LOG_LEVEL: 'warn', ...env },
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const client = new Client({ name: 'kubemcp-test', version: '1.0.0' });
  await client.connect(transport);
  const pid = transport.pid!;
  return {
    client,
    pid,
    stderr: () => err,
    close: async () => {
      await client.close().catch(() => undefined);
      try {
        process.kill(pid, 0);
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    },
  };
}

/** A raw child process speaking JSON-RPC lines, for malformed-input tests. */
export function spawnRaw(args: string[] = []): ChildProcess {
  return spawn(TSX, ['cli.ts', 'serve', ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** An in-process HTTP server on 127.0.0.1:0 with its gateway. */
export interface HttpServer {
  running: RunningHttp;
  kube: KubeGateway;
  url: string;
  connect: (headers?: Record<string, string>) => Promise<Client>;
  close: () => Promise<void>;
}

/** Starts the HTTP transport in-process with the given policy, against $KUBECONFIG. */
export async function startHttpServer(
  policy: PolicyOptions = {},
  http: HttpOptions = {},
  extra: {
    budget?: number;
    auditLog?: string;
    kubeconfig?: string;
    allowContexts?: string[];
    hubOptions?: HubOptions;
    timeoutMs?: number;
    log?: Logger;
    /** Build the KubeGateway acting as callers (pair with http.impersonate). */
    impersonate?: boolean;
  } = {},
): Promise<HttpServer> {
  const kube = new KubeGateway({
    policy: new Policy(policy),
    kubeconfig: extra.kubeconfig ?? process.env.KUBECONFIG,
    allowContexts: extra.allowContexts,
    timeoutMs: extra.timeoutMs ?? 10_000,
    impersonate: extra.impersonate ?? false,
  });
  await kube.resolveDenyKinds();
  const running = await startHttp(
    {
      kube,
      log: extra.log ?? pino({ level: 'silent' }),
      audit: new Audit(extra.auditLog ?? 'off'),
      metrics: new Metrics(false),
      budget: extra.budget,
      hubOptions: extra.hubOptions,
    },
    { port: 0, ...http },
  );
  const url = `http://127.0.0.1:${running.port}/mcp`;
  const clients: Client[] = [];
  return {
    running,
    kube,
    url,
    connect: async (headers = {}) => {
      const c = new Client({ name: 'kubemcp-test', version: '1.0.0' });
      await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
      clients.push(c);
      return c;
    },
    close: async () => {
      for (const c of clients) await c.close().catch(() => undefined);
      await running.close();
      kube.close();
    },
  };
}

/**
 * A raw HTTP request to loopback with node:http (which, unlike fetch, lets a test set the Host
 * header), returning status, headers and body text. Times out after 10 s.
 */
export async function raw(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: init.method ?? 'GET', headers: init.headers ?? {}, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${init.method ?? 'GET'} ${url}`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Headers of a JSON-RPC POST to /mcp. */
export const MCP_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
