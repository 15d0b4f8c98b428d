/**
 * Benchmark of the controller at scale (issue 12). Not a test: `npm run bench:controller`.
 *
 *   npm run bench:controller -- [--sizes 100,1000] [--namespaces 10] [--parallel 16]
 *     [--phases kubemcp,kubectl,parallel,toolhive] [--controller-args "--workers 8"] [--profile]
 *
 * On the local control plane (started or reused; its kwok node runs the pods), for each size N:
 *
 * 1. `kubemcp`: `kubemcp controller` (a child process bundled as `npm run build` does, build.ts,
 *    and run as the operator chart's container runs it, `node --heap-growing-percent=20 dist/cli/kubemcp.js controller`,
 *    with its NODE_OPTIONS and MALLOC_ARENA_MAX (charts/operator-config.ts);
 *    `--tsx` runs the sources; flags `--controller-args`, default `--verify off` since kwok's pods
 *    serve nothing to handshake) and N MCPServers
 *    (streamable-http, one config entry: 3 children each) spread over `--namespaces` namespaces,
 *    created at once (32 creates in flight).
 * 2. `kubectl`: the same N MCPServers rendered by `kubemcp render` (not timed), applied by one
 *    `kubectl apply --server-side` (what a GitOps tool without the operator does).
 * 3. `parallel`: the same rendered children applied by a lean server-side-apply client with
 *    `--parallel` requests in flight on keep-alive connections: the apiserver's raw limit.
 * 4. `toolhive`: the peer, ToolHive's operator (`github.com/stacklok/toolhive/cmd/thv-operator`,
 *    pinned {@link TOOLHIVE_VERSION}, built from the Go module proxy into
 *    `~/.cache/kubemcp/toolhive-<version>/`; nothing of it is in this repository) with N of its
 *    MCPServers (`toolhive.stacklok.dev/v1beta1`, streamable-http) in the same layout.
 *
 * Each phase uses its own namespaces, so phases never see each other's objects; the operators
 * run only during their own phase. Figures per phase:
 * - children: distinct objects the applier created in the phase's namespaces, and `applied`,
 *   the seconds from the first create to the last of those writes (both from the apiserver's
 *   audit log, `.cluster/logs/audit.log`, so every applier is measured the same way);
 * - objects/s = children / applied; `ratio` = objects/s over the parallel raw client's;
 * - Ready: seconds until every MCPServer reports phase Ready (raw appliers have no MCPServer:
 *   the Deployments' readyReplicas), `pods`: until every Deployment has its pod ready (what kwok
 *   and the controller-manager report), `lag`: the largest delay per object from its Deployment
 *   being ready to its MCPServer being Ready (and the median of those delays);
 * - writes/MCPServer: the applier's write requests (create, update, patch, delete) in the audit
 *   log of the phase, per MCPServer, with the breakdown by verb and resource;
 * - CPU s and RSS MiB of the operator process (/proc; RSS at the end, peak in brackets), and
 *   the kube-apiserver's CPU seconds during the phase;
 * - load: the machine's 1-minute load average (/proc/loadavg) sampled every 5 s during the
 *   phase, mean and range (the machine is shared: timings are only comparable at similar load).
 *
 * `--profile` runs the controller under `node --cpu-prof` and prints its hottest functions.
 * Everything runs on loopback; every wait is bounded; the processes it starts are stopped by
 * pid; the bench namespaces are deleted at the end of each size.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { Command } from 'commander';
import { parseAllDocuments, stringify } from 'yaml';
import { mcpServerCrd } from '../charts/api/crd.js';
import { API_VERSION, KIND } from '../charts/api/schema.js';
import { CONTROLLER_ENV, CONTROLLER_NODE_FLAGS, CONTROLLER_NODE_OPTIONS } from '../charts/operator-config.js';
import { AUDIT_LOG_PATH, CLUSTER_DIR, LOG_DIR, clusterUp, readState } from '../cluster/index.js';
import { GO_ENV, TOOLHIVE_DIR, TOOLHIVE_VERSION, toolhiveSource } from './shared.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH_DIR = path.join(CLUSTER_DIR, 'bench');
const UA = 'kubemcp-bench';
const RAW_UA = 'kubemcp-bench-raw';
const CLK_TCK = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const execFileP = promisify(execFile);

type Phase = 'kubemcp' | 'kubectl' | 'parallel' | 'toolhive';
const PHASES: Phase[] = ['kubemcp', 'kubectl', 'parallel', 'toolhive'];

// ---------------------------------------------------------------------------------------------
// A lean apiserver client: one keep-alive agent, bounded concurrency, our own User-Agent.
// ---------------------------------------------------------------------------------------------

class Api {
  private readonly agent: https.Agent;
  constructor(
    private readonly server: URL,
    tls: { ca?: unknown; cert?: unknown; key?: unknown },
    private readonly userAgent: string,
    maxSockets: number,
  ) {
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets,
      ca: tls.ca as string,
      cert: tls.cert as string,
      key: tls.key as string,
    });
  }

  static async of(kc: k8s.KubeConfig, userAgent: string, maxSockets: number): Promise<Api> {
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    return new Api(new URL(kc.getCurrentCluster()!.server), opts, userAgent, maxSockets);
  }

  /** Sends one request; resolves with status and body text (never throws on HTTP status). */
  request(
    method: string,
    p: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; body: string }> {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.server.hostname,
          port: this.server.port,
          method,
          path: p,
          agent: this.agent,
          headers: {
            'user-agent': this.userAgent,
            accept: 'application/json',
            ...(data ? { 'content-type': contentType, 'content-length': Buffer.byteLength(data) } : {}),
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${p}: timed out`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Like {@link request}, but throws unless the status is 2xx (or listed in `ok`). */
  async must(method: string, p: string, body?: unknown, contentType?: string, ok: number[] = []): Promise<string> {
    const res = await this.request(method, p, body, contentType);
    if ((res.status < 200 || res.status >= 300) && !ok.includes(res.status))
      throw new Error(`${method} ${p}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    return res.body;
  }

  destroy(): void {
    this.agent.destroy();
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first error. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** The REST path of a namespaced object of the kinds the benchmark writes. */
function objectPath(o: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): string {
  const plural: Record<string, string> = {
    ConfigMap: 'configmaps',
    Service: 'services',
    Deployment: 'deployments',
    MCPServer: 'mcpservers',
  };
  const base = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  const resource = plural[o.kind] ?? `${o.kind.toLowerCase()}s`;
  return `${base}/namespaces/${o.metadata.namespace}/${resource}/${o.metadata.name}`;
}

// ---------------------------------------------------------------------------------------------
// Processes: CPU seconds and RSS from /proc.
// ---------------------------------------------------------------------------------------------

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

interface Proc {
  child: ChildProcess;
  lines: string[];
  done: Promise<number | null>;
}

/** Starts a process with its output kept in memory (last 2,000 lines) and in a log file. */
function startProc(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = fs.createWriteStream(logFile);
  const lines: string[] = [];
  const onData = (d: Buffer) => {
    log.write(d);
    for (const l of d.toString('utf8').split('\n')) if (l) lines.push(l);
    if (lines.length > 4000) lines.splice(0, lines.length - 2000);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const done = new Promise<number | null>((r) => child.on('exit', (code) => (log.end(), r(code))));
  return { child, lines, done };
}

/** SIGTERM, then SIGKILL after 20 s; resolves when the process has exited. */
async function stopProc(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
  await p.done;
  clearTimeout(timer);
}

async function waitUntil(
  what: string,
  timeoutMs: number,
  probe: () => boolean | Promise<boolean>,
  proc?: Proc,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < timeoutMs / 200 + 1 && Date.now() < deadline; i++) {
    if (await probe()) return;
    if (proc && proc.child.exitCode !== null)
      throw new Error(`${what}: the process exited (${proc.child.exitCode}):\n${proc.lines.slice(-20).join('\n')}`);
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

// ---------------------------------------------------------------------------------------------
// Watching readiness: MCPServers' phase and Deployments' ready replicas, by watch streams.
// ---------------------------------------------------------------------------------------------

class ReadyWatch {
  /** First time (ms) each `namespace/name` was seen Ready. */
  readonly mcpReady = new Map<string, number>();
  readonly mcpPhase = new Map<string, string>();
  readonly depReady = new Map<string, number>();
  private readonly aborts: AbortController[] = [];
  private stopped = false;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly prefix: string,
    private readonly mcpPath?: string,
  ) {}

  async start(): Promise<void> {
    const watch = new k8s.Watch(this.kc);
    const inScope = (o: k8s.KubernetesObject) => (o.metadata?.namespace ?? '').startsWith(this.prefix);
    const run = async (p: string, on: (o: k8s.KubernetesObject & { status?: Record<string, unknown> }) => void) => {
      for (let attempt = 0; attempt < 20 && !this.stopped; attempt++) {
        let ended!: () => void;
        const finished = new Promise<void>((r) => (ended = r));
        const abort = await watch.watch(
          p,
          {},
          (_type, obj) => inScope(obj) && on(obj),
          () => ended(),
        );
        this.aborts.push(abort);
        await finished;
      }
    };
    if (this.mcpPath)
      void run(this.mcpPath, (o) => {
        const key = `${o.metadata!.namespace}/${o.metadata!.name}`;
        const phase = String(o.status?.phase ?? '');
        this.mcpPhase.set(key, phase);
        if (phase === 'Ready' && !this.mcpReady.has(key)) this.mcpReady.set(key, Date.now());
      });
    void run('/apis/apps/v1/deployments', (o) => {
      const key = `${o.metadata!.namespace}/${o.metadata!.name}`;
      if (Number(o.status?.readyReplicas ?? 0) >= 1 && !this.depReady.has(key)) this.depReady.set(key, Date.now());
    });
    await sleep(500); // the watches are established
  }

  stop(): void {
    this.stopped = true;
    for (const a of this.aborts) a.abort();
  }
}

// ---------------------------------------------------------------------------------------------
// The audit log: who wrote what, when.
// ---------------------------------------------------------------------------------------------

interface AuditEvent {
  verb: string;
  userAgent?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  stage?: string;
  stageTimestamp?: string;
}

/** Byte position in the audit log, so a phase reads only what was written during it. */
function auditMark(): { size: number; ino: number } {
  const st = fs.statSync(AUDIT_LOG_PATH);
  return { size: st.size, ino: st.ino };
}

/** The audit events written since `mark` (also across a rotation: the rotated file is read from the mark). */
function auditSince(mark: { size: number; ino: number }): AuditEvent[] {
  const chunks: string[] = [];
  const readFrom = (file: string, offset: number) => {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, size - offset));
      fs.readSync(fd, buf, 0, buf.length, offset);
      chunks.push(buf.toString('utf8'));
    } finally {
      fs.closeSync(fd);
    }
  };
  if (fs.statSync(AUDIT_LOG_PATH).ino !== mark.ino) {
    const rotated = fs
      .readdirSync(LOG_DIR)
      .filter((f) => /^audit-.*\.log$/.test(f))
      .map((f) => path.join(LOG_DIR, f));
    const old = rotated.find((f) => fs.statSync(f).ino === mark.ino);
    if (old) readFrom(old, mark.size);
    readFrom(AUDIT_LOG_PATH, 0);
  } else readFrom(AUDIT_LOG_PATH, mark.size);
  const events: AuditEvent[] = [];
  for (const line of chunks.join('').split('\n')) {
    if (!line) continue;
    try {
      events.push(JSON.parse(line) as AuditEvent);
    } catch {
      /* a line cut by rotation */
    }
  }
  return events.filter((e) => e.stage === 'ResponseComplete');
}

