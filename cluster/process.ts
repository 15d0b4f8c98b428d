/**
 * Processes of the local cluster: spawn detached with a log file, tell whether a recorded pid
 * still runs our binary, stop by pid (SIGTERM, then SIGKILL), and bounded waits that fail fast
 * when the awaited process died.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import {
  CLUSTER_DIR,
  HEALTH_PROBE_MS,
  LOOPBACK,
  POLL_INTERVAL_MS,
  STOP_KILL_WAIT_MS,
  STOP_TERM_WAIT_MS,
  logFileOf,
  type Component,
} from './paths.js';
import { IN_CLUSTER_CREDENTIALS_DIR, type ClusterState, type ProcessRecord } from './state.js';

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The default progress sink: stderr, prefixed with `[cluster]`. */
export function defaultLog(line: string): void {
  process.stderr.write(`[cluster] ${line}\n`);
}

/** Last `lines` lines of a file, or a note if it cannot be read. */
export function tailFile(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
}

/** An Error naming the component, pointing at its log and quoting the log's tail. */
export function componentError(component: Component, message: string): Error {
  const log = logFileOf(component);
  return new Error(
    `${component}: ${message}\n  log: ${log}\n  last lines of the log:\n${indent(tailFile(log), '    ')}`,
  );
}

/** A short text for any error (an ApiException's code and body start). */
export function errorText(err: unknown): string {
  if (err instanceof ApiException) return `HTTP ${err.code}: ${String(err.body).slice(0, 300)}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Whether `proc.pid` is alive (not a zombie) and still runs `proc.bin`. On Linux this reads
 * /proc/<pid>/stat and /proc/<pid>/cmdline, so a pid reused by an unrelated program is never
 * mistaken for ours; elsewhere it falls back to `kill(pid, 0)`.
 */
export function isProcessRunning(proc: Pick<ProcessRecord, 'pid' | 'bin'>): boolean {
  const procDir = `/proc/${proc.pid}`;
  if (fs.existsSync('/proc/self/stat')) {
    try {
      const stat = fs.readFileSync(`${procDir}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') return false;
      const argv0 = fs.readFileSync(`${procDir}/cmdline`, 'utf8').split('\0')[0];
      return argv0 === proc.bin;
    } catch {
      return false;
    }
  }
  try {
    process.kill(proc.pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resident set size of a pid in KiB (Linux only), or undefined. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** What a probe of {@link pollProgress} observed: the value once done, and the state it saw (progress is a change of it). */
export interface ProgressObservation<T> {
  /** Set when the wait is over. */
  done?: T;
  /** A one-line description of what the probe saw (`pod Pending: ContainerCreating`); a change is progress. */
  state: string;
}

/** Bounds of {@link pollProgress}. */
export interface ProgressOptions {
  /** Fail when the state has not changed for this long, in ms. */
  idleMs: number;
  /** Fail after this long in any case, in ms (a state that keeps changing without ending). */
  maxMs: number;
  /** Pause between attempts, in ms (default {@link POLL_INTERVAL_MS}). */
  intervalMs?: number;
  /** Called with each new state (the demo prints it). */
  onState?: (state: string) => void;
}

/**
 * A wait that follows progress (issue 20): calls `probe` until it reports `done`, and fails only
 * when the state it reports has not changed for `idleMs`, or after `maxMs` in all, so a slow
 * machine that is still moving is waited for while a stuck one fails with what it was stuck on.
 * A probe that throws reports its error as the state.
 * @returns the `done` value.
 * @throws Error `no progress for <idleMs> ms waiting for <what>; last state: <state>`, or
 *   `gave up after <maxMs> ms waiting for <what>; last state: <state>`.
 */
export async function pollProgress<T>(
  what: string,
  probe: () => Promise<ProgressObservation<T>>,
  opts: ProgressOptions,
): Promise<T> {
  const { idleMs, maxMs, intervalMs = POLL_INTERVAL_MS, onState } = opts;
  const start = Date.now();
  let last: string | undefined;
  let changedAt = start;
  const maxAttempts = Math.ceil(maxMs / intervalMs) + 1;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    let obs: ProgressObservation<T>;
    try {
      obs = await probe();
    } catch (err) {
      obs = { state: `error: ${errorText(err)}` };
    }
    if (obs.done !== undefined) return obs.done;
    const now = Date.now();
    if (obs.state !== last) {
      last = obs.state;
      changedAt = now;
      onState?.(obs.state);
    } else if (now - changedAt >= idleMs) {
      throw new Error(`no progress for ${idleMs} ms waiting for ${what}; last state: ${last}`);
    }
    if (now - start >= maxMs) break;
    await sleep(intervalMs);
  }
  throw new Error(`gave up after ${maxMs} ms waiting for ${what}; last state: ${last ?? 'none'}`);
}

/** Bounds and options of {@link poll}. */
export interface PollOptions {
  /** The most time the wait may take, in milliseconds. */
  timeoutMs: number;
  /** Pause between attempts, in milliseconds (default {@link POLL_INTERVAL_MS}). */
  intervalMs?: number;
  /** How an exception thrown by the probe is quoted on timeout (default {@link errorText}). */
  describeError?: (err: unknown) => string;
  /** Asked before each attempt; a message it returns ends the wait at once with that message. */
  stop?: () => string | undefined;
}

/**
 * The bounded wait of this repository (the cluster's start, the tests' `waitFor`, the demo):
 * calls `probe` until it returns a value other than `undefined`, at most
 * `ceil(timeoutMs / intervalMs) + 1` times and for at most `timeoutMs` milliseconds, pausing
 * `intervalMs` between attempts. An exception thrown by `probe` counts as "not yet" (the last
 * one is quoted on timeout).
 *
 * @returns the first value other than `undefined` that `probe` returned
 * @throws Error `timed out after <timeoutMs> ms waiting for <what> (last error: <text>)` when
 *   the time or attempt budget is exhausted, or Error(<message>) when `stop` returns one.
 */
export async function poll<T>(what: string, probe: () => Promise<T | undefined>, opts: PollOptions): Promise<T> {
  const { timeoutMs, intervalMs = POLL_INTERVAL_MS, describeError = errorText, stop } = opts;
  const deadline = Date.now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 1;
  let lastError = '';
  for (let attempt = 1; attempt <= maxAttempts && Date.now() <= deadline; attempt++) {
    const stopped = stop?.();
    if (stopped !== undefined) throw new Error(stopped);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = describeError(err);
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`,
  );
}

/**
 * {@link poll} for a cluster component: polls `check` every {@link POLL_INTERVAL_MS}; before each
 * attempt, `proc` (if given) must still be alive; otherwise it fails at once.
 *
 * @returns the first defined value returned by `check`
 * @throws Error (via {@link componentError}) naming `component` when the time or attempt budget
 *   is exhausted, or when the process died.
 */
export async function waitFor<T>(
  component: Component,
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  proc?: ProcessRecord,
): Promise<T> {
  const stop = () =>
    proc && !isProcessRunning(proc) ? `process ${proc.pid} exited while waiting for ${what}` : undefined;
  try {
    return await poll(what, check, { timeoutMs, stop });
  } catch (err) {
    throw componentError(component, errorText(err));
  }
}

/**
 * Picks `count` distinct free TCP ports on 127.0.0.1 by binding port 0 and releasing it.
 * (Another process could grab a port before our component binds it; the component then fails
 * to start and the error points at its log.)
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, LOOPBACK, () => resolve());
      });
      ports.push((server.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** A plain-object HTTP response. */
export interface HttpResult {
  status: number;
  body: string;
}

/**
 * GET over HTTP(S) with a per-request timeout of {@link HEALTH_PROBE_MS}.
 * @throws on connection errors and timeouts.
 */
export function httpGet(url: string, tls?: https.RequestOptions): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method: 'GET', timeout: HEALTH_PROBE_MS, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${HEALTH_PROBE_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Spawns `bin` detached (own session and process group) as `component`, with stdout and stderr
 * appended to the component's log file, so that it outlives the calling process.
 *
 * @param env variables added to this process's environment (recorded for restarts)
 * @param netns network namespace (`ip netns` name) to run in: started through
 *   `nsenter --net=/run/netns/<netns>`, which then execs `bin` in the same pid (only the network
 *   namespace changes; mounts stay shared with the host, as the kubelet and containerd need)
 * @param inClusterCredentials a directory (token, ca.crt) mounted at
 *   {@link IN_CLUSTER_CREDENTIALS_DIR} in a private mount namespace of this process only
 *   (`unshare --mount`; a tmpfs over /run there), for programs that know only in-cluster config
 * @throws Error if the executable cannot be started (or, in a netns, does not exec within 5 s).
 */
export async function startProcess(
  component: Component,
  bin: string,
  args: string[],
  env: Record<string, string> = {},
  netns?: string,
  inClusterCredentials?: string,
): Promise<ProcessRecord> {
  const log = logFileOf(component);
  fs.mkdirSync(path.dirname(log), { recursive: true });
  const fd = fs.openSync(log, 'a');
  fs.writeSync(fd, `# ${new Date().toISOString()} ${bin} ${args.join(' ')}\n`);
  try {
    // In-cluster credentials: a private mount namespace (unshare execs in the same pid), a tmpfs
    // over /run there (/var/run -> /run on Debian) holding the bind-mounted directory, then an
    // exec of `bin` as argv0, so isProcessRunning still recognizes the pid.
    const target = IN_CLUSTER_CREDENTIALS_DIR.replace(/^\/var\/run\//, '/run/');
    const inner: [string, string[]] = inClusterCredentials
      ? [
          'unshare',
          [
            '--mount',
            '--propagation',
            'private',
            '--',
            '/bin/sh',
            '-c',
            `set -e; mount -t tmpfs -o mode=0755,size=1m kubemcp /run; mkdir -p ${target}; mount --bind "$KUBEMCP_CREDENTIALS" ${target}; unset KUBEMCP_CREDENTIALS; exec "$0" "$@"`,
            bin,
            ...args,
          ],
        ]
      : [bin, args];
    const [file, argv] = netns ? ['nsenter', [`--net=/run/netns/${netns}`, '--', inner[0], ...inner[1]]] : inner;
    const child = spawn(file, argv, {
      cwd: CLUSTER_DIR,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...env, ...(inClusterCredentials ? { KUBEMCP_CREDENTIALS: inClusterCredentials } : {}) },
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid as number));
    });
    child.unref();
    const rec: ProcessRecord = {
      component,
      pid,
      bin,
      log,
      ...(Object.keys(env).length ? { env } : {}),
      ...(netns ? { netns } : {}),
      ...(inClusterCredentials ? { inClusterCredentials } : {}),
    };
    for (let i = 0; (netns || inClusterCredentials) && i < 50 && !isProcessRunning(rec); i++) await sleep(100); // nsenter execs bin
    if ((netns || inClusterCredentials) && !isProcessRunning(rec))
      throw new Error(`nsenter/unshare did not exec ${bin} (netns ${netns ?? 'host'}) within 5 s`);
    return rec;
  } catch (err) {
    throw componentError(component, `cannot start ${bin}: ${(err as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Stops one process by pid: SIGTERM, up to {@link STOP_TERM_WAIT_MS} ms for it to exit, then
 * SIGKILL and up to {@link STOP_KILL_WAIT_MS} ms more. Does nothing if the pid no longer runs
 * `proc.bin`.
 *
 * @throws Error if the process survives SIGKILL.
 */
export async function stopProcess(proc: ProcessRecord, log: (line: string) => void): Promise<void> {
  if (!isProcessRunning(proc)) return;
  const waitExit = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    for (let i = 0; i < Math.ceil(ms / 100) + 1 && Date.now() <= deadline; i++) {
      if (!isProcessRunning(proc)) return true;
      await sleep(100);
    }
    return !isProcessRunning(proc);
  };
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(proc.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  signal('SIGTERM');
  if (await waitExit(STOP_TERM_WAIT_MS)) {
    log(`stopped ${proc.component} (pid ${proc.pid})`);
    return;
  }
  log(`${proc.component} (pid ${proc.pid}) ignored SIGTERM for ${STOP_TERM_WAIT_MS} ms, sending SIGKILL`);
  signal('SIGKILL');
  if (await waitExit(STOP_KILL_WAIT_MS)) return;
  throw componentError(proc.component, `process ${proc.pid} survived SIGKILL`);
}

/** Stops the processes of `state` in reverse start order; collects and rethrows failures. */
export async function stopAll(state: ClusterState, log: (line: string) => void): Promise<void> {
  const failures: string[] = [];
  for (const proc of [...state.processes].reverse()) {
    try {
      await stopProcess(proc, log);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) throw new Error(`could not stop every component:\n${failures.join('\n')}`);
}
