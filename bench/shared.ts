/**
 * Pieces the benches share (and test/package.test.ts, which drives the installed bin the way
 * `npm run bench:start` does): the bench pods, stopping an MCP server started over stdio, integer
 * flags, percentiles, a process's CPU time and RSS, a free loopback port, server-everything's echo.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

/**
 * Creates `n` pods `bench-0000`... in namespace `ns` (labels `app=bench`, `shard=<i % 10>`; one
 * nginx container requesting 1m CPU and 1Mi), `concurrency` requests at a time. On kwok's node
 * they become Running without running anything.
 * @throws the apiserver's error for the first pod it refuses (e.g. 409 when one exists).
 */
export async function createPods(core: k8s.CoreV1Api, ns: string, n: number, concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: `bench-${String(i).padStart(4, '0')}`, labels: { app: 'bench', shard: String(i % 10) } },
          spec: {
            containers: [{ name: 'c', image: 'nginx:1.27', resources: { requests: { cpu: '1m', memory: '1Mi' } } }],
          },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * Closes `client` (errors ignored) and sends SIGTERM to the stdio server process `transport`
 * started, by its pid, in case closing stdin did not end it. Never throws.
 */
export async function closeStdio(client: Client, transport: StdioClientTransport): Promise<void> {
  await client.close().catch(() => undefined);
  if (transport.pid) {
    try {
      process.kill(transport.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}

/**
 * The integer value of flag `--<name>` on the command line, else `def`.
 * @throws Error naming the flag when it is not an integer from 1 to 100000.
 */
export function intArg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isInteger(v) || v < 1 || v > 100_000) throw new Error(`--${name} must be an integer from 1 to 100000`);
  return v;
}

/** The `p`th percentile (nearest rank) of `xs`, which must not be empty. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** CPU time (user + system) of a process in ms, from /proc/<pid>/stat (clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Resident set size of a process in MiB to 0.1 (/proc/<pid>/status VmRSS); NaN when unreadable there. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
}

/** A port free on 127.0.0.1 now (bound and released). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** One call of server-everything's `echo` tool. @throws Error when the answer is not the echo of call `i`. */
export async function echo(c: Pick<Client, 'callTool'> | EchoClient, i: number): Promise<void> {
  const r = await (c as EchoClient).callTool({ name: 'echo', arguments: { message: `m${i}` } });
  if ((r.content as Array<{ text?: string }>)[0]?.text !== `Echo: m${i}`) throw new Error(`wrong answer to call ${i}`);
}

/** Any MCP client with a one-argument callTool (the SDK v1 and v2 clients both are). */
export interface EchoClient {
  callTool(params: { name: string; arguments: Record<string, unknown> }): Promise<{ content?: unknown }>;
}

/** ToolHive release used as the peer (the last one whose module builds with Go 1.26 and the module proxy here). */
export const TOOLHIVE_VERSION = 'v0.47.0';
/** Where the benches build ToolHive's binaries, once. */
export const TOOLHIVE_DIR = path.join(homedir(), '.cache', 'kubemcp', `toolhive-${TOOLHIVE_VERSION}`);
/** The environment of the benches' `go` commands: the local toolchain, no VCS stamping. */
export const GO_ENV = { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-buildvcs=false' };

/**
 * A writable copy of ToolHive's module source at {@link TOOLHIVE_VERSION} in `dest` (replaced),
 * from the Go module proxy; its own go.mod/go.sum pin every dependency.
 * @throws Error from `go mod download` or the copy.
 */
export function toolhiveSource(dest: string): void {
  const { Dir } = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', `github.com/stacklok/toolhive@${TOOLHIVE_VERSION}`], {
      env: GO_ENV,
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    }),
  ) as { Dir: string };
  rmSync(dest, { recursive: true, force: true });
  cpSync(Dir, dest, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', dest]);
}