/** Who sent a request: the first word of its User-Agent (`kubectl/v1.36.3`, `thv-operator/v0.0.0`, `node-fetch`). */
function agentOf(e: AuditEvent): string {
  return (e.userAgent ?? '?').split(' ')[0]!.replace(/\/.*$/, '');
}

/**
 * The controller's requests: the admin identity (the bench runs it with the admin kubeconfig,
 * as kwok and the bench do) and none of the other clients' User-Agents.
 */
function isKubemcpController(e: AuditEvent): boolean {
  return (
    e.user?.username === 'kubernetes-admin' && ![UA, RAW_UA, 'kwok', 'kubectl', 'thv-operator'].includes(agentOf(e))
  );
}

interface WriteSummary {
  writes: number;
  byKind: Record<string, number>;
  children: number;
  lastChildMs?: number;
}

/** Writes of `agent` in namespaces starting with `prefix`: counts, breakdown, children created and the time of the last one. */
function summarizeWrites(events: AuditEvent[], prefix: string, isActor: (e: AuditEvent) => boolean): WriteSummary {
  const byKind: Record<string, number> = {};
  const firstWrite = new Map<string, number>();
  let writes = 0;
  for (const e of events) {
    const ns = e.objectRef?.namespace ?? '';
    if (!ns.startsWith(prefix) || !isActor(e)) continue;
    writes++;
    const res = `${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
    const key = `${e.verb} ${res}`;
    byKind[key] = (byKind[key] ?? 0) + 1;
    const code = e.responseStatus?.code ?? 0;
    const isChild =
      !e.objectRef?.subresource &&
      !['events', 'mcpservers'].includes(e.objectRef?.resource ?? '') &&
      ['create', 'patch', 'update'].includes(e.verb);
    if (isChild && code >= 200 && code < 300) {
      const id = `${res}/${ns}/${e.objectRef?.name}`;
      if (!firstWrite.has(id)) firstWrite.set(id, Date.parse(e.stageTimestamp ?? ''));
    }
  }
  const times = [...firstWrite.values()];
  return { writes, byKind, children: firstWrite.size, lastChildMs: times.length ? Math.max(...times) : undefined };
}

// ---------------------------------------------------------------------------------------------
// The phases.
// ---------------------------------------------------------------------------------------------

interface Row {
  n: number;
  phase: Phase;
  children: number;
  appliedS?: number;
  objectsPerS?: number;
  readyS?: number;
  podsS?: number;
  lagS?: number;
  /** Median of the per-object Ready lags, in s. */
  lagMedianS?: number;
  writesPerServer?: number;
  /** 1-minute load average during the phase: mean, min, max. */
  load?: { mean: number; min: number; max: number };
  byKind: Record<string, number>;
  cpuS?: number;
  rssMiB?: number;
  peakMiB?: number;
  apiserverCpuS?: number;
  note?: string;
}

interface Ctx {
  kc: k8s.KubeConfig;
  api: Api;
  kubectl: string;
  apiserverPid: number;
  namespaces: number;
  parallel: number;
  controllerArgs: string[];
  profileDir?: string;
  /** The bundle (`npm run build`'s dist/cli) the controller runs from, as in the image; undefined: the sources through tsx. */
  dist?: string;
}

/** Bundles the sources as `npm run build` does for the image (build.ts), into the bench directory; returns the output directory. */
async function buildDist(): Promise<string> {
  const out = path.join(BENCH_DIR, 'cli');
  process.stderr.write('[bench] bundling the controller (build.ts, as npm run build does) ...\n');
  await execFileP(process.execPath, ['--import', 'tsx', path.join(ROOT, 'build.ts'), '--outdir', out], {
    cwd: ROOT,
    timeout: 15 * 60_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return out;
}

/** The MCPServers of a size: `n` names spread round-robin over `namespaces` namespaces. */
function layout(prefix: string, n: number, namespaces: number): Array<{ namespace: string; name: string }> {
  return Array.from({ length: n }, (_, i) => ({ namespace: `${prefix}${i % namespaces}`, name: `mcp-${i}` }));
}

const MCP_SPEC = {
  image: 'mcp-k8s-server:latest',
  transport: 'streamable-http',
  port: 3001,
  config: { LOG_LEVEL: 'info' },
};

async function createNamespaces(ctx: Ctx, prefix: string): Promise<string[]> {
  const names = Array.from({ length: ctx.namespaces }, (_, i) => `${prefix}${i}`);
  for (const name of names)
    await ctx.api.must('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { 'kubemcp-bench': 'true' } },
    });
  // Pods need the default ServiceAccount (the controller-manager creates it).
  for (const ns of names)
    await waitUntil(
      `ServiceAccount ${ns}/default`,
      60_000,
      async () => (await ctx.api.request('GET', `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200,
    );
  return names;
}

