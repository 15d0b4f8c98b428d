/**
 * A real, local Kubernetes control plane on loopback, for tests and demos.
 *
 * Everything runs as plain processes built from source by `build.sh` (no containers, no
 * downloads beyond the Go module proxy): etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok. kwok plays the kubelet for one fake node (`kwok-node-0`), so
 * Deployments, ReplicaSets and Pods go through the real controllers and scheduler and their pods
 * become Running/Ready without any container runtime. kwok also serves pod logs (a fixed,
 * CRI-formatted file) through the apiserver's usual `pods/log` path.
 *
 * Layout (all under {@link CLUSTER_DIR}, i.e. `<repo>/.cluster/`, which is git-ignored):
 * - `kubeconfig`        admin kubeconfig (context `kubemcp`, user in group system:masters)
 * - `state.json`        {@link ClusterState}: pids, ports, bin dir, start time
 * - `logs/<name>.log`   one log per component (the previous run's log is kept as `.log.prev`)
 * - `pki/`              CA, serving and client certificates, service-account key pair, and
 *                       the per-component kubeconfigs
 * - `etcd/`             etcd data dir; `kwok/` kwok's work dir; `pod.log` the fake pod log
 *
 * Every process binds 127.0.0.1 only, on ports chosen at runtime. Processes are spawned
 * detached, so the cluster outlives the process that started it (`npm run cluster:up`), and
 * they are stopped by pid only ({@link clusterDown}). Every wait is bounded in both attempts
 * and time; a failed wait throws an Error naming the component, its log file and the log's tail.
 *
 * @module
 */
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  loadAllYaml,
  type KubernetesObject,
  type V1CustomResourceDefinition,
  type V1Node,
} from '@kubernetes/client-node';
import { stringify as toYaml } from 'yaml';

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Paths and constants
// ---------------------------------------------------------------------------------------------

/** Directory of this module: `<repo>/test/controlplane`. */
export const CONTROLPLANE_DIR = path.dirname(fileURLToPath(import.meta.url));
/** Repository root, derived from this module's own location (not from `process.cwd()`). */
export const REPO_ROOT = path.resolve(CONTROLPLANE_DIR, '..', '..');
/** Root of all runtime state of the local cluster: `<repo>/.cluster`. */
export const CLUSTER_DIR = path.join(REPO_ROOT, '.cluster');
/** Admin kubeconfig of the local cluster (context {@link CONTEXT_NAME}). */
export const KUBECONFIG_PATH = path.join(CLUSTER_DIR, 'kubeconfig');
/** JSON file describing the running cluster, see {@link ClusterState}. */
export const STATE_PATH = path.join(CLUSTER_DIR, 'state.json');
/** Directory of the component logs, `<component>.log`; kept by {@link clusterDown}. */
export const LOG_DIR = path.join(CLUSTER_DIR, 'logs');
/** Certificates, keys and per-component kubeconfigs. */
export const PKI_DIR = path.join(CLUSTER_DIR, 'pki');
/** etcd's data directory. */
export const ETCD_DATA_DIR = path.join(CLUSTER_DIR, 'etcd');
/** kwok's work dir (`KWOK_WORKDIR`), so that a user's `~/.kwok/kwok.yaml` is never picked up. */
export const KWOK_WORK_DIR = path.join(CLUSTER_DIR, 'kwok');
/** The CRI-formatted file kwok serves as every container's log. */
export const FAKE_POD_LOG_PATH = path.join(CLUSTER_DIR, 'pod.log');
/**
 * The apiserver's audit log: JSON lines at Metadata level for write requests only
 * (create, update, patch, delete, deletecollection), so tests can count what a client wrote.
 */
