/**
 * The recorded state of the local cluster (`.cluster/state.json`), the lock serialising `up` and
 * `down`, and removal of runtime state.
 *
 * @module
 */
import fs from 'node:fs';
import {
  CLUSTER_DIR,
  ETCD_DATA_DIR,
  FAKE_POD_LOG_PATH,
  KUBECONFIG_PATH,
  KWOK_WORK_DIR,
  LOCK_PATH,
  LOCK_WAIT_MS,
  PKI_DIR,
  STATE_PATH,
  type Component,
} from './paths.js';

/** A process started by clusterUp. */
export interface ProcessRecord {
  /** Which component this is. */
  component: Component;
  /** OS process id. */
  pid: number;
  /** Absolute path of the executable; used to make sure a pid was not reused by another program. */
  bin: string;
  /** Absolute path of its log file (stdout and stderr). */
  log: string;
  /** Environment variables set on top of the parent's (restartComponent sets them again). */
  env?: Record<string, string>;
  /** Network namespace it runs in (the real node's components), if not the host's. */
  netns?: string;
  /**
   * A directory bind-mounted at {@link IN_CLUSTER_CREDENTIALS_DIR} in a private mount namespace of
   * the process (over a tmpfs on /run there, the host's /run untouched): the in-cluster
   * credentials of a program that reads only those (kube-network-policies).
   */
  inClusterCredentials?: string;
}

/** Where client-go's in-cluster config reads its token and CA (k8s.io/client-go/rest InClusterConfig). */
export const IN_CLUSTER_CREDENTIALS_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

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
  /** The real node: its network and binaries, or why there is none (then kwok's node only). */
  realNode?: RealNodeState;
}

/** The real node's network: a network namespace joined to the host by a veth pair. */
export interface RealNodeNetwork {
  /** Small number making names and subnets unique per cluster on this machine (1-250). */
  index: number;
  /** Network namespace of the node's processes (`ip netns` name). */
  netns: string;
  /** Host end of the veth pair. */
  hostIf: string;
  /** Node end of the veth pair (in {@link netns}). */
  nodeIf: string;
  /** Address of the host end: the node reaches the apiserver here (DNAT to 127.0.0.1). */
  hostIp: string;
  /** The node's InternalIP (node end of the veth). */
  nodeIp: string;
  /** Pod subnet of the real node (CNI bridge in {@link netns}); routed from the host via {@link nodeIp}. */
  podCidr: string;
  /** apiserver port forwarded from {@link hostIp} to 127.0.0.1 (the iptables rule to remove). */
  apiserverPort: number;
}

/** Whether and how the cluster runs a real node. */
export interface RealNodeState {
  /** True once the node is Ready; false when it is unavailable (see {@link reason}). */
  available: boolean;
  /**
   * Why there is no real node: `unsupported` (this machine lacks a privilege, kernel feature or
   * binary: not an error) or `failed` (it should have worked; see the component logs).
   */
  reason?: { kind: 'unsupported' | 'failed'; message: string };
  /** Directory of containerd, runc, coredns (build.sh). */
  nodeBinDir?: string;
  network?: RealNodeNetwork;
}

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
export function writeState(state: ClusterState): void {
  const tmp = `${STATE_PATH}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  fs.renameSync(tmp, STATE_PATH);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` holding {@link LOCK_PATH}, so that concurrent `up`/`down` calls (say, `npm run
 * cluster:up` and a jest run) do not start two clusters. A stale lock (see {@link lockIsStale})
 * is taken over; a live holder is waited for, since its own work is bounded (a cold build included).
 *
 * @throws Error if a live owner holds the lock for more than {@link LOCK_WAIT_MS} ms.
 */
export async function withLock<T>(log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
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

/**
 * Removes runtime state (state, kubeconfig, pki, etcd data, kwok work dir); keeps logs. The real
 * node's dir is removed by its own teardown (it may hold mounts).
 */
export function removeRuntimeState(): void {
  for (const p of [STATE_PATH, KUBECONFIG_PATH, PKI_DIR, ETCD_DATA_DIR, KWOK_WORK_DIR, FAKE_POD_LOG_PATH]) {
    fs.rmSync(p, { recursive: true, force: true });
  }
}
