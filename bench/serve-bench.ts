/**
 * Latency and output size of the main calls of `kubemcp serve` on the local control plane (issue 5,
 * "Tests and measurements"); `npm run bench` compares start, memory and calls with the peers.
 * Not a test: run it by hand against a running cluster.
 *
 *   npm run cluster:up && KUBECONFIG=$PWD/.cluster/kubeconfig npm run bench:calls -- [--pods 1000] [--runs 30] [--dist dist/cli]
 *
 * `--dist <dir>` runs the bundle (`node <dir>/kubemcp.js serve`, after `npm run build`)
 * instead of the TypeScript sources through tsx: that is the cold start and RSS users see.
 *
 * It creates `--pods` pods (default 1,000) in a fresh namespace, starts the server as a child
 * process over stdio (`node --import tsx cli.ts serve`, so the pid measured is the server's),
 * and prints: cold start (spawn to the first tools/list answer, ms), tools/list bytes, idle RSS
 * (MiB, from /proc/<pid>/status after the calls), and for the main calls (list pods in all
 * namespaces, get, describe, logs, events) the median and p95 latency (ms) and response bytes.
 * The namespace is deleted and the child stopped (by pid) at the end, also on failure.
 * Every loop is bounded (pods, runs, waits).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createPods, pct, rssMiB } from './shared.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
};
const PODS = arg('pods', 1000);
const RUNS = arg('runs', 30);
const distAt = process.argv.indexOf('--dist');
const DIST = distAt >= 0 ? path.resolve(process.argv[distAt + 1] ?? 'dist/cli') : undefined;

async function main(): Promise<void> {
  if (!process.env.KUBECONFIG)
    throw new Error('set KUBECONFIG (npm run cluster:up; export KUBECONFIG=$PWD/.cluster/kubeconfig)');
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const ns = (await core.createNamespace({ body: { metadata: { generateName: 'bench-' } } })).metadata!.name!;
  let transport: StdioClientTransport | undefined;
  try {
    const t0 = performance.now();
    await createPods(core, ns, PODS, 32);
    console.error(`created ${PODS} pods in ${ns} in ${Math.round(performance.now() - t0)} ms`);

    const start = performance.now();
    transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        ...(DIST ? [path.join(DIST, 'kubemcp.js')] : ['--import', 'tsx', 'cli.ts']),
        'serve',
        '--audit-log',
        'off',
      ],
      cwd: ROOT,
      env: { ...(process.env as Record<string, string>), LOG_LEVEL: 'warn' },
      stderr: 'inherit',
    });
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(transport);
    const tools = await client.listTools();
    const cold = performance.now() - start;
    const toolsBytes = Buffer.byteLength(JSON.stringify(tools));

    // A Running pod (kwok's node may not fit all of them): logs need a pod bound to the node.
    let pod = '';
    for (let i = 0; i < 120 && !pod; i++) {
      const running = await core.listNamespacedPod({ namespace: ns, fieldSelector: 'status.phase=Running', limit: 1 });
      pod = running.items[0]?.metadata?.name ?? '';
      if (!pod) await new Promise((r) => setTimeout(r, 500));
    }
    if (!pod) throw new Error('no bench pod became Running within 60 s');
    const phases = new Map<string, number>();
    for (const p of (await core.listNamespacedPod({ namespace: ns })).items)
      phases.set(p.status?.phase ?? '?', (phases.get(p.status?.phase ?? '?') ?? 0) + 1);
    console.error(`pod phases: ${[...phases].map(([k, v]) => `${k}=${v}`).join(' ')}`);
    const calls: Array<[string, string, Record<string, unknown>]> = [
      ['list pods, all namespaces', 'list-resources', { kind: 'pods', allNamespaces: true }],
      ['list pods, all namespaces, limit 100', 'list-resources', { kind: 'pods', allNamespaces: true, limit: 100 }],
      ['get pod', 'get-resource', { kind: 'pod', name: pod, namespace: ns }],
      ['describe pod', 'describe-resource', { kind: 'pod', name: pod, namespace: ns }],
      ['pod logs', 'get-pod-logs', { name: pod, namespace: ns }],
      ['events, namespace', 'list-events', { namespace: ns }],
    ];
    const rows: string[][] = [];
    for (const [label, name, args] of calls) {
      const lat: number[] = [];
      let bytes = 0;
      let err = '';
      for (let i = 0; i < RUNS; i++) {
        const s = performance.now();
        const r = await client.callTool({ name, arguments: args });
        lat.push(performance.now() - s);
        bytes = Buffer.byteLength(JSON.stringify(r));
        if (r.isError) err = ((r.content as Array<{ text?: string }>)[0]?.text ?? '').slice(0, 80);
      }
      rows.push([label, pct(lat, 50).toFixed(1), pct(lat, 95).toFixed(1), String(bytes), err]);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const rss = transport.pid ? rssMiB(transport.pid) : NaN;

    console.log(`kubemcp serve benchmark: ${PODS} pods, ${RUNS} runs per call, stdio`);
    console.log(`cold start (spawn -> first tools/list): ${cold.toFixed(0)} ms`);
    console.log(`tools/list: ${tools.tools.length} tools, ${toolsBytes} bytes`);
    console.log(`idle RSS after the calls: ${rss} MiB`);
    const head = ['call', 'median ms', 'p95 ms', 'response bytes', 'error'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [head, ...rows])
      console.log(
        r
          .map((c, i) => c.padEnd(w[i]!))
          .join('  ')
          .trimEnd(),
      );
    await client.close();
  } finally {
    if (transport?.pid) {
      try {
        process.kill(transport.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await core.deleteNamespace({ name: ns }).catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