export const AUDIT_LOG_PATH = path.join(CLUSTER_DIR, 'logs', 'audit.log');
/** The audit policy behind {@link AUDIT_LOG_PATH} (audit.k8s.io/v1). */
export const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`;
/** PID file of a `kubemcp controller` started by `npm run demo`; {@link clusterDown} stops it too. */
export const CONTROLLER_PID_FILE = path.join(CLUSTER_DIR, 'controller.pid');
/** Lock file serialising concurrent `up`/`down` calls (holds the owner's pid). */
export const LOCK_PATH = path.join(CLUSTER_DIR, 'lock');
/** kwok Stage objects (copied from sigs.k8s.io/kwok@v0.8.0/kustomize/stage). */
export const STAGES_DIR = path.join(CONTROLPLANE_DIR, 'stages');
/** kwok CRDs (Stage, Logs, ClusterLogs; copied from sigs.k8s.io/kwok@v0.8.0/kustomize/crd). */
export const CRDS_DIR = path.join(STAGES_DIR, 'crds');
/** The script that builds (or finds cached) binaries and prints their directory last. */
export const BUILD_SCRIPT = path.join(CONTROLPLANE_DIR, 'build.sh');

/** kubeconfig context, cluster and user name prefix. */
export const CONTEXT_NAME = 'kubemcp';
/** Name of the single fake node managed by kwok. */
export const NODE_NAME = 'kwok-node-0';
/** Annotation kwok selects its nodes by (`--manage-nodes-with-annotation-selector`). */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
/** Duration of the fake node's Lease, renewed by kwok (kubelet's default is 40 s). */
export const NODE_LEASE_SECONDS = 40;
/** Service CIDR of the cluster; the apiserver's serving cert includes its first address. */
export const SERVICE_CIDR = '10.96.0.0/16';
/** First service IP (the `kubernetes` Service's ClusterIP). */
export const FIRST_SERVICE_IP = '10.96.0.1';
/** Pod CIDR kwok assigns fake pod IPs from. */
export const POD_CIDR = '10.244.0.0/16';
const LOOPBACK = '127.0.0.1';
const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** Component names, in start order ({@link clusterDown} stops them in reverse). */
export const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
/** One of {@link COMPONENTS}; also the binary's file name in the bin dir. */
export type Component = (typeof COMPONENTS)[number];

// Bounds of the waits, in milliseconds.
const BUILD_TIMEOUT_MS = 90 * 60_000; // a cold build is 20-40 min on 2 cores
const ETCD_READY_MS = 30_000;
const APISERVER_READY_MS = 120_000;
const COMPONENT_READY_MS = 60_000;
const CRD_ESTABLISHED_MS = 30_000;
const NODE_READY_MS = 60_000;
const SERVICE_ACCOUNT_MS = 60_000;
const HEALTH_PROBE_MS = 2_000; // timeout of one HTTP probe
const POLL_INTERVAL_MS = 250;
const LOCK_WAIT_MS = BUILD_TIMEOUT_MS + 10 * 60_000; // the holder may be building the binaries
const STOP_TERM_WAIT_MS = 10_000;
const STOP_KILL_WAIT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** A process started by {@link clusterUp}. */
export interface ProcessRecord {
  /** Which component this is. */
  component: Component;
  /** OS process id. */
  pid: number;
  /** Absolute path of the executable; used to make sure a pid was not reused by another program. */
  bin: string;
  /** Absolute path of its log file (stdout and stderr). */
  log: string;
}

/** TCP ports on 127.0.0.1, all chosen at runtime. */
export interface ClusterPorts {
  etcdClient: number;
  etcdPeer: number;
  /** kube-apiserver's secure port; the kubeconfig's server is `https://127.0.0.1:<apiserver>`. */
  apiserver: number;
  /** kube-controller-manager's secure (healthz/metrics) port. */
  controllerManager: number;
  /** kube-scheduler's secure (healthz/metrics) port. */
  scheduler: number;
  /** kwok's server: the fake kubelet API (logs, healthz); also the node's kubelet port. */
  kwok: number;
}

/** Contents of {@link STATE_PATH}. */
export interface ClusterState {
  /** Format version of this file. */
  version: 1;
  /** True once every component is up, the node is Ready and the default ServiceAccount exists. */
  ready: boolean;
  /** ISO 8601 time the start began. */
  startedAt: string;
  /** Milliseconds from the start to ready (absent until ready). */
  startupMs?: number;
  /** Directory holding the binaries (from build.sh). */
  binDir: string;
  /** apiserver URL, `https://127.0.0.1:<port>`. */
  server: string;
  ports: ClusterPorts;
  /** Started processes, in start order. */
  processes: ProcessRecord[];
}

/** Result of {@link clusterUp}. */
export interface ClusterInfo {
  /** True if an already running cluster was found healthy and reused. */
  reused: boolean;
  /** Admin kubeconfig path ({@link KUBECONFIG_PATH}). */
  kubeconfig: string;
  /** kubeconfig context name ({@link CONTEXT_NAME}). */
  context: string;
  /** apiserver URL, `https://127.0.0.1:<port>`. */
  server: string;
  /** The cluster's state as recorded in {@link STATE_PATH}. */
  state: ClusterState;
  /** Milliseconds this call took. */
  elapsedMs: number;
}

/** Options of {@link clusterUp}. */
export interface ClusterUpOptions {
  /** Progress sink, one line per call; default: stderr, prefixed with `[cluster]`. */
  log?: (line: string) => void;
  /** Use binaries from this directory instead of running build.sh. */
  binDir?: string;
}

/** Per-component status reported by {@link clusterStatus}. */
export interface ComponentStatus extends ProcessRecord {
  /** Whether the pid is alive and still runs {@link ProcessRecord.bin}. */
  alive: boolean;
  /** Resident set size in KiB (from /proc), if alive and readable. */
  rssKiB?: number;
}

