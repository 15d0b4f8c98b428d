/**
 * MCP Inspector 2.12's CLI (npm @modelcontextprotocol/inspector 2.12.0, the tool MCP users reach
 * for; it needs Node 22, from ../node22.ts) against `kubemcp serve` in both protocol eras
 * (`--protocol-era legacy|modern`, issue 18), over stdio (the CLI spawns `kubemcp serve` from the
 * sources) and Streamable HTTP (in this process, loopback, against the local cluster): tools/list,
 * a tools/call and a resources/read. Which era was spoken is checked on what the server saw: the
 * stdio server's own log line, and the `MCP-Protocol-Version` headers of the HTTP requests.
 * The CLI is installed once into ~/.cache/kubemcp/inspector-2.12.0 (npm, no install scripts);
 * each CLI process is bounded in time and killed if it outlives it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureNode22, TEST_CACHE } from '../node22.js';
import { ROOT, startHttpServer, type HttpServer } from './helpers.js';

const run = promisify(execFile);
const VERSION = '2.12.0';
const PREFIX = path.join(TEST_CACHE, `inspector-${VERSION}`);
const CLI = path.join(PREFIX, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');

/** Installs the Inspector once (its CLI only is used: no install scripts, no browser). */
async function ensureInspector(): Promise<void> {
  if (existsSync(CLI)) return;
  mkdirSync(PREFIX, { recursive: true });
  await run(
    'npm',
    [
      'install',
      '--prefix',
      PREFIX,
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      '--engine-strict=false',
      `@modelcontextprotocol/inspector@${VERSION}`,
    ],
    { cwd: os.tmpdir(), timeout: 300_000 },
  );
}

let node22: string;
let home: string;

/** One CLI run: its JSON answer on stdout and its stderr (a stdio server's own log included). */
async function inspect(args: string[]): Promise<{ out: Record<string, unknown>; err: string }> {
  const r = await run(node22, [CLI, '--cli', ...args], {
    cwd: ROOT,
    timeout: 90_000,
    killSignal: 'SIGKILL',
    maxBuffer: 16 * 1024 * 1024,
    // HOME: the CLI's own catalog and keyring files go to a scratch directory.
    env: { ...process.env, NODE_OPTIONS: '', HOME: home, LOG_LEVEL: 'info' },
  });
  return { out: JSON.parse(r.stdout) as Record<string, unknown>, err: r.stderr };
}

// The CLI gives a stdio server only a default environment (as MCP clients do): the kubeconfig is passed with -e.
const serveArgs = () => [
  '-e',
  `KUBECONFIG=${process.env.KUBECONFIG}`,
  '--',
  process.execPath,
  '--import',
  'tsx',
  'cli.ts',
  'serve',
  '--audit-log',
  'off',
];

beforeAll(async () => {
  node22 = await ensureNode22();
  await ensureInspector();
  home = mkdtempSync(path.join(os.tmpdir(), 'kubemcp-inspector-'));
}, 600_000);
afterAll(() => {
  if (home) rmSync(home, { recursive: true, force: true });
});

describe(`MCP Inspector ${VERSION} CLI against kubemcp serve over stdio`, () => {
  it.each(['legacy', 'modern'])(
    '%s era: tools/list, tools/call and resources/read',
    async (era) => {
      const list = await inspect(['--protocol-era', era, '--method', 'tools/list', ...serveArgs()]);
      const names = (list.out.tools as Array<{ name: string }>).map((t) => t.name);
      expect(names.slice(0, 3)).toEqual(['create-pod', 'get-pod-logs', 'delete-pod']);
      expect(names.length).toBeGreaterThan(20);
      // The server says which server answered: the 2025 one, or the SDK v2's for a modern opening.
      if (era === 'modern') expect(list.err).toContain('kubemcp serve: stdio (MCP 2026-07-28)');
      else expect(list.err).not.toContain('MCP 2026-07-28');
      const call = await inspect([
        '--protocol-era',
        era,
        '--method',
        'tools/call',
        '--tool-name',
        'list-namespaces',
        ...serveArgs(),
      ]);
      expect(JSON.stringify(call.out.content)).toMatch(/kube-system/);
      const read = await inspect([
        '--protocol-era',
        era,
        '--method',
        'resources/read',
        '--uri',
        'k8s://cluster/nodes',
        ...serveArgs(),
      ]);
      const text = (read.out.contents as Array<{ text: string }>)[0]!.text;
      expect(JSON.parse(text).count).toBeGreaterThan(0);
    },
    300_000,
  );
});

describe(`MCP Inspector ${VERSION} CLI against kubemcp serve over Streamable HTTP`, () => {
  let s: HttpServer;
  const versions: string[] = [];
  beforeAll(async () => {
    s = await startHttpServer();
    s.running.server.on('request', (req) => {
      const v = req.headers['mcp-protocol-version'];
      if (typeof v === 'string') versions.push(v);
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it.each([
    ['legacy', '2025-11-25'],
    ['modern', '2026-07-28'],
  ])(
    '%s era: tools/list and tools/call, every request at protocol %s',
    async (era, version) => {
      versions.length = 0;
      // --server-url, not a positional target: `--tool-arg` takes every value after it.
      const list = await inspect(['--server-url', s.url, '--protocol-era', era, '--method', 'tools/list']);
      expect((list.out.tools as unknown[]).length).toBeGreaterThan(20);
      const call = await inspect([
        '--server-url',
        s.url,
        '--protocol-era',
        era,
        '--method',
        'tools/call',
        '--tool-name',
        'list-resources',
        '--tool-arg',
        'kind=namespaces',
      ]);
      expect(JSON.stringify(call.out.content)).toMatch(/kube-system/);
      expect(versions.length).toBeGreaterThan(0);
      expect([...new Set(versions)]).toEqual([version]);
    },
    300_000,
  );
});
