/**
 * `npm run bench`: kubemcp serve side by side with its peers on the same local cluster (issue 9,
 * "Speed and memory"). Not a test: it prints numbers. `npm test` never runs it.
 *
 *   npm run bench -- [--pods 1000] [--runs 10] [--call-runs 3] [--calls 200] [--peers-dir <dir>] [--only kubemcp,kms] [--kubemcp-bin <file>]
 *
 * Servers, each spoken to over stdio by the MCP SDK client, with the same KUBECONFIG:
 * - `kubemcp`: this checkout's bundle (`node dist/cli/kubemcp.js serve`, rebuilt first by build.ts);
 * - `kms`: kubernetes-mcp-server v0.0.67 (Go), its linux/darwin binary from the npm package's
 *   platform package, run directly (`npx kubernetes-mcp-server` adds a Node wrapper process);
 * - `msk`: mcp-server-kubernetes v4.1.7 (TypeScript, runs kubectl; the control plane's kubectl
 *   is put first on PATH).
 * The peers are installed by this script with npm into a scratch directory (default
 * ~/.cache/kubemcp/bench-peers) at those pinned versions; they are not project dependencies.
 *
 * The cluster is the local control plane (started or reused, as `npm run cluster:up`), with
 * `--pods` pods (kwok runs them) in a fresh namespace, deleted at the end.
 *
 * Measures, per server, medians over interleaved runs (run r starts the servers in an order
 * rotated by r, so drifting machine load hits all alike):
 * - start: spawn -> initialize -> tools/list answered (the answer's arrival at the client's
 *   transport), ms; the SDK client's own work on it afterwards (a JSON Schema validator compiled
 *   per tool output schema) is printed on a row of its own;
 * - RSS after start: 1 s after that (VmRSS of the server's process tree, MiB);
 * - first call: listing the namespace's pods with label shard=0 (a tenth) right after, ms
 *   (includes API discovery; until the answer arrives, as for every call);
 * - RSS after `--calls` mixed calls (list those pods, get pod, list events, list namespaces; in the
 *   first `--call-runs` runs only), 1 s after the last one;
 * - tools/list: tool count and bytes of the JSON answer.
 * Ratios are to KMS; the goals are issue 9's. Every loop is bounded; each server is stopped by pid.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as k8s from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { buildBundle } from '../build.js';
import { clusterUp, readState } from '../cluster/index.js';
import { closeStdio, createPods } from './shared.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Pods listed by the list call: a tenth of the namespace (mcp-server-kubernetes 4.1.7 fails on
 * all 1,000: its kubectl output overflows the spawnSync buffer, ENOBUFS). */
const SELECTOR = 'shard=0';

/** Peer packages and the versions issue 9 measured. */
export const PEERS = { 'kubernetes-mcp-server': '0.0.67', 'mcp-server-kubernetes': '4.1.7' } as const;

interface Server {
  name: string;
  label: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** The same four operations in this server's tools. */
  calls: (ns: string, pod: string) => Array<{ tool: string; args: Record<string, unknown> }>;
}

interface Sample {
  startMs: number[];
  /** The SDK client's own work on the tools/list answer (validators for output schemas), ms. */
  listClientMs: number[];
  rssStart: number[];
  firstMs: number[];
  rssCalls: number[];
  callMs: number[];
  errors: Set<string>;
  tools: number;
  listBytes: number;
}

const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** VmRSS of a process and its descendants, MiB (Linux /proc). */
function treeRssMiB(pid: number): number {
  let kb = 0;
  const stack = [pid];
  for (let guard = 0; stack.length && guard < 1000; guard++) {
    const p = stack.pop()!;
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
      for (const t of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ').filter(Boolean))
          stack.push(Number(c));
      }
    } catch {
      /* the process ended meanwhile */
    }
  }
  return kb / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Installs the peers at their pinned versions into `dir` unless they are there. @returns dir/node_modules. */
