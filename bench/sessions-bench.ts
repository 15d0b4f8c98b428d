/**
 * `npm run bench:sessions`: what a sealed session costs (gateway/sessions.ts, issue 18), on
 * loopback, no cluster. One upstream (npm's server-everything on its own Streamable HTTP port) and
 * three `kubemcp gateway` processes (the bundle, `--auth none`), all running at once:
 * - `plain`: no `--peers` (ids are the server's own, as before issue 18);
 * - `owner` on 127.0.0.3 and `peer` on 127.0.0.2, the same port, `--peers 127.0.0.3,127.0.0.2` (not
 *   127.0.0.1: a gateway bound there checks Host as a desktop server does, a pod's gateway does not),
 *   one session key: a session opened through `owner` is sealed with it as owner; its calls are
 *   sent either to `owner` (handled there) or to `peer` (forwarded to `owner`: the hop a request
 *   takes when a balancer puts it on another replica).
 * Rows: direct, plain gateway, sealed at its owner, sealed forwarded; then MCP 2026-07-28 (an SDK v2
 * client pinned to it): direct to an SDK v2 server of both eras (bench/modern-echo-server.ts), through a
 * gateway in front of it (passed through untranslated), and through the plain gateway (translated onto a
 * 2025 session with server-everything); `--calls` sequential
 * `echo` calls per row in 5 interleaved rounds after a warm-up; median and p95 ms, and what each
 * row adds at the median over the same server reached another way (named in the row). Goals
 * (issue 18, "Speed"): forwarding adds at most 1 ms at the median over the owner; a 2026-07-28
 * call through the gateway at most 1 ms over direct.
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
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { EVERYTHING, ROOT, until } from '../test/mcp-server/bridge-harness.js';
import { echo, type EchoClient, freePort, intArg, pct } from './shared.js';
import { GATEWAY_PROCESS_ENV } from '../gateway/wiring.js';

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
async function connect(first: string, then = first): Promise<EchoClient & { close(): Promise<void> }> {
  let target = first;
  const c = new Client({ name: 'sessions-bench', version: '1' });
  await c.connect(
    new StreamableHTTPClientTransport(new URL(first), {
      fetch: (url, init) => fetch(String(url).replace(first, target), init),
    }),
  );
  target = then;
  return c as unknown as EchoClient & { close(): Promise<void> };
}

/** An SDK v2 client pinned to MCP 2026-07-28 (server/discover, then stateless requests). */
async function connectModern(url: string): Promise<EchoClient & { close(): Promise<void> }> {
  const c = new ClientV2(
    { name: 'sessions-bench', version: '1' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await c.connect(new TransportV2(new URL(url)));
  return c as unknown as EchoClient & { close(): Promise<void> };
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
    // The 2026-07-28 upstream: an SDK v2 server answering both eras (as kubemcp serve does).
    const modernPort = await freePort();
    const modernUp = start(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'modern-echo-server.ts')], {
      PORT: String(modernPort),
    });
    await listening('127.0.0.1', modernPort, 'modern echo server', modernUp);
    const modernUpstream = `http://127.0.0.1:${modernPort}`;
    const gw = async (name: string, host: string, port: number, sealed: boolean, to = upstream) => {
      const args = [BUNDLE, 'gateway', '--upstream', to, '--host', host, '--port', String(port)];
      args.push('--auth', 'none', '--mcpserver', 'bench/sessions');
      if (sealed) args.push('--peers', '127.0.0.3,127.0.0.2', '--session-keys', keys);
      const p = start(process.execPath, args, {
        ...GATEWAY_PROCESS_ENV,
        POD_IP: host,
        POD_NAME: name,
        LOG_LEVEL: 'warn',
      });
      await listening(host, port, `gateway ${name}`, p);
      return `http://${host}:${port}/mcp`;
    };
    const plain = await gw('plain', '127.0.0.1', await freePort(), false);
    const port = await freePort();
    const owner = await gw('owner', '127.0.0.3', port, true);
    const peer = await gw('peer', '127.0.0.2', port, true);
    const passthrough = await gw('modern', '127.0.0.1', await freePort(), false, modernUpstream);

    // `base`: the row whose median the "added" column subtracts (the same server reached another way).
    const rows: Array<{ name: string; client: EchoClient & { close(): Promise<void> }; ms: number[]; base?: number }> =
      [
        { name: 'direct (server-everything), 2025-11-25 session', client: await connect(`${upstream}/mcp`), ms: [] },
        { name: 'kubemcp gateway, plain session', client: await connect(plain), ms: [], base: 0 },
        { name: 'kubemcp gateway, sealed session at its owner', client: await connect(owner), ms: [], base: 1 },
        {
          name: 'kubemcp gateway, sealed session forwarded to its owner',
          client: await connect(owner, peer),
          ms: [],
          base: 2,
        },
        {
          name: 'direct (SDK v2 server), 2026-07-28 client',
          client: await connectModern(`${modernUpstream}/mcp`),
          ms: [],
        },
        {
          name: 'kubemcp gateway, 2026-07-28 passed through',
          client: await connectModern(passthrough),
          ms: [],
          base: 4,
        },
        {
          name: 'kubemcp gateway, 2026-07-28 client translated for server-everything',
          client: await connectModern(plain),
          ms: [],
          base: 0,
        },
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
    process.stdout.write('| path | median ms | p95 ms | added ms | over |\n|---|---|---|---|---|\n');
    const med = rows.map((r) => pct(r.ms, 50));
    rows.forEach((r, j) =>
      process.stdout.write(
        `| ${r.name} | ${med[j]!.toFixed(2)} | ${pct(r.ms, 95).toFixed(2)} | ${r.base === undefined ? '' : (med[j]! - med[r.base]!).toFixed(2)} | ${r.base === undefined ? '' : rows[r.base]!.name} |\n`,
      ),
    );
    const goal = (what: string, added: number) =>
      process.stdout.write(
        `${what} adds ${added.toFixed(2)} ms at the median (goal <= 1 ms: ${added <= 1 ? 'met' : 'not met'})\n`,
      );
    process.stdout.write('\n');
    goal('forwarding a sealed session to its owner', med[3]! - med[2]!);
    goal('the gateway, for a 2026-07-28 call passed through', med[5]! - med[4]!);
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