/** Result of {@link clusterStatus}. */
export interface ClusterStatus {
  /** Contents of state.json, or undefined when no cluster was started. */
  state?: ClusterState;
  /** One entry per recorded process. */
  components: ComponentStatus[];
  /** Whether GET /readyz on the apiserver answered 200. */
  apiserverReady: boolean;
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function defaultLog(line: string): void {
  process.stderr.write(`[cluster] ${line}\n`);
}

/** Log file path of a component. */
export function logFileOf(component: Component): string {
  return path.join(LOG_DIR, `${component}.log`);
}

/** Last `lines` lines of a file, or a note if it cannot be read. */
function tailFile(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}

/** An Error naming the component, pointing at its log and quoting the log's tail. */
function componentError(component: Component, message: string): Error {
  const log = logFileOf(component);
  return new Error(`${component}: ${message}\n  log: ${log}\n  last lines of the log:\n${indent(tailFile(log), '    ')}`);
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
}

function errorText(err: unknown): string {
  if (err instanceof ApiException) return `HTTP ${err.code}: ${String(err.body).slice(0, 300)}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Polls `check` until it returns a value other than `undefined`, at most
 * `ceil(timeoutMs / intervalMs) + 1` times and for at most `timeoutMs` milliseconds.
 * Before each attempt, `process` (if given) must still be alive; otherwise it fails at once.
 * Exceptions thrown by `check` count as "not yet" (the last one is quoted on timeout).
 *
 * @returns the first defined value returned by `check`
 * @throws Error (via {@link componentError}) naming `component` when the time or attempt budget
 *   is exhausted, or when the process died.
 */
async function waitFor<T>(
  component: Component,
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  proc?: ProcessRecord,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / POLL_INTERVAL_MS) + 1;
  let lastError = '';
  for (let attempt = 1; attempt <= maxAttempts && Date.now() <= deadline; attempt++) {
    if (proc && !isProcessRunning(proc)) {
      throw componentError(component, `process ${proc.pid} exited while waiting for ${what}`);
    }
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = errorText(err);
    }
    await sleep(POLL_INTERVAL_MS);
  }
  const last = lastError ? ` (last error: ${lastError})` : '';
  throw componentError(component, `timed out after ${timeoutMs} ms waiting for ${what}${last}`);
}

/**
 * Picks `count` distinct free TCP ports on 127.0.0.1 by binding port 0 and releasing it.
 * (Another process could grab a port before our component binds it; the component then fails
 * to start and the error points at its log.)
 */
async function freePorts(count: number): Promise<number[]> {
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
interface HttpResult {
  status: number;
  body: string;
}

/**
 * GET over HTTP(S) with a per-request timeout of {@link HEALTH_PROBE_MS}.
 * @throws on connection errors and timeouts.
 */
function httpGet(url: string, tls?: https.RequestOptions): Promise<HttpResult> {
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

/** TLS options that trust our CA and present the admin client certificate. */
function adminTls(): https.RequestOptions {
  return {
    ca: fs.readFileSync(path.join(PKI_DIR, 'ca.crt')),
    cert: fs.readFileSync(path.join(PKI_DIR, 'admin.crt')),
    key: fs.readFileSync(path.join(PKI_DIR, 'admin.key')),
  };
}

/** True if GET `<server>/readyz` answers 200 (any error counts as false). */
async function apiserverReady(server: string): Promise<boolean> {
  try {
    const res = await httpGet(`${server}/readyz`, adminTls());
    return res.status === 200;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

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
function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Spawns a component detached (own session and process group), with stdout and stderr appended to
 * its log file, so that it outlives the calling process.
 *
 * @throws Error if the executable cannot be started.
 */
async function startProcess(
  component: Component,
  binDir: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<ProcessRecord> {
  const bin = path.join(binDir, component);
  const log = logFileOf(component);
  const fd = fs.openSync(log, 'a');
  fs.writeSync(fd, `# ${new Date().toISOString()} ${bin} ${args.join(' ')}\n`);
  try {
    const child = spawn(bin, args, {
      cwd: CLUSTER_DIR,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...env },
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid as number));
    });
    child.unref();
    return { component, pid, bin, log };
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
async function stopProcess(proc: ProcessRecord, log: (line: string) => void): Promise<void> {
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
async function stopAll(state: ClusterState, log: (line: string) => void): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// State and lock
// ---------------------------------------------------------------------------------------------

/** Reads {@link STATE_PATH}; undefined if absent or unparsable. */
export function readState(): ClusterState | undefined {
  try {
    const state = JSON.parse(fs.readFileSync(STATE_PATH, 'utf8')) as ClusterState;
    return state.version === 1 && Array.isArray(state.processes) ? state : undefined;
  } catch {
    return undefined;
  }
}

/** Writes {@link STATE_PATH} atomically (temp file + rename). */
function writeState(state: ClusterState): void {
  const tmp = `${STATE_PATH}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  fs.renameSync(tmp, STATE_PATH);
}

/**
 * Runs `fn` holding {@link LOCK_PATH}, so that concurrent `up`/`down` calls (say, `npm run
 * cluster:up` and a jest run) do not start two clusters. A stale lock (see {@link lockIsStale})
 * is taken over; a live holder is waited for, since its own work is bounded (a cold build included).
 *
 * @throws Error if a live owner holds the lock for more than {@link LOCK_WAIT_MS} ms.
 */
async function withLock<T>(log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(CLUSTER_DIR, { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  let announced = false;
  let acquired = false;
  for (let attempt = 0; attempt < LOCK_WAIT_MS / 500 + 10 && !acquired; attempt++) {
    try {
      fs.writeFileSync(LOCK_PATH, String(process.pid), { flag: 'wx' });
      acquired = true;
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (lockIsStale()) {
      fs.rmSync(LOCK_PATH, { force: true });
      continue;
    }
    const owner = readLockOwner();
    if (Date.now() > deadline) {
      throw new Error(`cluster lock ${LOCK_PATH} is held by pid ${owner} for more than ${LOCK_WAIT_MS} ms`);
    }
    if (!announced) log(`waiting for pid ${owner}, which holds ${LOCK_PATH}`);
    announced = true;
    await sleep(500);
  }
  if (!acquired) throw new Error(`could not acquire the cluster lock ${LOCK_PATH}`);
  try {
    return await fn();
  } finally {
    fs.rmSync(LOCK_PATH, { force: true });
  }
}

/** The pid written in {@link LOCK_PATH}, or undefined if absent, empty or garbled. */
function readLockOwner(): number | undefined {
  try {
    const pid = Number(fs.readFileSync(LOCK_PATH, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether {@link LOCK_PATH} can be taken over: its owner pid is dead, or it has held no valid pid
 * for more than 5 s (a lock is created and written in one call, so that only happens to a lock
 * file damaged by a crash).
 */
function lockIsStale(): boolean {
  const owner = readLockOwner();
  if (owner === undefined) {
    try {
      return Date.now() - fs.statSync(LOCK_PATH).mtimeMs > 5_000;
    } catch {
      return true; // vanished meanwhile
    }
  }
  try {
    process.kill(owner, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

/** Removes runtime state (state, kubeconfig, pki, etcd data, kwok work dir); keeps logs. */
function removeRuntimeState(): void {
  for (const p of [STATE_PATH, KUBECONFIG_PATH, PKI_DIR, ETCD_DATA_DIR, KWOK_WORK_DIR, FAKE_POD_LOG_PATH]) {
    fs.rmSync(p, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------------

/**
 * Builds (or finds cached) control-plane binaries by running `build.sh`, whose progress (stderr)
 * is streamed to our stderr. A cold build takes 20-40 minutes; a cached one returns at once.
 *
 * @returns absolute path of the directory holding etcd, kube-apiserver, kube-controller-manager,
 *   kube-scheduler and kwok (the last line build.sh prints on stdout)
 * @throws Error if build.sh fails, runs longer than 90 minutes, or a binary is missing.
 */
export async function ensureBinaries(): Promise<string> {
  const child = spawn('bash', [BUILD_SCRIPT], {
    cwd: CONTROLPLANE_DIR,
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true, // own process group, so a timeout can stop `go build` too
  });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const timer = setTimeout(() => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }, BUILD_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`${BUILD_SCRIPT} failed (exit code ${code}); see its output above`);
  const dir = stdout.trim().split('\n').pop()?.trim() ?? '';
  if (!path.isAbsolute(dir)) throw new Error(`${BUILD_SCRIPT} did not print a bin dir on its last line (got "${dir}")`);
  for (const component of COMPONENTS) {
    try {
      fs.accessSync(path.join(dir, component), fs.constants.X_OK);
    } catch {
      throw new Error(`${BUILD_SCRIPT}: ${path.join(dir, component)} is missing or not executable`);
    }
  }
  return dir;
}

// ---------------------------------------------------------------------------------------------
// PKI and kubeconfigs
// ---------------------------------------------------------------------------------------------

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd: PKI_DIR });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** openssl arguments for a new ECDSA P-256 key (much faster to generate than RSA; Go and Node accept it). */
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

/** Issues `<name>.key`/`<name>.crt` signed by CA `<ca>.{crt,key}`, with the given subject and extensions. */
async function issueCert(name: string, subject: string, extensions: string[], ca = 'ca'): Promise<void> {
  fs.writeFileSync(path.join(PKI_DIR, `${name}.ext`), extensions.join('\n') + '\n');
  await openssl(['req', '-new', '-nodes', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  await openssl([
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days', '3650', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
  ]);
}

/**
 * Generates with openssl, in {@link PKI_DIR}:
 * - `ca.{key,crt}`: the cluster CA (client CA, signs everything below);
 * - `apiserver.*`: serving cert, SANs 127.0.0.1, localhost, {@link FIRST_SERVICE_IP}, kubernetes.default...;
 * - `loopback-serving.*`: serving cert for 127.0.0.1/localhost (controller-manager, scheduler, kwok);
 * - `admin.*` (CN kubernetes-admin, O system:masters), `controller-manager.*`
 *   (CN system:kube-controller-manager), `scheduler.*` (CN system:kube-scheduler),
 *   `apiserver-kubelet-client.*` (O system:masters): client certs;
 * - `front-proxy-ca.*` and `front-proxy-client.*` (signed by it): the request-header (aggregation)
 *   client CA and the apiserver's proxy client cert;
 * - `sa.key`/`sa.pub`: service-account token signing key pair (ES256).
 * All keys are ECDSA P-256.
 */
async function generatePki(): Promise<void> {
  fs.mkdirSync(PKI_DIR, { recursive: true, mode: 0o700 });
  const newCa = (name: string, cn: string): Promise<void> =>
    openssl([
      'req', '-x509', '-new', '-nodes', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`,
      '-days', '3650', '-sha256', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
  await Promise.all([newCa('ca', 'kubemcp-local-ca'), newCa('front-proxy-ca', 'kubemcp-local-front-proxy-ca')]);
  const serverExt = (sans: string): string[] => [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${sans}`,
  ];
  const clientExt = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
  ];
  await Promise.all([
    issueCert(
      'apiserver',
      '/CN=kube-apiserver',
      serverExt(
        `IP:${LOOPBACK},DNS:localhost,IP:${FIRST_SERVICE_IP},DNS:kubernetes,DNS:kubernetes.default,` +
          'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
      ),
    ),
    issueCert('loopback-serving', '/CN=localhost', serverExt(`IP:${LOOPBACK},DNS:localhost,DNS:${NODE_NAME}`)),
    issueCert('admin', '/O=system:masters/CN=kubernetes-admin', clientExt),
    issueCert('controller-manager', '/CN=system:kube-controller-manager', clientExt),
    issueCert('scheduler', '/CN=system:kube-scheduler', clientExt),
    issueCert('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', clientExt),
    issueCert('front-proxy-client', '/CN=front-proxy-client', clientExt, 'front-proxy-ca'),
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key']).then(() =>
      openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']),
    ),
  ]);
}

/** Writes a kubeconfig with embedded CA and client cert `<certName>.{crt,key}` from {@link PKI_DIR}. */
function writeKubeconfig(file: string, server: string, certName: string, user: string): void {
  const b64 = (name: string): string => fs.readFileSync(path.join(PKI_DIR, name)).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: CONTEXT_NAME, cluster: { server, 'certificate-authority-data': b64('ca.crt') } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(`${certName}.crt`), 'client-key-data': b64(`${certName}.key`) } }],
    contexts: [{ name: CONTEXT_NAME, context: { cluster: CONTEXT_NAME, user } }],
    'current-context': CONTEXT_NAME,
    preferences: {},
  };
  fs.writeFileSync(file, toYaml(config), { mode: 0o600 });
}

// ---------------------------------------------------------------------------------------------
// Kubernetes objects
// ---------------------------------------------------------------------------------------------

/** An admin KubeConfig for the local cluster, loaded from {@link KUBECONFIG_PATH}. */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG_PATH);
  return kc;
}

/**
 * Objects of every `*.yaml` file in `dir` (sorted by name). `loadAllYaml` deserialises built-in
 * kinds into the client's model classes, so typed calls serialise every field they carry.
 */
function loadYamlDir(dir: string): KubernetesObject[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => loadAllYaml(fs.readFileSync(path.join(dir, f), 'utf8')) as (KubernetesObject | null)[])
    .filter((o): o is KubernetesObject => o !== null && typeof o === 'object');
}

/**
 * Runs `create` until it succeeds or answers 409 Conflict (already exists), retrying other errors
 * (bounded by {@link CRD_ESTABLISHED_MS}).
 */
async function createIdempotently(what: string, create: () => Promise<unknown>): Promise<void> {
  await waitFor('kube-apiserver', `creation of ${what}`, CRD_ESTABLISHED_MS, async () => {
    try {
      await create();
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw err;
    }
    return true;
  });
}

/**
 * Applies kwok's CRDs ({@link CRDS_DIR}), waits until they are Established, then creates the
 * Stage objects ({@link STAGES_DIR}) and a ClusterLogs object serving {@link FAKE_POD_LOG_PATH}
 * as every container's log. Custom objects are created through their plural REST path (taken
 * from the CRDs), which is served as soon as the CRD is Established, without waiting for
 * discovery to catch up.
 */
async function applyKwokResources(kc: KubeConfig): Promise<void> {
  const apiext = kc.makeApiClient(ApiextensionsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const crds = loadYamlDir(CRDS_DIR) as V1CustomResourceDefinition[];
  for (const crd of crds) {
    await createIdempotently(`CRD ${crd.metadata?.name}`, () => apiext.createCustomResourceDefinition({ body: crd }));
  }
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    await waitFor('kube-apiserver', `CRD ${name} to be Established`, CRD_ESTABLISHED_MS, async () => {
      const live = await apiext.readCustomResourceDefinition({ name });
      return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }

  /** Creates a cluster-scoped custom object of one of the CRDs above. */
  const createCustom = async (obj: KubernetesObject): Promise<void> => {
    const [group = '', version = ''] = (obj.apiVersion ?? '').split('/');
    const crd = crds.find((c) => c.spec.group === group && c.spec.names.kind === obj.kind);
    if (!crd || crd.spec.scope !== 'Cluster') throw new Error(`no cluster-scoped CRD in ${CRDS_DIR} for ${obj.apiVersion} ${obj.kind}`);
    await createIdempotently(`${obj.kind}/${obj.metadata?.name}`, () =>
      custom.createClusterCustomObject({ group, version, plural: crd.spec.names.plural, body: obj }),
    );
  };
  for (const stage of loadYamlDir(STAGES_DIR)) await createCustom(stage);
  fs.writeFileSync(
    FAKE_POD_LOG_PATH,
    `${new Date().toISOString()} stdout F kwok: this container is simulated, it has no real output\n`,
  );
  await createCustom({
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'ClusterLogs',
    metadata: { name: 'default' },
    spec: { logs: [{ logsFile: FAKE_POD_LOG_PATH, follow: false }] },
  } as KubernetesObject);
}

/**
 * The fake node: annotated for kwok, labelled `type: kwok`, sized for scale tests: 2000 CPUs,
 * 4Ti memory, 10000 pods, i.e. 10,000 pods at the largest default request (streamable-http
 * 200m/256Mi), so the controller benchmark (4 x 1,000 MCPServers' pods at once: controller, two
 * raw appliers, a peer operator) measures the controller and not the scheduler refusing pods.
 * Node status may be set on create; kwok's node-initialize stage keeps capacity/allocatable.
 */
function fakeNode(): V1Node {
  const resources = { cpu: '2000', memory: '4Ti', pods: '10000', 'ephemeral-storage': '100Ti' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: NODE_NAME,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake' },
      labels: {
        type: 'kwok',
        'kubernetes.io/hostname': NODE_NAME,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
      },
    },
    status: { allocatable: resources, capacity: resources },
  };
}

function nodeIsReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

// ---------------------------------------------------------------------------------------------
// up / down / status
// ---------------------------------------------------------------------------------------------

/**
 * Checks whether the cluster recorded in state.json is usable: marked ready, every process
 * alive, and the apiserver's /readyz answering 200.
 *
 * @returns undefined if usable, else the reason it is not
 */
async function unhealthyReason(state: ClusterState): Promise<string | undefined> {
  if (!state.ready) return 'its start did not complete';
  const dead = state.processes.filter((p) => !isProcessRunning(p)).map((p) => `${p.component} (pid ${p.pid})`);
  if (dead.length > 0) return `not running: ${dead.join(', ')}`;
  if (!(await apiserverReady(state.server))) return `${state.server}/readyz does not answer 200`;
  return undefined;
}

/**
 * Starts the local control plane, or reuses the one recorded in {@link STATE_PATH} if it is
 * healthy (ready, all pids alive, /readyz 200). A recorded but unhealthy cluster is stopped and
 * wiped first (logs are kept). A fresh start: builds/finds binaries, generates the PKI, starts
 * etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on free loopback ports,
 * applies kwok's CRDs and stages, creates node {@link NODE_NAME}, and waits until every component
 * is healthy, the node is Ready and ServiceAccount default/default exists. If any of that fails,
 * the processes started so far are stopped before the error is rethrown.
 * Typically ~10-20 s with cached binaries.
 *
 * @returns {@link ClusterInfo}; its `kubeconfig` is the admin kubeconfig (context `kubemcp`)
 * @throws Error naming the failing component and its log file (see {@link logFileOf}).
 */
export async function clusterUp(opts: ClusterUpOptions = {}): Promise<ClusterInfo> {
  const t0 = Date.now();
  const userLog = opts.log ?? defaultLog;
  const log = (line: string): void => userLog(`${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s ${line}`);
  return withLock(log, async () => {
    const previous = readState();
    if (previous) {
      const reason = await unhealthyReason(previous);
      if (reason === undefined) {
        log(`reusing the running cluster at ${previous.server} (started ${previous.startedAt})`);
        return {
          reused: true,
          kubeconfig: KUBECONFIG_PATH,
          context: CONTEXT_NAME,
          server: previous.server,
          state: previous,
          elapsedMs: Date.now() - t0,
        };
      }
      log(`recorded cluster is unusable (${reason}); stopping what is left of it`);
      await stopAll(previous, log);
    }
    removeRuntimeState();

    const binDir = opts.binDir ?? (await ensureBinaries());
    const state = await startFresh(binDir, log, t0);
    return {
      reused: false,
      kubeconfig: KUBECONFIG_PATH,
      context: CONTEXT_NAME,
      server: state.server,
      state,
      elapsedMs: Date.now() - t0,
    };
  });
}

/** The fresh-start part of {@link clusterUp}; called with the lock held and state removed. */
async function startFresh(binDir: string, log: (line: string) => void, t0: number): Promise<ClusterState> {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  fs.mkdirSync(KWOK_WORK_DIR, { recursive: true });
  for (const component of COMPONENTS) {
    const file = logFileOf(component);
    if (fs.existsSync(file)) fs.renameSync(file, `${file}.prev`);
  }
  const [etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kwok] = (await freePorts(6)) as [
    number, number, number, number, number, number,
  ];
  const server = `https://${LOOPBACK}:${apiserver}`;
  const state: ClusterState = {
    version: 1,
    ready: false,
    startedAt: new Date(t0).toISOString(),
    binDir,
    server,
    ports: { etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kwok },
    processes: [],
  };
  writeState(state);
  const launch = async (component: Component, args: string[], env?: Record<string, string>): Promise<ProcessRecord> => {
    const proc = await startProcess(component, binDir, args, env);
    state.processes.push(proc);
    writeState(state); // recorded at once, so `down` can stop it even if this process dies
    log(`started ${component} (pid ${proc.pid})`);
    return proc;
  };

  try {
    log('generating certificates (openssl)');
    await generatePki();
    const pki = (name: string): string => path.join(PKI_DIR, name);
    writeKubeconfig(KUBECONFIG_PATH, server, 'admin', `${CONTEXT_NAME}-admin`);
    writeKubeconfig(pki('controller-manager.kubeconfig'), server, 'controller-manager', 'system:kube-controller-manager');
    writeKubeconfig(pki('scheduler.kubeconfig'), server, 'scheduler', 'system:kube-scheduler');
    writeKubeconfig(pki('kwok.kubeconfig'), server, 'admin', 'kwok');

    // etcd
    const etcdPeerUrl = `http://${LOOPBACK}:${etcdPeer}`;
    const etcdClientUrl = `http://${LOOPBACK}:${etcdClient}`;
    const etcd = await launch('etcd', [
      '--name=kubemcp',
      `--data-dir=${ETCD_DATA_DIR}`,
      `--listen-client-urls=${etcdClientUrl}`,
      `--advertise-client-urls=${etcdClientUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=kubemcp=${etcdPeerUrl}`,
      '--initial-cluster-state=new',
      '--unsafe-no-fsync', // throwaway test data: skip fsync, much faster on slow disks
      `--quota-backend-bytes=${2 * 1024 ** 3}`,
    ]);
    await waitFor('etcd', `${etcdClientUrl}/health`, ETCD_READY_MS, async () => {
      const res = await httpGet(`${etcdClientUrl}/health`);
      return res.status === 200 && res.body.includes('"true"') ? true : undefined;
    }, etcd);
    log('etcd is healthy');

    // kube-apiserver
    const auditPolicy = path.join(CLUSTER_DIR, 'audit-policy.yaml');
    fs.writeFileSync(auditPolicy, AUDIT_POLICY);
    const apiserverProc = await launch('kube-apiserver', [
      `--etcd-servers=${etcdClientUrl}`,
      `--bind-address=${LOOPBACK}`,
      `--advertise-address=${LOOPBACK}`,
      `--secure-port=${apiserver}`,
      `--cert-dir=${pki('apiserver-generated')}`,
      `--tls-cert-file=${pki('apiserver.crt')}`,
      `--tls-private-key-file=${pki('apiserver.key')}`,
      `--client-ca-file=${pki('ca.crt')}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${pki('sa.pub')}`,
      `--service-account-signing-key-file=${pki('sa.key')}`,
      `--kubelet-client-certificate=${pki('apiserver-kubelet-client.crt')}`,
      `--kubelet-client-key=${pki('apiserver-kubelet-client.key')}`,
      `--kubelet-certificate-authority=${pki('ca.crt')}`,
      '--kubelet-preferred-address-types=InternalIP',
      // Request-header (front proxy) authentication, as kubeadm sets it up: lets aggregated API
      // servers and the controller-manager/scheduler delegate authentication.
      `--requestheader-client-ca-file=${pki('front-proxy-ca.crt')}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${pki('front-proxy-client.crt')}`,
      `--proxy-client-key-file=${pki('front-proxy-client.key')}`,
      // The `kubernetes` Endpoints may not hold a loopback address; nothing in-cluster needs it.
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      `--audit-policy-file=${auditPolicy}`,
      `--audit-log-path=${AUDIT_LOG_PATH}`,
      '--audit-log-format=json',
      '--audit-log-maxsize=200',
      '--audit-log-maxbackup=1',
    ]);
    await waitFor('kube-apiserver', `${server}/readyz`, APISERVER_READY_MS, async () =>
      (await apiserverReady(server)) ? true : undefined, apiserverProc);
    log('kube-apiserver is ready');

    // kube-controller-manager and kube-scheduler
    const cm = await launch('kube-controller-manager', [
      `--kubeconfig=${pki('controller-manager.kubeconfig')}`,
      `--authentication-kubeconfig=${pki('controller-manager.kubeconfig')}`,
      `--authorization-kubeconfig=${pki('controller-manager.kubeconfig')}`,
      `--bind-address=${LOOPBACK}`,
      `--secure-port=${controllerManager}`,
      `--cert-dir=${pki('controller-manager-generated')}`,
      `--tls-cert-file=${pki('loopback-serving.crt')}`,
      `--tls-private-key-file=${pki('loopback-serving.key')}`,
      '--leader-elect=false',
      '--controllers=*',
      '--use-service-account-credentials=true', // one ServiceAccount per controller, as kubeadm does
      // The default client rate limit (20 qps) makes the per-controller token requests take ~5 s.
      '--kube-api-qps=500',
      '--kube-api-burst=1000',
      `--root-ca-file=${pki('ca.crt')}`,
      `--service-account-private-key-file=${pki('sa.key')}`,
      `--cluster-signing-cert-file=${pki('ca.crt')}`,
      `--cluster-signing-key-file=${pki('ca.key')}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--cluster-name=${CONTEXT_NAME}`,
      '--profiling=false',
    ]);
    const sched = await launch('kube-scheduler', [
      `--kubeconfig=${pki('scheduler.kubeconfig')}`,
      `--authentication-kubeconfig=${pki('scheduler.kubeconfig')}`,
      `--authorization-kubeconfig=${pki('scheduler.kubeconfig')}`,
      `--bind-address=${LOOPBACK}`,
      `--secure-port=${scheduler}`,
      `--cert-dir=${pki('scheduler-generated')}`,
      `--tls-cert-file=${pki('loopback-serving.crt')}`,
      `--tls-private-key-file=${pki('loopback-serving.key')}`,
      '--leader-elect=false',
      '--profiling=false',
    ]);

    // kwok: CRDs and stages first (with --enable-crds=Stage it reads stages only from the API).
    const kc = loadKubeConfig();
    await applyKwokResources(kc);
    log('applied kwok CRDs, stages and ClusterLogs');
    const kwokProc = await launch(
      'kwok',
      [
        `--kubeconfig=${pki('kwok.kubeconfig')}`,
        '--manage-all-nodes=false',
        `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
        '--enable-crds=Stage,Logs,ClusterLogs',
        `--cidr=${POD_CIDR}`,
        `--node-ip=${LOOPBACK}`,
        // The node's Hostname address. Must not be empty: node-initialize then writes
        // `addresses: null` whenever it re-runs (e.g. after the node went NotReady), wiping the
        // InternalIP the apiserver needs for pods/log.
        `--node-name=${NODE_NAME}`,
        `--node-port=${kwok}`,
        `--server-address=${LOOPBACK}:${kwok}`,
        `--tls-cert-file=${pki('loopback-serving.crt')}`,
        `--tls-private-key-file=${pki('loopback-serving.key')}`,
        // kwok's own default is 0 (no Lease). Without a renewed Lease the node-lifecycle
        // controller marks the node Unknown ~50 s after start (taints it, and kwok's
        // node-initialize stage then rewrites its status), since node-heartbeat-with-lease only
        // refreshes the status every ~10-20 min.
        `--node-lease-duration-seconds=${NODE_LEASE_SECONDS}`,
      ],
      { KWOK_WORKDIR: KWOK_WORK_DIR },
    );

    const core = kc.makeApiClient(CoreV1Api);
    await createIdempotently(`Node ${NODE_NAME}`, () => core.createNode({ body: fakeNode() }));

    const tls = { ca: fs.readFileSync(pki('ca.crt')) };
    const healthz = (component: Component, port: number, proc: ProcessRecord): Promise<true> =>
      waitFor(component, `https://${LOOPBACK}:${port}/healthz`, COMPONENT_READY_MS, async () => {
        const res = await httpGet(`https://${LOOPBACK}:${port}/healthz`, tls);
        return res.status === 200 ? true : undefined;
      }, proc);
    await Promise.all([
      healthz('kube-controller-manager', controllerManager, cm).then(() => log('kube-controller-manager is healthy')),
      healthz('kube-scheduler', scheduler, sched).then(() => log('kube-scheduler is healthy')),
      healthz('kwok', kwok, kwokProc).then(() => log('kwok is healthy')),
      waitFor('kwok', `Node ${NODE_NAME} to become Ready`, NODE_READY_MS, async () =>
        nodeIsReady(await core.readNode({ name: NODE_NAME })) ? true : undefined, kwokProc,
      ).then(() => log(`node ${NODE_NAME} is Ready`)),
      waitFor('kube-controller-manager', 'ServiceAccount default/default', SERVICE_ACCOUNT_MS, async () => {
        await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
        return true;
      }, cm).then(() => log('ServiceAccount default/default exists')),
    ]);

    state.ready = true;
    state.startupMs = Date.now() - t0;
    writeState(state);
    log(`cluster ready at ${server}`);
    return state;
  } catch (err) {
    log(`start failed; stopping the ${state.processes.length} processes started so far (logs are kept in ${LOG_DIR})`);
    try {
      await stopAll(state, log);
      removeRuntimeState();
    } catch (stopErr) {
      log(`cleanup failed too: ${(stopErr as Error).message}`);
    }
    throw err;
  }
}

/**
 * Stops every process recorded in {@link STATE_PATH} by pid, in reverse start order (SIGTERM,
 * then SIGKILL after a bounded wait), and removes the runtime state (state.json, kubeconfig,
 * pki, etcd data). Logs in {@link LOG_DIR} are kept. Does nothing if no cluster is recorded.
 *
 * @param opts.log progress sink (default: stderr)
 * @throws Error if a process survives SIGKILL (the state is then kept, so `down` can be retried).
 */
export async function clusterDown(opts: { log?: (line: string) => void } = {}): Promise<void> {
  const log = opts.log ?? defaultLog;
  await withLock(log, async () => {
    await stopDemoController(log);
    const state = readState();
    if (!state) {
      log(`no cluster recorded in ${STATE_PATH}; nothing to stop`);
      return;
    }
    await stopAll(state, log);
    removeRuntimeState();
    log(`cluster stopped; logs kept in ${LOG_DIR}`);
  });
}

/** Stops the demo's `kubemcp controller` (pid in {@link CONTROLLER_PID_FILE}) by pid, if it runs. */
async function stopDemoController(log: (line: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(CONTROLLER_PID_FILE, 'utf8'));
  } catch {
    return;
  }
  fs.rmSync(CONTROLLER_PID_FILE, { force: true });
  // Only our own `node ... cli.ts controller` process: a reused pid must not be killed by mistake.
  const alive = () => {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const i = argv.findIndex((a) => a.endsWith('cli.ts') || a.endsWith('cli.js'));
      return i >= 0 && argv[i + 1] === 'controller';
    } catch {
      return false;
    }
  };
  if (!pid || !alive()) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < (STOP_TERM_WAIT_MS / POLL_INTERVAL_MS) && alive(); i++) await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  if (alive()) process.kill(pid, 'SIGKILL');
  log(`stopped kubemcp controller (pid ${pid})`);
}

