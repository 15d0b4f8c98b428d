/**
 * `npm run bench:start`: where the start of `kubemcp serve` goes, the numbers build.ts's choices
 * rest on (docs/serve.md, "Speed and memory"). Not a test; it needs no cluster.
 *
 *   npm run bench:start -- [--runs 5]
 *
 * Each line is the median of `--runs` fresh Node processes (the module graph is never cached
 * between them): wall time to import the module and the process's RSS after it, next to a bare
 * `node` process. Then the bundle (dist/cli, rebuilt first) started over stdio: spawn ->
 * initialize -> tools/list (until the answer arrives), RSS right after that answer and 1 s later
 * (after the MCP SDK, the tools and the kubeconfig client have been loaded in the background,
 * mcp-server/stdio.ts).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { buildBundle } from '../build.js';
import { closeStdio } from './shared.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Imports `spec` in a fresh process (cwd ROOT); returns [import ms, RSS MiB after it]. */
function importCost(spec: string): [number, number] {
  const code = `const t=performance.now();${spec ? `await import(${JSON.stringify(spec)});` : ''}const ms=performance.now()-t;process.stdout.write(JSON.stringify([ms,process.memoryUsage().rss/1048576]))`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out) as [number, number];
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
}

async function main(): Promise<void> {
  const runs = Number(
    new Command().option('--runs <n>', 'fresh processes per line', '5').parse().opts<{ runs: string }>().runs,
  );
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  await buildBundle();
  const modules: Array<[string, string]> = [
    ['bare node process', ''],
    ['@kubernetes/client-node (the package)', '@kubernetes/client-node'],
    ['KubeConfig only, bundled (dist/cli/kubeconfig.cjs)', './dist/cli/kubeconfig.cjs'],
    ['@modelcontextprotocol/sdk server + stdio', '@modelcontextprotocol/sdk/server/mcp.js'],
    ['zod', 'zod'],
    ['pino', 'pino'],
    ['yaml', 'yaml'],
  ];
  console.log(
    `import costs, medians of ${runs} fresh processes (node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)})`,
  );
  console.log('| module | import ms | RSS after, MiB |\n|---|---|---|');
  for (const [label, spec] of modules) {
    const xs = Array.from({ length: runs }, () => importCost(spec));
    console.log(`| ${label} | ${median(xs.map((x) => x[0])).toFixed(0)} | ${median(xs.map((x) => x[1])).toFixed(1)} |`);
  }

  // A kubeconfig whose server is never contacted: initialize and tools/list need no apiserver.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kubemcp-start-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
  );
  const start: number[] = [];
  const rssAnswer: number[] = [];
  const rssLater: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [path.join(ROOT, 'dist/cli/kubemcp.js'), 'serve', '--audit-log', 'off'],
        env: { ...(process.env as Record<string, string>), KUBECONFIG: kubeconfig, LOG_LEVEL: 'warn' },
        stderr: 'ignore',
      });
      const client = new Client({ name: 'start-profile', version: '1.0.0' });
      try {
        await client.connect(transport);
        // Until the answer arrives (as `npm run bench`), not the SDK client's own work on it.
        let arrived = NaN;
        const onmessage = transport.onmessage;
        transport.onmessage = (m) => {
          if ('id' in m && ('result' in m || 'error' in m)) arrived = performance.now();
          onmessage?.(m);
        };
        await client.listTools();
        start.push(arrived - t0);
        rssAnswer.push(rssMiB(transport.pid!));
        await new Promise((r) => setTimeout(r, 1000));
        rssLater.push(rssMiB(transport.pid!));
      } finally {
        await closeStdio(client, transport);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nkubemcp serve (dist/cli bundle), medians of ${runs}:`);
  console.log(`spawn -> initialize -> tools/list: ${median(start).toFixed(0)} ms`);
  console.log(
    `RSS at the tools/list answer: ${median(rssAnswer).toFixed(1)} MiB; 1 s later (server and kubeconfig client loaded): ${median(rssLater).toFixed(1)} MiB`,
  );
}

main().catch((err) => {
  console.error(`bench:start failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
