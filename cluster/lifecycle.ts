/**
 * up / down / status / restart of the local cluster: composes the components (./components/)
 * in start order, records every process in state.json as soon as it is spawned, and stops them
 * by pid in reverse order.
 *
 * @module
 */
import fs from 'node:fs';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  CONTEXT_NAME,
  COMPONENTS,
  KUBECONFIG_PATH,
  NODE_COMPONENTS,
  LOG_DIR,
  LOOPBACK,
  PKI_DIR,
  SERVICE_ACCOUNT_MS,
  STATE_PATH,
  logFileOf,
  type Component,
} from './paths.js';
import { ensureBinaries, type Binaries } from './binaries.js';
import { apiserverReady, loadKubeConfig } from './kube.js';
import { generatePki, writeKubeconfig } from './pki.js';
import {
  defaultLog,
  freePorts,
  isProcessRunning,
  rssKiB,
  startProcess,
  stopAll,
  stopProcess,
  waitFor,
} from './process.js';
import { readState, removeRuntimeState, withLock, writeState, type ClusterState, type ProcessRecord } from './state.js';
import type { StartContext } from './components/context.js';
import { startEtcd } from './components/etcd.js';
import { startApiserver, waitForApiserver } from './components/kube-apiserver.js';
import { startControllerManager } from './components/kube-controller-manager.js';
import { startScheduler } from './components/kube-scheduler.js';
import { startKwok } from './components/kwok.js';
import { realNodeUnsupportedReason, startRealNode, stopRealNode } from './realnode/index.js';
import { fenceClusterRanges, setupNetwork } from './realnode/network.js';

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
  /** Use binaries from this directory instead of running build.sh (then without a real node unless `nodeBinDir` is given too). */
  binDir?: string;
  /** The real node's containerd, runc and coredns directory (with `binDir`). */
  nodeBinDir?: string;
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
 * applies kwok's CRDs and stages, creates kwok's node, and waits until every component is
 * healthy, the node is Ready and ServiceAccount default/default exists. If any of that fails,
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
  /** A fresh start on a clean slate: runtime state removed, address ranges fenced, then the binaries. */
  const startClean = async (binaries: () => Promise<Binaries>): Promise<ClusterInfo> => {
    removeRuntimeState();
    await fenceClusterRanges(log);
    const state = await startFresh(await binaries(), log, t0);
    return {
      reused: false,
      kubeconfig: KUBECONFIG_PATH,
      context: CONTEXT_NAME,
      server: state.server,
      state,
      elapsedMs: Date.now() - t0,
    };
  };
  return withLock(log, async () => {
    const previous = readState();
    if (previous) {
      const reason = await unhealthyReason(previous);
      // Started without its real node on a machine that can now run one (the Debian packages were
      // installed since, say): restarted with it instead of reused as it is (issue 20).
      const kwokOnly = reason === undefined && !opts.binDir && previous.realNode?.reason?.kind === 'unsupported';
      if (kwokOnly) {
        const bins = await ensureBinaries();
        if (!(await realNodeUnsupportedReason(bins.binDir, bins.nodeBinDir))) {
          log(
            'the running cluster was started without its real node, and this machine can run one now: restarting it with the real node',
          );
          await stopEverything(previous, log);
          return startClean(() => Promise.resolve(bins));
        }
      }
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
      await stopEverything(previous, log);
    }
    return startClean(async () =>
      opts.binDir
        ? { binDir: opts.binDir, ...(opts.nodeBinDir ? { nodeBinDir: opts.nodeBinDir } : {}) }
        : ensureBinaries(),
    );
  });
}

/**
 * Stops the processes of `state` (the real node's first, with its containers, mounts and
 * network; see stopRealNode), then the control plane's in reverse start order.
 * @throws Error listing what could not be stopped.
 */
async function stopEverything(state: ClusterState, log: (line: string) => void): Promise<void> {
  let nodeError: Error | undefined;
  if (
    state.realNode?.network ||
    state.processes.some((p) => (NODE_COMPONENTS as readonly string[]).includes(p.component))
  ) {
    await stopRealNode(state, (p) => stopProcess(p, log), log).catch((err: Error) => (nodeError = err));
  }
  await stopAll(state, log);
  if (nodeError) throw nodeError;
}