function ensurePeers(dir: string): string {
  const modules = path.join(dir, 'node_modules');
  const have = (name: string) => {
    try {
      return (JSON.parse(readFileSync(path.join(modules, name, 'package.json'), 'utf8')) as { version: string })
        .version;
    } catch {
      return undefined;
    }
  };
  const missing = Object.entries(PEERS).filter(([n, v]) => have(n) !== v);
  if (missing.length) {
    mkdirSync(dir, { recursive: true });
    if (!existsSync(path.join(dir, 'package.json')))
      writeFileSync(path.join(dir, 'package.json'), '{ "name": "kubemcp-bench-peers", "private": true }\n');
    const specs = Object.entries(PEERS).map(([n, v]) => `${n}@${v}`);
    process.stderr.write(`installing ${specs.join(' ')} into ${dir} ...\n`);
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', dir, ...specs], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 600_000,
    });
  }
  return modules;
}

/** The Go binary inside the KMS platform package (what the npm wrapper spawns). */
function kmsBinary(modules: string): string {
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'];
  const pkg = `kubernetes-mcp-server-${process.platform}-${arch}`;
  const bin = path.join(modules, pkg, 'bin', pkg);
  if (!arch || !existsSync(bin))
    throw new Error(`no kubernetes-mcp-server binary for ${process.platform}/${process.arch} (looked for ${bin})`);
  return bin;
}