/** Measures one phase: starts the watch, runs `go` (which returns when the applier has sent everything), waits for Ready. */
async function measure(
  ctx: Ctx,
  n: number,
  phase: Phase,
  prefix: string,
  opts: {
    mcpPath?: string;
    childrenPerServer: number;
    isActor: (e: AuditEvent) => boolean;
    pid?: number;
    readyTimeoutMs: number;
    waitMcpReady: boolean;
  },
  go: () => Promise<void>,
): Promise<Row> {
  const watch = new ReadyWatch(ctx.kc, prefix, opts.mcpPath);
  await watch.start();
  const loads: number[] = [os.loadavg()[0]!];
  const loadTimer = setInterval(() => loads.push(os.loadavg()[0]!), 5000).unref();
  const mark = auditMark();
  const cpu0 = opts.pid ? cpuSeconds(opts.pid) : 0;
  const api0 = cpuSeconds(ctx.apiserverPid);
  const t0 = Date.now();
  await go();
  const servers = layout(prefix, n, ctx.namespaces).map((s) => `${s.namespace}/${s.name}`);
  let note: string | undefined;
  const readyMap = opts.waitMcpReady ? watch.mcpReady : watch.depReady;
  try {
    await waitUntil(`${phase}: ${n} ready`, opts.readyTimeoutMs, () => readyMap.size >= n && watch.depReady.size >= n);
  } catch (err) {
    note = `${String((err as Error).message)} (${readyMap.size} ready)`;
  }
  const tReady = readyMap.size >= n ? Math.max(...readyMap.values()) : undefined;
  const tPods = watch.depReady.size >= n ? Math.max(...watch.depReady.values()) : undefined;
  clearInterval(loadTimer);
  let lag: number | undefined;
  let lagMedian: number | undefined;
  if (opts.waitMcpReady && tReady) {
    const lags = servers.map((k) => (watch.mcpReady.get(k) ?? 0) - (watch.depReady.get(k) ?? 0)).sort((a, b) => a - b);
    lag = lags[lags.length - 1];
    lagMedian = lags[Math.floor(lags.length / 2)];
  }
  const cpu = opts.pid ? cpuSeconds(opts.pid) - cpu0 : undefined;
  const mem = opts.pid ? memoryMiB(opts.pid) : undefined;
  const apiCpu = cpuSeconds(ctx.apiserverPid) - api0;
  // Settle: an operator may write a little after its last child (status); give it 3 s.
  await sleep(3000);
  watch.stop();
  const sum = summarizeWrites(auditSince(mark), prefix, opts.isActor);
  const appliedS = sum.lastChildMs ? (sum.lastChildMs - t0) / 1000 : undefined;
  if (sum.children < n * opts.childrenPerServer)
    note = [note, `only ${sum.children} of ${n * opts.childrenPerServer} children written`].filter(Boolean).join('; ');
  return {
    n,
    phase,
    children: sum.children,
    appliedS,
    objectsPerS: appliedS ? sum.children / appliedS : undefined,
    readyS: tReady ? (tReady - t0) / 1000 : undefined,
    podsS: tPods ? (tPods - t0) / 1000 : undefined,
    lagS: lag !== undefined ? lag / 1000 : undefined,
    lagMedianS: lagMedian !== undefined ? lagMedian / 1000 : undefined,
    load: { mean: loads.reduce((a, b) => a + b, 0) / loads.length, min: Math.min(...loads), max: Math.max(...loads) },
    writesPerServer: sum.writes / n,
    byKind: sum.byKind,
    cpuS: cpu,
    rssMiB: mem?.rss,
    peakMiB: mem?.peak,
    apiserverCpuS: apiCpu,
    note,
  };
}