/** The fresh-start part of {@link clusterUp}; called with the lock held and state removed. */
async function startFresh(bins: Binaries, log: (line: string) => void, t0: number): Promise<ClusterState> {
  const { binDir, nodeBinDir } = bins;
  fs.mkdirSync(LOG_DIR, { recursive: true });
  for (const component of [...COMPONENTS, ...NODE_COMPONENTS]) {
    const file = logFileOf(component);
    if (fs.existsSync(file)) fs.renameSync(file, `${file}.prev`);
  }
  const [etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kwok] = (await freePorts(6)) as [
    number,
    number,
    number,
    number,
    number,
    number,
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
  const ctx: StartContext = {
    binDir,
    server,
    ports: state.ports,
    log,
    launch: async (component, bin, args, env, netns, inClusterCredentials) => {
      const proc = await startProcess(component, bin, args, env, netns, inClusterCredentials);
      state.processes.push(proc);
      writeState(state); // recorded at once, so `down` can stop it even if this process dies
      log(`started ${component} (pid ${proc.pid})`);
      return proc;
    },
  };

  /** Gives up on the real node (stopping what it started) and goes on with kwok's node only. */
  const dropRealNode = async (err: unknown): Promise<void> => {
    const message = (err as Error).message ?? String(err);
    log(`real node failed, continuing with kwok's node only: ${message.split('\n')[0]}`);
    await stopRealNode(state, (p) => stopProcess(p, log), log).catch((e: Error) =>
      log(`real node cleanup: ${e.message}`),
    );
    state.processes = state.processes.filter((p) => !(NODE_COMPONENTS as readonly string[]).includes(p.component));
    state.realNode = { available: false, reason: { kind: 'failed', message } };
    delete ctx.network;
    writeState(state);
  };

  try {
    const unsupported = await realNodeUnsupportedReason(binDir, nodeBinDir);
    if (unsupported) {
      log(`real node unavailable (${unsupported}); running kwok's node only`);
      state.realNode = { available: false, reason: { kind: 'unsupported', message: unsupported } };
    } else {
      try {
        ctx.network = await setupNetwork(apiserver, log);
        state.realNode = { available: false, nodeBinDir, network: ctx.network };
      } catch (err) {
        log(`real node network could not be created; running kwok's node only: ${(err as Error).message}`);
        state.realNode = { available: false, reason: { kind: 'failed', message: (err as Error).message } };
      }
    }
    writeState(state);

    log('generating certificates (openssl)');
    await generatePki(ctx.network ? [ctx.network.hostIp] : []);
    writeKubeconfig(KUBECONFIG_PATH, server, 'admin', `${CONTEXT_NAME}-admin`);

    await startEtcd(ctx);
    await startApiserver(ctx);
    const cm = await startControllerManager(ctx);
    const sched = await startScheduler(ctx);
    const kc = loadKubeConfig();
    const kwokStart = await startKwok(ctx, kc);
    let nodeReady: Promise<void> | undefined;
    if (ctx.network && nodeBinDir) {
      try {
        nodeReady = (await startRealNode(ctx, kc, ctx.network, nodeBinDir)).ready;
        nodeReady.catch(() => undefined); // awaited below
      } catch (err) {
        await dropRealNode(err);
      }
    }

    const core = kc.makeApiClient(CoreV1Api);
    await Promise.all([
      cm.healthy.then(() => log('kube-controller-manager is healthy')),
      sched.healthy.then(() => log('kube-scheduler is healthy')),
      kwokStart.ready,
      waitFor(
        'kube-controller-manager',
        'ServiceAccount default/default',
        SERVICE_ACCOUNT_MS,
        async () => {
          await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
          return true;
        },
        cm.proc,
      ).then(() => log('ServiceAccount default/default exists')),
    ]);
    if (nodeReady) {
      try {
        await nodeReady;
        if (state.realNode) state.realNode.available = true;
      } catch (err) {
        await dropRealNode(err);
      }
    }

    state.ready = true;
    state.startupMs = Date.now() - t0;
    writeState(state);
    log(`cluster ready at ${server}`);
    return state;
  } catch (err) {
    log(`start failed; stopping the ${state.processes.length} processes started so far (logs are kept in ${LOG_DIR})`);
    try {
      await stopEverything(state, log);
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
 * Processes started by others (a demo's controller, say) are theirs to stop.
 *
 * @param opts.log progress sink (default: stderr)
 * @throws Error if a process survives SIGKILL (the state is then kept, so `down` can be retried).
 */
export async function clusterDown(opts: { log?: (line: string) => void } = {}): Promise<void> {
  const log = opts.log ?? defaultLog;
  await withLock(log, async () => {
    const state = readState();
    if (!state) {
      log(`no cluster recorded in ${STATE_PATH}; nothing to stop`);
      return;
    }
    await stopEverything(state, log);
    removeRuntimeState();
    log(`cluster stopped; logs kept in ${LOG_DIR}`);
  });
}

/**
 * Restarts one component of the running cluster with the same arguments (read from
 * /proc/<pid>/cmdline) and environment (from its record): stops it by pid, starts it again,
 * records the new pid, and for the apiserver waits until /readyz answers 200 again. For
 * fault-injection tests.
 * @param opts.downMs milliseconds to stay stopped before starting again
 * @throws Error when no cluster is recorded, the component is not running, or it does not come back.
 */
export async function restartComponent(
  component: Component,
  opts: { log?: (line: string) => void; downMs?: number } = {},
): Promise<ProcessRecord> {
  const log = opts.log ?? defaultLog;
  return withLock(log, async () => {
    const state = readState();
    const rec = state?.processes.find((p) => p.component === component);
    if (!state || !rec || !isProcessRunning(rec))
      throw new Error(`${component} is not running; start the cluster first`);
    const args = fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0').slice(1, -1);
    await stopProcess(rec, log);
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    const next = await startProcess(component, rec.bin, args, rec.env ?? {}, rec.netns, rec.inClusterCredentials);
    state.processes = state.processes.map((p) => (p === rec ? next : p));
    writeState(state);
    if (component === 'kube-apiserver') await waitForApiserver(state.server, next);
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
  const ready = fs.existsSync(`${PKI_DIR}/ca.crt`) ? await apiserverReady(state.server) : false;
  return { state, components, apiserverReady: ready };
}