/**
 * Restarts one component of the running cluster with the same arguments (read from
 * /proc/<pid>/cmdline): stops it by pid, starts it again, records the new pid, and for the
 * apiserver waits until /readyz answers 200 again. For fault-injection tests.
 * @throws Error when no cluster is recorded, the component is not running, or it does not come back.
 */
export async function restartComponent(component: Component, opts: { log?: (line: string) => void; downMs?: number } = {}): Promise<ProcessRecord> {
  const log = opts.log ?? defaultLog;
  return withLock(log, async () => {
    const state = readState();
    const rec = state?.processes.find((p) => p.component === component);
    if (!state || !rec || !isProcessRunning(rec)) throw new Error(`${component} is not running; start the cluster first`);
    const args = fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0').slice(1, -1);
    await stopProcess(rec, log);
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    const next = await startProcess(component, state.binDir, args, component === 'kwok' ? { KWOK_WORKDIR: KWOK_WORK_DIR } : {});
    state.processes = state.processes.map((p) => (p === rec ? next : p));
    writeState(state);
    if (component === 'kube-apiserver') {
      await waitFor('kube-apiserver', `${state.server}/readyz`, APISERVER_READY_MS, async () => ((await apiserverReady(state.server)) ? true : undefined), next);
    }
    log(`restarted ${component} (pid ${next.pid})`);
    return next;
  });
}

/**
 * Reports the recorded cluster without changing anything: per component whether its pid is
 * alive and its RSS, and whether the apiserver is ready. Never throws for a missing cluster.
 */
export async function clusterStatus(): Promise<ClusterStatus> {
  const state = readState();
  if (!state) return { components: [], apiserverReady: false };
  const components = state.processes.map((p) => {
    const alive = isProcessRunning(p);
    return { ...p, alive, rssKiB: alive ? rssKiB(p.pid) : undefined };
  });
  const ready = fs.existsSync(path.join(PKI_DIR, 'ca.crt')) ? await apiserverReady(state.server) : false;
  return { state, components, apiserverReady: ready };
}