/** One run of one server: start, RSS, first call, and (when `calls` > 0) the mixed calls. */
async function runOnce(
  s: Server,
  kubeconfig: string,
  ns: string,
  pod: string,
  calls: number,
  out: Sample,
): Promise<void> {
  const t0 = performance.now();
  const transport = new StdioClientTransport({
    command: s.command,
    args: s.args,
    cwd: ROOT,
    env: { ...(process.env as Record<string, string>), KUBECONFIG: kubeconfig, ...s.env },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'kubemcp-bench', version: '1.0.0' });
  try {
    await client.connect(transport);
    // When the last response arrived, before the SDK client processes it (for tools/list it
    // compiles a JSON Schema validator per output schema, for a call it validates the result).
    let arrived = NaN;
    const onmessage = transport.onmessage;
    transport.onmessage = (m) => {
      if ('id' in m && ('result' in m || 'error' in m)) arrived = performance.now();
      onmessage?.(m);
    };
    const list = await client.listTools();
    out.startMs.push(arrived - t0);
    out.listClientMs.push(performance.now() - arrived);
    out.tools = list.tools.length;
    out.listBytes = Buffer.byteLength(JSON.stringify(list));
    const pid = transport.pid!;
    await sleep(1000);
    out.rssStart.push(treeRssMiB(pid));
    const mix = s.calls(ns, pod);
    const call = async (i: number) => {
      const c = mix[i % mix.length]!;
      try {
        const r = await client.callTool({ name: c.tool, arguments: c.args }, undefined, { timeout: 120_000 });
        if (r.isError)
          out.errors.add(`${c.tool}: ${String((r.content as Array<{ text?: string }>)[0]?.text ?? '').slice(0, 100)}`);
      } catch (err) {
        // A JSON-RPC error instead of an error result (e.g. a peer's kubectl output overflowing its buffer).
        out.errors.add(`${c.tool} (JSON-RPC error): ${(err as Error).message.slice(0, 100)}`);
      }
    };
    const f0 = performance.now();
    await call(0);
    out.firstMs.push(arrived - f0);
    if (calls > 0) {
      for (let i = 0; i < calls; i++) {
        const c0 = performance.now();
        await call(i);
        out.callMs.push(arrived - c0);
      }
      await sleep(1000);
      out.rssCalls.push(treeRssMiB(pid));
    }
  } finally {
    await closeStdio(client, transport);
  }
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--pods <n>', 'pods in the bench namespace', '1000')
    .option('--runs <n>', 'interleaved runs (start, RSS after start, first call)', '10')
    .option('--call-runs <n>', 'runs that also make the mixed calls', '3')
    .option('--calls <n>', 'mixed calls per call run', '200')
    .option(
      '--peers-dir <dir>',
      'scratch directory for the peers',
      path.join(os.homedir(), '.cache', 'kubemcp', 'bench-peers'),
    )
    .option('--only <names>', 'comma-separated subset of kubemcp,kms,msk')
    .option(
      '--kubemcp-bin <file>',
      "another build of the kubemcp bin to measure instead of this checkout's (e.g. an older commit's, for a before/after)",
    )
    .parse()
    .opts<{
      pods: string;
      runs: string;
      callRuns: string;
      calls: string;
      peersDir: string;
      only?: string;
      kubemcpBin?: string;
    }>();
  const int = (v: string, name: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const pods = int(o.pods, 'pods', 1);
  const runs = int(o.runs, 'runs', 1);
  const callRuns = Math.min(runs, int(o.callRuns, 'call-runs', 0));
  const calls = int(o.calls, 'calls', 1);

  const modules = ensurePeers(path.resolve(o.peersDir));
  await buildBundle();
  const cluster = await clusterUp({ log: (l) => process.stderr.write(`${l}\n`) });
  const binDir = readState()?.binDir;
  if (!binDir || !existsSync(path.join(binDir, 'kubectl')))
    throw new Error(`no kubectl in the control plane's binaries (${binDir ?? 'unknown'}): run cluster/build.sh`);
  const kubeconfig = cluster.kubeconfig;
  // kubectl's discovery cache (used by msk) in a scratch HOME, warm after the first call, as on a user's machine.
  const home = path.join(path.resolve(o.peersDir), 'home');
  mkdirSync(home, { recursive: true });

  const all: Server[] = [
    {
      name: 'kubemcp',
      label: o.kubemcpBin ? `kubemcp (${o.kubemcpBin})` : 'kubemcp (this checkout)',
      command: process.execPath,
      args: [
        o.kubemcpBin ? path.resolve(o.kubemcpBin) : path.join(ROOT, 'dist/cli/kubemcp.js'),
        'serve',
        '--audit-log',
        'off',
      ],
      env: { LOG_LEVEL: 'warn' },
      calls: (ns, pod) => [
        { tool: 'list-resources', args: { kind: 'pods', namespace: ns, labelSelector: SELECTOR } },
        { tool: 'get-resource', args: { kind: 'pod', name: pod, namespace: ns } },
        { tool: 'list-events', args: { namespace: ns } },
        { tool: 'list-namespaces', args: {} },
      ],
    },
    {
      name: 'kms',
      label: `KMS (kubernetes-mcp-server ${PEERS['kubernetes-mcp-server']})`,
      command: kmsBinary(modules),
      args: [],
      calls: (ns, pod) => [
        { tool: 'pods_list_in_namespace', args: { namespace: ns, labelSelector: SELECTOR } },
        { tool: 'pods_get', args: { name: pod, namespace: ns } },
        { tool: 'events_list', args: { namespace: ns } },
        { tool: 'namespaces_list', args: {} },
      ],
    },
    {
      name: 'msk',
      label: `mcp-server-kubernetes ${PEERS['mcp-server-kubernetes']}`,
      command: process.execPath,
      args: [path.join(modules, 'mcp-server-kubernetes', 'dist', 'index.js')],
      env: { PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`, HOME: home },
      calls: (ns, pod) => [
        { tool: 'kubectl_get', args: { resourceType: 'pods', namespace: ns, labelSelector: SELECTOR } },
        { tool: 'kubectl_get', args: { resourceType: 'pod', name: pod, namespace: ns } },
        { tool: 'kubectl_get', args: { resourceType: 'events', namespace: ns } },
        { tool: 'kubectl_get', args: { resourceType: 'namespaces' } },
      ],
    },
  ];
  const servers = all.filter((s) => !o.only || o.only.split(',').includes(s.name));
  if (!servers.some((s) => s.name === 'kms')) throw new Error('--only must include kms: ratios are to KMS');

  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const ns = (await core.createNamespace({ body: { metadata: { generateName: 'bench-peers-' } } })).metadata!.name!;
  try {
    const c0 = performance.now();
    await createPods(core, ns, pods);
    process.stderr.write(`created ${pods} pods in ${ns} in ${fmt(performance.now() - c0)} ms\n`);
    const pod = 'bench-0000';
    const samples = new Map<string, Sample>(
      servers.map((s) => [
        s.name,
        {
          startMs: [],
          listClientMs: [],
          rssStart: [],
          firstMs: [],
          rssCalls: [],
          callMs: [],
          errors: new Set(),
          tools: 0,
          listBytes: 0,
        },
      ]),
    );
    for (let r = 0; r < runs; r++) {
      const order = servers.map((_, i) => servers[(i + r) % servers.length]!);
      for (const s of order) {
        await runOnce(s, kubeconfig, ns, pod, r < callRuns ? calls : 0, samples.get(s.name)!);
      }
      process.stderr.write(`run ${r + 1}/${runs} done\n`);
    }

    const k = samples.get('kms')!;
    const ratio = (v: number, base: number) => (Number.isFinite(v) && base > 0 ? `${(v / base).toFixed(2)}x` : 'n/a');
    const rows: Array<[string, (x: Sample) => number, number, string, number]> = [
      ['spawn -> initialize -> tools/list (ms)', (x) => median(x.startMs), 0, '<= 3x KMS', 3],
      ['RSS after start (MiB)', (x) => median(x.rssStart), 1, '<= 1.5x KMS', 1.5],
      ['first call, discovery included (ms)', (x) => median(x.firstMs), 0, '<= 1.5x KMS', 1.5],
      [`RSS after ${calls} mixed calls (MiB)`, (x) => median(x.rssCalls), 1, '<= 1.5x KMS', 1.5],
      ['mixed call, median (ms)', (x) => median(x.callMs), 1, '', 0],
      ['tools/list bytes', (x) => x.listBytes, 0, '', 0],
      // Issue 19: tools/list grows with the tools; the bound is on the bytes of each tool.
      ['tools/list bytes per tool', (x) => (x.tools ? x.listBytes / x.tools : NaN), 0, '<= KMS', 1],
      ['SDK client processing tools/list (ms, not in the start)', (x) => median(x.listClientMs), 0, '', 0],
    ];
    const head = [
      'measure',
      ...servers.map((s) => s.name),
      ...servers.filter((s) => s.name !== 'kms').map((s) => `${s.name}/KMS`),
      'goal (kubemcp)',
    ];
    const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
    for (const [label, get, digits, goal, max] of rows) {
      const base = get(k);
      const ours = get(samples.get('kubemcp') ?? k);
      const met = goal && samples.has('kubemcp') ? (ours <= base * max ? ' (met)' : ' (missed)') : '';
      lines.push(
        `| ${label} | ${servers.map((s) => fmt(get(samples.get(s.name)!), digits)).join(' | ')} | ${servers
          .filter((s) => s.name !== 'kms')
          .map((s) => ratio(get(samples.get(s.name)!), base))
          .join(' | ')} | ${goal}${met} |`,
      );
    }
    lines.push(
      `| tools | ${servers.map((s) => String(samples.get(s.name)!.tools)).join(' | ')} | ${servers
        .filter((s) => s.name !== 'kms')
        .map(() => '')
        .join(' | ')} | |`,
    );
    console.log(
      `kubemcp serve side by side: ${pods} pods, medians of ${runs} interleaved runs (${callRuns} with ${calls} mixed calls), node ${process.version}, ${os.cpus().length} CPUs, load ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log(servers.map((s) => `${s.name}: ${s.label}`).join('; '));
    console.log(lines.join('\n'));
    for (const s of servers)
      for (const e of samples.get(s.name)!.errors) console.log(`note: ${s.name} error result: ${e}`);
  } finally {
    await core.deleteNamespace({ name: ns }).catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
});
