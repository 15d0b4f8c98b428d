/**
 * Benchmark of the stdio bridge (issue 11). Not a test: run it by hand; it needs no cluster.
 *
 *   npx tsx bench/bridge-bench.ts [--calls 500] [--sessions 10] [--per-session 100]   (npm run bench:bridge)
 *
 * The server is npm's @modelcontextprotocol/server-everything (the `echo` tool), on this machine:
 * 1. straight over stdio: the MCP SDK client spawns it (StdioClientTransport);
 * 2. the same server's own Streamable HTTP transport (`index.js streamableHttp`): what HTTP
 *    costs without any bridge;
 * 3. through the bridge, wired as in a pod (test/mcp-server/bridge-harness.ts: bridge-init,
 *    the busybox launcher on real FIFOs, `kubemcp bridge` as its own process via tsx).
 * For each: `--calls` sequential tool calls after 50 warm-up calls, median and p95 in ms; then
 * throughput with `--sessions` concurrent sessions (each its own client and HTTP session; over
 * stdio, concurrent requests on the one connection) making `--per-session` calls each.
 * Prints the bridge's added latency at the median (3 - 1) against the goal of <= 2 ms, the
 * bridge's own share (3 - 2), and the CPU time per call of the server and the bridge processes
 * (/proc/<pid>/stat, 10 ms ticks over all calls): wall times on a busy machine mostly measure
 * waiting for a core, CPU time per call does not. Every process is stopped by pid; every loop is
 * bounded.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EVERYTHING, ROOT, startBridged, until } from '../test/mcp-server/bridge-harness.js';
import { cpuMs, echo, freePort, intArg as arg, pct } from './shared.js';

const CALLS = arg('calls', 500);
const SESSIONS = arg('sessions', 10);
const PER_SESSION = arg('per-session', 100);
const WARMUP = 50;

interface Latency {
  median: number;
  p95: number;
  /** CPU ms per call of the server process and of the bridge process (0 without a bridge). */
  serverCpu: number;
  bridgeCpu: number;
}

/** Sequential calls: latency per call in ms, and the CPU the processes spent per call. */
async function latency(c: Client, serverPid: number, bridgePid?: number): Promise<Latency> {
  for (let i = 0; i < WARMUP; i++) await echo(c, i);
  const ms: number[] = [];
  const [s0, b0] = [cpuMs(serverPid), bridgePid ? cpuMs(bridgePid) : 0];
  for (let i = 0; i < CALLS; i++) {
    const t = process.hrtime.bigint();
    await echo(c, i);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return {
    median: pct(ms, 50),
    p95: pct(ms, 95),
    serverCpu: (cpuMs(serverPid) - s0) / CALLS,
    bridgeCpu: bridgePid ? (cpuMs(bridgePid) - b0) / CALLS : 0,
  };
}

/** `clients.length` concurrent sessions, each making PER_SESSION sequential calls: calls per second. */
async function throughput(clients: Client[]): Promise<number> {
  const t = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < PER_SESSION; i++) await echo(c, i);
    }),
  );
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  return (clients.length * PER_SESSION) / s;
}

const httpClient = async (url: string) => {
  const c = new Client({ name: 'bench', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return c;
};

const rows: Array<[string, Latency, number]> = [];

// 1. straight over stdio
{
  const c = new Client({ name: 'bench', version: '1' });
  const transport = new StdioClientTransport({ command: EVERYTHING[0]!, args: EVERYTHING.slice(1), stderr: 'ignore' });
  await c.connect(transport);
  const pid = transport.pid!;
  try {
    const lat = await latency(c, pid);
    // Over stdio there is one connection: SESSIONS concurrent callers share it.
    const tput = await throughput(Array.from({ length: SESSIONS }, () => c));
    rows.push(['stdio, direct', lat, tput]);
  } finally {
    await c.close();
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}

// 2. the server's own Streamable HTTP transport
{
  const port = await freePort();
  const child = spawn(EVERYTHING[0]!, [EVERYTHING[1]!, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await until(
      () => /listening on port/.test(err) || child.exitCode !== null,
      'server-everything streamableHttp to listen',
      30_000,
    );
    const url = `http://127.0.0.1:${port}/mcp`;
    const c = await httpClient(url);
    const lat = await latency(c, child.pid!);
    const clients = await Promise.all(Array.from({ length: SESSIONS }, () => httpClient(url)));
    const tput = await throughput(clients);
    rows.push(["Streamable HTTP, the server's own", lat, tput]);
    for (const x of [c, ...clients]) await x.close();
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

// 3. through the bridge (FIFOs + launcher + `kubemcp bridge` process)
{
  const b = await startBridged({ argv: EVERYTHING, cliBridge: true });
  try {
    await until(async () => (await b.ready()).status === 200, 'the bridge to be ready', 60_000, 100);
    const c = await b.connect('bench');
    const lat = await latency(c, b.server.child!.pid!, b.bridgeProcess!.pid!);
    const clients = await Promise.all(Array.from({ length: SESSIONS }, (_v, i) => b.connect(`bench-${i}`)));
    const tput = await throughput(clients);
    rows.push(['Streamable HTTP through the bridge', lat, tput]);
  } finally {
    await b.close();
  }
}

const f = (n: number) => n.toFixed(2).padStart(8);
process.stdout.write(
  `\nbridge bench: server-everything echo, ${CALLS} sequential calls (after ${WARMUP} warm-up), throughput ${SESSIONS} sessions x ${PER_SESSION} calls (${path.relative(ROOT, process.cwd()) || '.'})\n\n`,
);
process.stdout.write(`${'path'.padEnd(38)} median ms   p95 ms   calls/s   server CPU ms/call   bridge CPU ms/call\n`);
for (const [name, lat, tput] of rows) {
  process.stdout.write(
    `${name.padEnd(38)} ${f(lat.median)} ${f(lat.p95)} ${tput.toFixed(0).padStart(9)} ${f(lat.serverCpu).padStart(20)} ${f(lat.bridgeCpu).padStart(20)}\n`,
  );
}
const [direct, native, bridged] = rows.map((r) => r[1]);
const added = bridged!.median - direct!.median;
process.stdout.write(
  `\nadded by the bridge at the median (through the bridge - stdio direct): ${added.toFixed(2)} ms (goal <= 2 ms: ${added <= 2 ? 'met' : 'NOT met'})\n`,
);
process.stdout.write(
  `of which HTTP itself (the server's own HTTP - stdio direct): ${(native!.median - direct!.median).toFixed(2)} ms; the bridge's own share (through the bridge - own HTTP): ${(bridged!.median - native!.median).toFixed(2)} ms\n`,
);
process.stdout.write(
  JSON.stringify({
    calls: CALLS,
    sessions: SESSIONS,
    perSession: PER_SESSION,
    rows: rows.map(([name, lat, tput]) => ({ name, ...lat, callsPerSecond: Math.round(tput) })),
    addedMedianMs: Number(added.toFixed(3)),
  }) + '\n',
);