async function phaseKubemcp(ctx: Ctx, n: number): Promise<Row> {
  const prefix = `kmb-kubemcp-${n}-`;
  await createNamespaces(ctx, prefix);
  // The V8 flags and environment of the operator chart's container.
  const nodeArgs = [
    ...CONTROLLER_NODE_FLAGS,
    ...(ctx.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`] : []),
  ];
  const entry = ctx.dist ? [path.join(ctx.dist, 'kubemcp.js')] : ['--import', 'tsx', 'cli.ts'];
  const proc = startProc(
    process.execPath,
    [
      ...nodeArgs,
      ...entry,
      'controller',
      '--kubeconfig',
      path.join(CLUSTER_DIR, 'kubeconfig'),
      '--no-leader-elect',
      '--health-port',
      '0',
      '--metrics-port',
      '0',
      ...ctx.controllerArgs,
    ],
    // NODE_OPTIONS and environment as the operator chart's Deployment sets them.
    { ...process.env, ...CONTROLLER_ENV, NODE_OPTIONS: CONTROLLER_NODE_OPTIONS },
    path.join(BENCH_DIR, `controller-${n}.log`),
  );
  let metricsPort: number | undefined;
  try {
    await waitUntil(
      'the controller to sync its informers',
      120_000,
      () => proc.lines.some((l) => l.includes('informers synced')),
      proc,
    );
    metricsPort = proc.lines.map((l) => /"metricsPort":(\d+)/.exec(l)?.[1]).find(Boolean) as unknown as
      number | undefined;
    const servers = layout(prefix, n, ctx.namespaces);
    const row = await measure(
      ctx,
      n,
      'kubemcp',
      prefix,
      {
        mcpPath: '/apis/mcp.example.com/v1alpha1/mcpservers',
        childrenPerServer: 3,
        isActor: isKubemcpController,
        pid: proc.child.pid,
        readyTimeoutMs: 30 * 60_000,
        waitMcpReady: true,
      },
      () =>
        pool(servers, 32, async (s) => {
          await ctx.api.must('POST', `/apis/${API_VERSION}/namespaces/${s.namespace}/mcpservers`, {
            apiVersion: API_VERSION,
            kind: KIND,
            metadata: { name: s.name, namespace: s.namespace },
            spec: MCP_SPEC,
          });
        }),
    );
    if (metricsPort) {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
      const lines = res
        .split('\n')
        .filter((l) => /^kubemcp_controller_(write_requests_total|apply_requests_total|reconcile_total)/.test(l));
      fs.writeFileSync(path.join(BENCH_DIR, `controller-${n}.metrics.txt`), `${lines.join('\n')}\n`);
    }
    return row;
  } finally {
    await stopProc(proc);
  }
}

/** `kubemcp render` of N MCPServers in namespaces `prefix<i>` (not timed). */
async function renderChildren(
  ctx: Ctx,
  n: number,
  prefix: string,
): Promise<{
  file: string;
  objects: Array<{ apiVersion: string; kind: string; metadata: { name: string; namespace: string } }>;
}> {
  const manifests = layout(prefix, n, ctx.namespaces).map((s) => ({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: s.name, namespace: s.namespace },
    spec: MCP_SPEC,
  }));
  const input = path.join(BENCH_DIR, `${prefix}mcpservers.yaml`);
  fs.writeFileSync(input, manifests.map((m) => stringify(m)).join('---\n'));
  const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', 'cli.ts', 'render', '-f', input], {
    cwd: ROOT,
    maxBuffer: 1 << 30,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const file = path.join(BENCH_DIR, `${prefix}rendered.yaml`);
  fs.writeFileSync(file, stdout);
  const objects = parseAllDocuments(stdout)
    .map((d) => d.toJSON())
    .filter(Boolean);
  return { file, objects };
}

async function phaseKubectl(ctx: Ctx, n: number): Promise<Row> {
  const prefix = `kmb-kubectl-${n}-`;
  await createNamespaces(ctx, prefix);
  const { file } = await renderChildren(ctx, n, prefix);
  return measure(
    ctx,
    n,
    'kubectl',
    prefix,
    {
      childrenPerServer: 3,
      isActor: (e) => agentOf(e) === 'kubectl',
      readyTimeoutMs: 30 * 60_000,
      waitMcpReady: false,
    },
    async () => {
      await execFileP(
        ctx.kubectl,
        [
          '--kubeconfig',
          path.join(CLUSTER_DIR, 'kubeconfig'),
          'apply',
          '--server-side',
          '--field-manager',
          'kubemcp-bench-kubectl',
          '-f',
          file,
        ],
        { maxBuffer: 1 << 28, timeout: 30 * 60_000 },
      );
    },
  );
}

async function phaseParallel(ctx: Ctx, n: number): Promise<Row> {
  const prefix = `kmb-parallel-${n}-`;
  await createNamespaces(ctx, prefix);
  const { objects } = await renderChildren(ctx, n, prefix);
  const raw = await Api.of(ctx.kc, RAW_UA, ctx.parallel);
  try {
    return await measure(
      ctx,
      n,
      'parallel',
      prefix,
      { childrenPerServer: 3, isActor: (e) => agentOf(e) === RAW_UA, readyTimeoutMs: 30 * 60_000, waitMcpReady: false },
      () =>
        pool(objects, ctx.parallel, async (o) => {
          await raw.must(
            'PATCH',
            `${objectPath(o)}?fieldManager=kubemcp-bench-raw&force=true`,
            o,
            'application/apply-patch+yaml',
          );
        }),
    );
  } finally {
    raw.destroy();
  }
}

/** Builds the peer once (cached); returns the binary and the CRD directory, or throws why it cannot. */
async function toolhiveBinary(): Promise<{ bin: string; crds: string }> {
  const bin = path.join(TOOLHIVE_DIR, 'bin', 'thv-operator');
  const src = path.join(TOOLHIVE_DIR, 'src');
  if (!fs.existsSync(bin)) {
    toolhiveSource(src);
    process.stderr.write(`[bench] building thv-operator ${TOOLHIVE_VERSION} (once, into ${TOOLHIVE_DIR}) ...\n`);
    await execFileP(
      'nice',
      ['-n', '10', 'go', 'build', '-trimpath', '-ldflags=-s -w', '-o', bin, './cmd/thv-operator'],
      { cwd: src, env: GO_ENV, maxBuffer: 1 << 26, timeout: 60 * 60_000 },
    );
  }
  return { bin, crds: path.join(src, 'deploy', 'charts', 'operator-crds', 'files', 'crds') };
}

async function phaseToolhive(ctx: Ctx, n: number): Promise<Row> {
  const { bin, crds } = await toolhiveBinary();
  const kubeconfig = path.join(CLUSTER_DIR, 'kubeconfig');
  await execFileP(
    ctx.kubectl,
    ['--kubeconfig', kubeconfig, 'apply', '--server-side', '--field-manager', 'kubemcp-bench', '-f', crds],
    { maxBuffer: 1 << 26 },
  );
  // Every CRD it watches must be served before it starts (its RESTMapper reads discovery once).
  await execFileP(ctx.kubectl, [
    '--kubeconfig',
    kubeconfig,
    'wait',
    '--for=condition=Established',
    '--timeout=120s',
    '-f',
    crds,
  ]);
  await sleep(2000);
  const prefix = `kmb-toolhive-${n}-`;
  await createNamespaces(ctx, prefix);
  const proc = startProc(
    bin,
    ['--metrics-bind-address=0', '--health-probe-bind-address=127.0.0.1:0', '--leader-elect=false'],
    { ...process.env, KUBECONFIG: kubeconfig, TOOLHIVE_SKIP_UPDATE_CHECK: 'true', POD_NAMESPACE: `${prefix}0` },
    path.join(BENCH_DIR, `toolhive-${n}.log`),
  );
  try {
    await waitUntil(
      'thv-operator to start its MCPServer workers',
      180_000,
      () => proc.lines.some((l) => /Starting workers/.test(l) && /mcpserver"?(\s|$|,)/i.test(l)),
      proc,
    );
    const servers = layout(prefix, n, ctx.namespaces);
    const api = 'toolhive.stacklok.dev/v1beta1';
    const row = await measure(
      ctx,
      n,
      'toolhive',
      prefix,
      {
        mcpPath: '/apis/toolhive.stacklok.dev/v1beta1/mcpservers',
        childrenPerServer: 2,
        isActor: (e) => agentOf(e) === 'thv-operator',
        pid: proc.child.pid,
        readyTimeoutMs: 5 * 60_000,
        waitMcpReady: false,
      },
      () =>
        pool(servers, 32, async (s) => {
          await ctx.api.must('POST', `/apis/${api}/namespaces/${s.namespace}/mcpservers`, {
            apiVersion: api,
            kind: 'MCPServer',
            metadata: { name: s.name, namespace: s.namespace },
            spec: {
              image: MCP_SPEC.image,
              transport: 'streamable-http',
              proxyPort: 8080,
              mcpPort: 3001,
              env: [{ name: 'LOG_LEVEL', value: 'info' }],
            },
          });
        }),
    );
    const phases = new Map<string, number>();
    const watch = await ctx.api.must('GET', `/apis/${api}/mcpservers?limit=5000`);
    for (const o of (
      JSON.parse(watch) as {
        items: Array<{ metadata: { namespace: string }; status?: { phase?: string; message?: string } }>;
      }
    ).items)
      if (o.metadata.namespace.startsWith(prefix))
        phases.set(
          `${o.status?.phase ?? '-'}: ${o.status?.message ?? ''}`,
          (phases.get(`${o.status?.phase ?? '-'}: ${o.status?.message ?? ''}`) ?? 0) + 1,
        );
    row.note = [row.note, `MCPServer phases: ${[...phases].map(([k, v]) => `${v} x ${k}`).join(', ')}`]
      .filter(Boolean)
      .join('; ');
    return row;
  } finally {
    await stopProc(proc);
  }
}

/** Deletes the bench namespaces of size `n` (finalizers of stopped operators removed first); waits until they are gone. */
async function cleanup(ctx: Ctx, n: number): Promise<void> {
  for (const [group, prefix] of [
    [`/apis/${API_VERSION}`, `kmb-kubemcp-${n}-`],
    ['/apis/toolhive.stacklok.dev/v1beta1', `kmb-toolhive-${n}-`],
  ] as const) {
    const res = await ctx.api.request('GET', `${group}/mcpservers?limit=10000`);
    if (res.status !== 200) continue;
    const items = (
      JSON.parse(res.body) as { items: Array<{ metadata: { name: string; namespace: string; finalizers?: string[] } }> }
    ).items.filter((o) => o.metadata.namespace.startsWith(prefix) && o.metadata.finalizers?.length);
    await pool(items, 16, async (o) => {
      await ctx.api.must(
        'PATCH',
        `${group}/namespaces/${o.metadata.namespace}/mcpservers/${o.metadata.name}`,
        { metadata: { finalizers: null } },
        'application/merge-patch+json',
        [404],
      );
    });
  }
  const list = JSON.parse(await ctx.api.must('GET', '/api/v1/namespaces?labelSelector=kubemcp-bench%3Dtrue')) as {
    items: Array<{ metadata: { name: string } }>;
  };
  const mine = list.items
    .map((i) => i.metadata.name)
    .filter((name) => name.startsWith('kmb-') && name.includes(`-${n}-`));
  for (const name of mine) await ctx.api.must('DELETE', `/api/v1/namespaces/${name}`, undefined, undefined, [404, 409]);
  // kwok's fake pods run nothing: delete them at once (grace period 0) instead of waiting for kwok
  // to confirm each graceful deletion (a thousand took over 10 minutes on the loaded machine).
  for (const name of mine)
    await ctx.api.must('DELETE', `/api/v1/namespaces/${name}/pods?gracePeriodSeconds=0`, undefined, undefined, [404]);
  process.stderr.write(`[bench] deleting ${mine.length} namespaces of N=${n} ...\n`);
  await waitUntil('the bench namespaces to be deleted', 20 * 60_000, async () => {
    const left = await Promise.all(
      mine.map(async (name) => (await ctx.api.request('GET', `/api/v1/namespaces/${name}`)).status !== 404),
    );
    return !left.some(Boolean);
  }).catch((err: unknown) => process.stderr.write(`[bench] ${String(err)}\n`));
}

// ---------------------------------------------------------------------------------------------
// Output.
// ---------------------------------------------------------------------------------------------

const f = (v: number | undefined, digits = 1) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits));
const LABEL: Record<Phase, string> = {
  kubemcp: 'kubemcp controller',
  kubectl: 'raw: kubectl apply --server-side',
  parallel: 'raw: parallel SSA client',
  toolhive: `peer: ToolHive operator ${TOOLHIVE_VERSION}`,
};

function table(rows: Row[], parallel: number): string {
  const out = [
    '| N | applier | children | applied (s) | objects/s | ratio to parallel raw | Ready (s) | pods ready (s) | Ready lag max (median) (s) | writes/MCPServer | CPU (s) | RSS (MiB) | apiserver CPU (s) | load avg (range) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const raw = rows.find((x) => x.n === r.n && x.phase === 'parallel');
    const ratio = r.objectsPerS && raw?.objectsPerS ? r.objectsPerS / raw.objectsPerS : undefined;
    const label = r.phase === 'parallel' ? `${LABEL.parallel} (${parallel} in flight)` : LABEL[r.phase];
    out.push(
      `| ${r.n} | ${label} | ${r.children} | ${f(r.appliedS)} | ${f(r.objectsPerS, 2)} | ${f(ratio, 2)} | ${r.phase === 'kubemcp' || r.phase === 'toolhive' ? f(r.readyS) : '-'} | ${f(r.podsS)} | ${r.lagS === undefined ? '-' : `${f(r.lagS)} (${f(r.lagMedianS)})`} | ${f(r.writesPerServer, 2)} | ${f(r.cpuS)} | ${r.rssMiB ? `${f(r.rssMiB, 0)} (peak ${f(r.peakMiB, 0)})` : '-'} | ${f(r.apiserverCpuS)} | ${r.load ? `${f(r.load.mean)} (${f(r.load.min)}-${f(r.load.max)})` : '-'} |`,
    );
  }
  return out.join('\n');
}

function writesDetail(rows: Row[]): string {
  return rows
    .map((r) => {
      const kinds = Object.entries(r.byKind)
        .sort(([, a], [, b]) => b - a)
        .map(([k, v]) => `${k} ${f(v / r.n, 2)}`)
        .join(', ');
      return `- N=${r.n} ${LABEL[r.phase]}: ${kinds}${r.note ? ` — ${r.note}` : ''}`;
    })
    .join('\n');
}

/** Top self-time functions of the V8 CPU profiles in `dir` (what `--profile` prints). */
function profileSummary(dir: string, top = 25): string {
  const files = fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'));
  const self = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const prof = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as {
      nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
      samples: number[];
      timeDeltas: number[];
    };
    const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
    prof.samples.forEach((id, i) => {
      const cf = byId.get(id)!.callFrame;
      const where = cf.url ? `${cf.url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '')}:${cf.lineNumber + 1}` : '';
      const key = `${cf.functionName || '(anonymous)'} ${where}`;
      const dt = prof.timeDeltas[i] ?? 0;
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  return [...self]
    .sort(([, a], [, b]) => b - a)
    .slice(0, top)
    .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${(v / 1e6).toFixed(2).padStart(6)} s  ${k}`)
    .join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const program = new Command('bench:controller')
    .option('--sizes <list>', 'numbers of MCPServers, comma-separated', '100,1000')
    .option('--namespaces <n>', 'namespaces the MCPServers are spread over', '10')
    .option('--parallel <n>', 'requests in flight of the parallel raw client (8-16)', '16')
    .option('--phases <list>', `phases to run, comma-separated (${PHASES.join(',')})`, PHASES.join(','))
    // kwok's pods run nothing, so there is no MCP server to handshake: verification is off.
    .option('--controller-args <args>', 'flags of kubemcp controller, space-separated', '--verify off')
    .option('--profile', 'run the controller under node --cpu-prof and print its hottest functions')
    .option('--tsx', 'run the controller from the TypeScript sources through tsx instead of compiled JavaScript')
    .option('--keep', 'do not delete the bench namespaces at the end');
  program.parse();
  const o = program.opts<{
    sizes: string;
    namespaces: string;
    parallel: string;
    phases: string;
    controllerArgs: string;
    profile?: boolean;
    tsx?: boolean;
    keep?: boolean;
  }>();
  const sizes = o.sizes.split(',').map(Number);
  if (sizes.some((s) => !Number.isInteger(s) || s < 1 || s > 5000))
    throw new Error(`--sizes: expected integers 1..5000, got ${o.sizes}`);
  const phases = o.phases.split(',') as Phase[];
  const unknown = phases.filter((p) => !PHASES.includes(p));
  if (unknown.length) throw new Error(`--phases: unknown ${unknown.join(', ')} (expected ${PHASES.join(', ')})`);
  const parallel = Number(o.parallel);
  const namespaces = Number(o.namespaces);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64)
    throw new Error('--parallel: expected an integer 1..64');
  if (!Number.isInteger(namespaces) || namespaces < 1 || namespaces > 100)
    throw new Error('--namespaces: expected an integer 1..100');

  fs.mkdirSync(BENCH_DIR, { recursive: true });
  const info = await clusterUp();
  process.env.KUBECONFIG = info.kubeconfig;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const state = readState()!;
  const apiserverPid = state.processes.find((p) => p.component === 'kube-apiserver')!.pid;
  const profileDir = o.profile ? fs.mkdtempSync(path.join(BENCH_DIR, 'prof-')) : undefined;
  const ctx: Ctx = {
    kc,
    api: await Api.of(kc, UA, 32),
    kubectl: path.join(state.binDir, 'kubectl'),
    apiserverPid,
    namespaces,
    parallel,
    controllerArgs: o.controllerArgs.split(' ').filter(Boolean),
    profileDir,
    dist: o.tsx || !phases.includes('kubemcp') ? undefined : await buildDist(),
  };
  // The MCPServer CRD, as the operator chart installs it.
  await ctx.api.must(
    'PATCH',
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/mcpservers.mcp.example.com?fieldManager=${UA}&force=true`,
    mcpServerCrd(),
    'application/apply-patch+yaml',
  );
  await waitUntil('the MCPServer CRD to be Established', 60_000, async () => {
    const crd = JSON.parse(
      await ctx.api.must('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/mcpservers.mcp.example.com'),
    ) as { status?: { conditions?: Array<{ type: string; status: string }> } };
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
  });

  const rows: Row[] = [];
  const skipped: string[] = [];
  for (const n of sizes) {
    await cleanup(ctx, n); // leftovers of an interrupted run
    try {
      for (const phase of phases) {
        process.stderr.write(`[bench] N=${n} ${LABEL[phase]} ...\n`);
        try {
          const run = {
            kubemcp: phaseKubemcp,
            kubectl: phaseKubectl,
            parallel: phaseParallel,
            toolhive: phaseToolhive,
          }[phase];
          const row = await run(ctx, n);
          rows.push(row);
          process.stderr.write(`[bench]   ${JSON.stringify({ ...row, byKind: undefined })}\n`);
        } catch (err) {
          if (phase !== 'toolhive') throw err;
          const why = String((err as { stderr?: string }).stderr || (err as Error).message)
            .trim()
            .split('\n')
            .slice(-6)
            .join(' | ');
          skipped.push(`N=${n} ToolHive operator ${TOOLHIVE_VERSION}: ${why}`);
          process.stderr.write(`[bench]   peer skipped: ${why}\n`);
        }
      }
    } finally {
      if (!o.keep) await cleanup(ctx, n);
    }
  }
  ctx.api.destroy();
  const out = [
    `Controller benchmark: ${new Date().toISOString()}, ${os.cpus().length} CPUs (load average ${os.loadavg()[0]!.toFixed(1)}), node ${process.version}, ${namespaces} namespaces, controller ${ctx.dist ? 'bundled (node dist/cli/kubemcp.js, as in the image)' : 'through tsx'}, flags: ${ctx.controllerArgs.join(' ') || '(defaults)'}`,
    '',
    table(rows, parallel),
    '',
    'Write requests per MCPServer (audit log):',
    writesDetail(rows),
    ...(skipped.length ? ['', 'Peer not measured:', ...skipped.map((s) => `- ${s}`)] : []),
  ];
  if (profileDir)
    out.push('', `Controller CPU profile (self time, ${profileDir}):`, '```', profileSummary(profileDir), '```');
  const text = out.join('\n');
  process.stdout.write(`${text}\n`);
  fs.writeFileSync(path.join(BENCH_DIR, `result-${Date.now()}.md`), `${text}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:controller failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
