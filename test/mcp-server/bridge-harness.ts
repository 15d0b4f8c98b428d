/**
 * A bridged stdio MCP server wired on this machine exactly as a bridged pod wires it
 * (gateway/wiring.ts): `bridgeInit` (the init container's code) installs the static
 * busybox launcher and the FIFOs in a temporary directory; the "server container" is the
 * launcher's argv for the given command and args, restarted when it exits as the kubelet's
 * restartPolicy would (bounded: at most `maxRestarts`); the bridge runs in this process (or as a
 * `kubemcp bridge` child process) on 127.0.0.1, port 0. Used by the bridge tests and the bench.
 * Every process is stopped by its pid; every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino, type Logger } from 'pino';
import { StdioBridge, type StdioBridgeOptions } from '../../gateway/bridge.js';
import { startBridgeHttp, type BridgeHttpOptions, type RunningBridgeHttp } from '../../gateway/http.js';
import { bridgeInit } from '../../gateway/init.js';
import { launcherArgv, type BridgePaths } from '../../gateway/wiring.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The reference stdio server (npm @modelcontextprotocol/server-everything), as a pod would run it. */
export const EVERYTHING = [
  process.execPath,
  path.join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'),
  'stdio',
];
/** `kubemcp serve --transport stdio` from this checkout. */
export const KUBEMCP_SERVE_STDIO = [
  path.join(ROOT, 'node_modules/.bin/tsx'),
  path.join(ROOT, 'cli.ts'),
  'serve',
  '--transport',
  'stdio',
];
/** The static busybox installed by Debian's busybox-static (the kubemcp image carries one too). */
export const LAUNCHER_SOURCE = process.env.KUBEMCP_LAUNCHER_SOURCE ?? '/bin/busybox';

/** Waits until `check` is true, polling every `everyMs`, at most `timeoutMs`. @throws on timeout. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The "server container": runs the launcher argv and restarts it when it exits. */
export class Supervisor {
  child?: ChildProcess;
  starts = 0;
  stderr = '';
  private stopping = false;

  constructor(
    private readonly argv: string[],
    private readonly env: Record<string, string>,
    private readonly maxRestarts = 20,
    private readonly restartDelayMs = 100,
  ) {}

  start(): void {
    if (this.stopping || this.starts > this.maxRestarts) return;
    this.starts++;
    const child = spawn(this.argv[0]!, this.argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: this.env });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
      if (!this.stopping) setTimeout(() => this.start(), this.restartDelayMs).unref();
    });
  }

  /** Kills the running process (SIGKILL) and waits until it has exited; the supervisor restarts it. */
  async kill(): Promise<number> {
    const child = this.child;
    if (!child?.pid) throw new Error('no process running');
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    process.kill(child.pid, 'SIGKILL');
    await exited;
    return child.pid;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
  }
}

/** Options of {@link startBridged}. */
export interface BridgedOptions {
  /** command + args of the stdio server (the spec's command and args). */
  argv: string[];
  env?: Record<string, string>;
  bridge?: Partial<Omit<StdioBridgeOptions, 'paths' | 'log'>>;
  /** Run `kubemcp bridge` as a child process (tsx cli.ts bridge) instead of in this process. */
  cliBridge?: boolean;
  /** Options of the in-process bridge's HTTP side (gateway/http.ts), e.g. `tools`. */
  http?: Partial<BridgeHttpOptions>;
  log?: Logger;
}

/** A bridged server on this machine. */
export interface Bridged {
  paths: BridgePaths;
  url: string;
  base: string;
  server: Supervisor;
  /** The in-process bridge (undefined with cliBridge). */
  bridge?: StdioBridge;
  http?: RunningBridgeHttp;
  bridgeProcess?: ChildProcess;
  bridgeLog: () => string;
  /** A new SDK client session through the bridge. */
  connect: (name?: string) => Promise<Client>;
  /** GET /ready: status code and body. */
  ready: () => Promise<{ status: number; body: ReadyBody }>;
  close: () => Promise<void>;
}

/** The bridge's /ready answer (gateway/http.ts): `ready` with the server's info, or `not ready` with the reason. */
export interface ReadyBody {
  status: string;
  reason?: string;
  serverInfo?: { name: string; version: string };
}

/** Wires and starts a bridged stdio server; resolves once the bridge listens (not necessarily ready). */
export async function startBridged(o: BridgedOptions): Promise<Bridged> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-bridge-'));
  const paths = bridgeInit({ dir, launcherSource: LAUNCHER_SOURCE });
  const server = new Supervisor(launcherArgv(o.argv.slice(0, 1), o.argv.slice(1), dir), {
    ...(process.env as Record<string, string>),
    ...(o.env ?? {}),
  });
  const clients: Client[] = [];
  let bridge: StdioBridge | undefined;
  let http: RunningBridgeHttp | undefined;
  let child: ChildProcess | undefined;
  let log = '';
  let port: number;
  if (o.cliBridge) {
    // node --import tsx (not the tsx launcher): the pid is the bridge's own, for signals and /proc.
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'cli.ts',
        'bridge',
        '--dir',
        dir,
        '--port',
        '0',
        // Access (TokenReview, SAR) is tested by bridge.test.ts and the gateway suites.
        '--auth',
        'none',
        ...(o.bridge?.maxMessageBytes ? ['--max-message-bytes', String(o.bridge.maxMessageBytes)] : []),
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, LOG_LEVEL: 'info' },
      },
    );
    child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-50_000)));
    await until(
      () => /listening on http:\/\/127\.0\.0\.1:\d+\/mcp/.test(log) || child!.exitCode !== null,
      'kubemcp bridge to listen',
      60_000,
    );
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\/mcp/.exec(log);
    if (!m) throw new Error(`kubemcp bridge did not start:\n${log}`);
    port = Number(m[1]);
  } else {
    const logger = o.log ?? pino({ level: 'silent' });
    bridge = new StdioBridge({ paths, log: logger, ...(o.bridge ?? {}) });
    bridge.start();
    http = await startBridgeHttp(bridge, logger, { ...(o.http ?? {}), port: 0 });
    port = http.port;
  }
  server.start();
  const base = `http://127.0.0.1:${port}`;
  return {
    paths,
    url: `${base}/mcp`,
    base,
    server,
    bridge,
    http,
    bridgeProcess: child,
    bridgeLog: () => log,
    connect: async (name = 'bridge-test') => {
      const c = new Client({ name, version: '1.0.0' });
      await c.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
      clients.push(c);
      return c;
    },
    ready: async () => {
      const r = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(10_000) });
      return { status: r.status, body: (await r.json()) as ReadyBody };
    },
    close: async () => {
      for (const c of clients) await c.close().catch(() => undefined);
      await server.stop();
      await http?.close();
      await bridge?.close();
      if (child?.pid && child.exitCode === null) {
        const exited = new Promise<void>((r) => child!.once('exit', () => r()));
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
