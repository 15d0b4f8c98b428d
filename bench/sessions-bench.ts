/**
 * `npm run bench:sessions`: what a sealed session costs (gateway/sessions.ts, issue 18), on
 * loopback, no cluster. One upstream (npm's server-everything on its own Streamable HTTP port) and
 * three `kubemcp gateway` processes (the bundle, `--auth none`), all running at once:
 * - `plain`: no `--peers` (ids are the server's own, as before issue 18);
 * - `owner` on 127.0.0.1 and `peer` on 127.0.0.2, the same port, `--peers 127.0.0.1,127.0.0.2`,
 *   one session key: a session opened through `owner` is sealed with it as owner; its calls are
 *   sent either to `owner` (handled there) or to `peer` (forwarded to `owner`: the hop a request
 *   takes when a balancer puts it on another replica).
 * Rows: direct, plain gateway, sealed at its owner, sealed forwarded; `--calls` sequential
 * `echo` calls per row in 5 interleaved rounds after a warm-up; median and p95 ms, and what each
 * row adds at the median over the row before it. Goal (issue 18): forwarding adds at most 1 ms
 * at the median over the owner.
 *
 * Needs the bundle (`npm run build`). Every process is stopped by PID at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EVERYTHING, ROOT, until } from '../test/mcp-server/bridge-harness.js';
import { echo, freePort, intArg, pct } from './shared.js';

const CALLS = intArg('calls', 2000);
const ROUNDS = 5;
const WARMUP = 200;
const BUNDLE = path.join(ROOT, 'dist', 'cli', 'kubemcp.js');

const children: ChildProcess[] = [];
function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-8192));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  children.push(child);
  return { child, out: () => out };
}

async function listening(host: string, port: number, what: string, p: ReturnType<typeof start>) {
  await until(
    async () =>
      p.child.exitCode !== null ||
      (await new Promise<boolean>((resolve) => {
        const s = createServer();
        s.once('error', () => resolve(true));
        s.listen(port, host, () => s.close(() => resolve(false)));
      })),
    `${what} to listen on ${host}:${port}`,
    60_000,
    100,
  );
  if (p.child.exitCode !== null) throw new Error(`${what} exited: ${p.out()}`);
}

/** A client whose requests go to `first` until connected, then to `then` (another replica, same session). */
async function connect(first: string, then = first): Promise<Client> {
  let target = first;
  const c = new Client({ name: 'sessions-bench', version: '1' });
  await c.connect(
    new StreamableHTTPClientTransport(new URL(first), {
      fetch: (url, init) => fetch(String(url).replace(first, target), init),
    }),
  );
  target = then;
  return c;
}

async function main() {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first`);
  const keys = mkdtempSync(path.join(tmpdir(), 'kubemcp-bench-keys-'));
  writeFileSync(path.join(keys, 'current'), randomBytes(32));
  try {
    const upPort = await freePort();
    const up = start(EVERYTHING[0]!, [EVERYTHING[1]!, 'streamableHttp'], { PORT: String(upPort) });
    await listening('127.0.0.1', upPort, 'server-everything', up);
    const upstream = `http://127.0.0.1:${upPort}`;
    const gw = async (name: string, host: string, port: number, sealed: boolean) => {
      const args = [BUNDLE, 'gateway', '--upstream', upstream, '--host', host, '--port', String(port)];
      args.push('--auth', 'none', '--mcpserver', 'bench/sessions');
      if (sealed) args.push('--peers', '127.0.0.1,127.0.0.2', '--session-keys', keys);
      const p = start(process.execPath, args, { POD_IP: host, POD_NAME: name, LOG_LEVEL: 'warn' });
      await listening(host, port, `gateway ${name}`, p);
      return `http://${host}:${port}/mcp`;
    };
    const plain = await gw('plain', '127.0.0.1', await freePort(), false);
    const port = await freePort();
    const owner = await gw('owner', '127.0.0.1', port, true);
    const peer = await gw('peer', '127.0.0.2', port, true);

    const rows: Array<{ name: string; client: Client; ms: number[] }> = [
      { name: 'direct (server-everything)', client: await connect(`${upstream}/mcp`), ms: [] },
      { name: 'kubemcp gateway, plain session', client: await connect(plain), ms: [] },
      { name: 'kubemcp gateway, sealed session at its owner', client: await connect(owner), ms: [] },
      { name: 'kubemcp gateway, sealed session forwarded to its owner', client: await connect(owner, peer), ms: [] },
    ];
    for (const r of rows) for (let i = 0; i < WARMUP; i++) await echo(r.client, i);
    for (let round = 0; round < ROUNDS; round++)
      for (const r of rows)
        for (let i = 0; i < CALLS / ROUNDS; i++) {
          const t = process.hrtime.bigint();
          await echo(r.client, i);
          r.ms.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
    process.stdout.write(
      `\nsessions bench: server-everything echo, ${CALLS} sequential calls per row in ${ROUNDS} interleaved rounds (after ${WARMUP} warm-up)\n\n`,
    );
    process.stdout.write('| path | median ms | p95 ms | added over the row above, ms |\n|---|---|---|---|\n');
    let prev: number | undefined;
    for (const r of rows) {
      const med = pct(r.ms, 50);
      process.stdout.write(
        `| ${r.name} | ${med.toFixed(2)} | ${pct(r.ms, 95).toFixed(2)} | ${prev === undefined ? '' : (med - prev).toFixed(2)} |\n`,
      );
      prev = med;
    }
    const fwd = pct(rows[3]!.ms, 50) - pct(rows[2]!.ms, 50);
    process.stdout.write(
      `\nforwarding adds ${fwd.toFixed(2)} ms at the median (goal <= 1 ms: ${fwd <= 1 ? 'met' : 'not met'})\n`,
    );
    for (const r of rows) await r.client.close();
  } finally {
    for (const c of children)
      if (c.exitCode === null && c.pid)
        try {
          process.kill(c.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
    rmSync(keys, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
