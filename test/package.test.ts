/**
 * The package installs like its peers' (issue 9, "Install it like the peers"): `npm pack` builds
 * on `prepack` and ships the bundle and the library, not the sources or tests; the tarball
 * installs into a temporary prefix (from the npm cache, the registry only for what is missing),
 * and the installed `kubemcp` bin answers `--version`, renders an MCPServer offline (cdk8s is
 * loaded from the installed dependencies), and serves MCP over stdio: tools/list, and one tool
 * call against the local control plane, which loads the kubeconfig client (kubeconfig.cjs)
 * from the installed bundle; `kubemcp bridge-init` and `kubemcp bridge` start from the bundle and
 * answer /health and /ready (the bridge once died at start there: pino's CommonJS interop), and
 * `kubemcp gateway` starts from the bundle and passes or refuses requests (it once died at start
 * in the image: prom-client's CommonJS interop). Every process is stopped by pid; the temporary directory is removed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { closeStdio } from '../bench/shared.js';
import { readSources, renderSources } from '../charts/render-cli.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};
let dir: string;
let tarball: string;
let files: string[];
let bin: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-pack-'));
  // `npm pack` runs prepack (npm run build: tsc for the library, build.ts for the bundle).
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 540_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const report = JSON.parse(out.slice(out.lastIndexOf('[\n  {'))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  tarball = path.join(dir, report[0]!.filename);
  files = report[0]!.files.map((f) => f.path);
  const prefix = path.join(dir, 'prefix');
  execFileSync(
    'npm',
    ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    { encoding: 'utf8', timeout: 540_000, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  bin = path.join(prefix, 'bin', 'kubemcp');
}, 1_100_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm pack and install', () => {
  it('ships the bundle, the library and its declarations, and nothing of the sources or tests', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/cli/kubemcp.js',
        'dist/cli/kubeconfig.cjs',
        'dist/js/charts/index.js',
        'dist/js/charts/index.d.ts',
      ]),
    );
    for (const f of files)
      expect(f).toMatch(
        /^(package\.json|README\.md|LICENSE.*|dist\/cli\/[^/]+\.(js|cjs|txt)|dist\/js\/(charts|imports)\/.+\.(js|d\.ts))$/,
      );
    expect(files.some((f) => f.endsWith('.map'))).toBe(false);
  });

  it('installs a working kubemcp bin: --version', () => {
    expect(existsSync(bin)).toBe(true);
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 60_000 }).trim()).toBe(PKG.version);
  });

  it('kubemcp render from the install (cdk8s bundled into it) prints what the library renders, for every sample', () => {
    const samples = readdirSync(path.join(ROOT, 'charts/samples')).filter((f) => f.endsWith('.yaml'));
    expect(samples.length).toBeGreaterThanOrEqual(5);
    for (const f of samples) {
      const file = path.join(ROOT, 'charts/samples', f);
      const yaml = execFileSync(bin, ['render', '-f', file], { encoding: 'utf8', timeout: 120_000 });
      expect(yaml).toMatch(/^kind: Deployment$/m);
      expect(yaml).toBe(renderSources(readSources([file])));
    }
  });

  it('kubemcp serve from the install lists tools over stdio and calls one against the cluster', async () => {
    const snapshot = JSON.parse(readFileSync(path.join(ROOT, 'test/mcp-server/tools-list.snapshot.json'), 'utf8')) as {
      tools: Array<{ name: string }>;
    };
    const transport = new StdioClientTransport({
      command: bin,
      args: ['serve', '--read-only', '--audit-log', 'off'],
      env: { ...(process.env as Record<string, string>), LOG_LEVEL: 'warn' },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const client = new Client({ name: 'package-test', version: '1.0.0' });
    try {
      await client.connect(transport);
      const { tools } = await client.listTools();
      expect(tools.length).toBeGreaterThan(10);
      // --read-only: the snapshot's read tools, in its order.
      const read = snapshot.tools
        .filter((t) => (t as { annotations?: { readOnlyHint?: boolean } }).annotations?.readOnlyHint)
        .map((t) => t.name);
      expect(tools.map((t) => t.name)).toEqual(read);
      const r = await client.callTool({ name: 'list-namespaces', arguments: {} });
      expect(r.isError ?? false).toBe(false);
      expect((r.content as Array<{ text: string }>)[0]!.text).toMatch(/kube-system/);
      expect(stderr).not.toMatch(/error/i);
    } finally {
      await closeStdio(client, transport);
    }
  });

  it("the README's client snippets start as written (Claude Desktop, VS Code, Claude Code, MCP Inspector): tools/list over stdio from the bundled bin", async () => {
    // The bundle `npm pack` built (prepack: npm run build) in this checkout, as the README says.
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const json = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map(
      (m) => JSON.parse(m[1]!) as Record<string, unknown>,
    );
    type Server = { command: string; args: string[]; env?: Record<string, string> };
    const desktop = (json.find((j) => 'mcpServers' in j)!.mcpServers as Record<string, Server>).kubernetes!;
    const vscode = (json.find((j) => 'servers' in j)!.servers as Record<string, Server>).kubernetes!;
    const claudeCode = /claude mcp add kubernetes -- (.+?)`/.exec(readme)![1]!.split(' ');
    const inspector = /npx @modelcontextprotocol\/inspector --cli (.+?) --method tools\/list`/
      .exec(readme)![1]!
      .split(' ');
    const runs: Array<[string, string, string[]]> = [
      ['Claude Desktop', desktop.command, desktop.args],
      ['VS Code', vscode.command, vscode.args],
      ['Claude Code', claudeCode[0]!, claudeCode.slice(1)],
      ['MCP Inspector', inspector[0]!, inspector.slice(1)],
    ];
    for (const [client, command, rawArgs] of runs) {
      const args = rawArgs.map((a) => a.replace('/path/to/kubemcp', ROOT));
      expect(args.join(' ')).toContain('dist/cli/kubemcp.js serve');
      const transport = new StdioClientTransport({
        command,
        args,
        cwd: ROOT,
        env: { ...(process.env as Record<string, string>), LOG_LEVEL: 'warn' },
        stderr: 'pipe',
      });
      const c = new Client({ name: `readme-${client}`, version: '1' });
      await c.connect(transport);
      try {
        const tools = (await c.listTools()).tools.map((t) => t.name);
        expect({ client, enough: tools.length >= 10 }).toEqual({ client, enough: true }); // 12 read-only, 22 in all
        // --read-only hides writes, --disable-destructive deletes: the flags of each snippet took effect.
        if (args.includes('--read-only'))
          expect({ client, tools }).not.toEqual({ client, tools: expect.arrayContaining(['apply-manifest']) });
        if (args.includes('--disable-destructive'))
          expect({ client, tools }).not.toEqual({ client, tools: expect.arrayContaining(['delete-resource']) });
      } finally {
        await closeStdio(c, transport);
      }
    }
  }, 120_000);

  it('kubemcp bridge-init and kubemcp bridge run from the install: /health 200, /ready 503 with the reason (no stdio process yet)', async () => {
    const bdir = path.join(dir, 'bridge');
    execFileSync(bin, ['bridge-init', '--dir', bdir, '--launcher-source', '/bin/busybox'], {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(['bin/busybox', 'stdin', 'stdout'].filter((f) => existsSync(path.join(bdir, f)))).toEqual([
      'bin/busybox',
      'stdin',
      'stdout',
    ]);
    const child = spawn(
      bin,
      ['bridge', '--dir', bdir, '--auth', 'none', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      let url: string | undefined;
      for (let i = 0; i < 600 && !url && child.exitCode === null; i++) {
        url = /listening on (http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(stderr)?.[1];
        if (!url) await new Promise((r) => setTimeout(r, 100));
      }
      expect({ url: !!url, exitCode: child.exitCode, stderr: url ? '' : stderr }).toEqual({
        url: true,
        exitCode: null,
        stderr: '',
      });
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({
        status: 'not ready',
        reason: expect.stringMatching(/waiting for the stdio process/),
      });
    } finally {
      if (child.pid && child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      }
    }
  });

  it('kubemcp gateway runs from the install: with --auth none it passes a request to its upstream; with --auth kubernetes a request without a token gets 401 and never reaches it', async () => {
    // The upstream: a loopback HTTP server that counts what reaches it.
    let reached = 0;
    const upstream = http.createServer((req, res) => {
      reached++;
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const start = async (auth: string[]) => {
      const child = spawn(
        bin,
        ['gateway', '--upstream', upstreamUrl, ...auth, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      let url: string | undefined;
      for (let i = 0; i < 600 && !url && child.exitCode === null; i++) {
        url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
        if (!url) await new Promise((r) => setTimeout(r, 100));
      }
      expect({ url: !!url, exitCode: child.exitCode, stderr: url ? '' : stderr }).toEqual({
        url: true,
        exitCode: null,
        stderr: '',
      });
      return { child, url: url! };
    };
    const stop = async (child: ReturnType<typeof spawn>) => {
      if (child.pid && child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      }
    };
    const post = (url: string) =>
      fetch(`${url}/mcp`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      });
    const children: Array<ReturnType<typeof spawn>> = [];
    try {
      const open = await start(['--auth', 'none']);
      children.push(open.child);
      const r = await post(open.url);
      expect({ status: r.status, body: await r.json(), reached }).toEqual({
        status: 200,
        body: { jsonrpc: '2.0', id: 1, result: {} },
        reached: 1,
      });
      const closed = await start([
        '--auth',
        'kubernetes',
        '--mcpserver',
        'default/x',
        '--audience',
        'http://x.default.svc.cluster.local:3001/mcp',
      ]);
      children.push(closed.child);
      const refused = await post(closed.url);
      expect({ status: refused.status, reached }).toEqual({ status: 401, reached: 1 });
    } finally {
      for (const c of children) await stop(c);
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  });
});
