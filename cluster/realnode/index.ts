/**
 * The real node beside kwok's fake one: support check, start (after the control plane) and
 * teardown. See ./network.ts for its network and ../components/{containerd,kubelet,kube-proxy,
 * coredns}.ts for its processes.
 *
 * Placement: the apiserver runs the PodNodeSelector admission plugin with the cluster default
 * node selector `type=kwok`, so every pod lands on kwok's node unless its namespace carries the
 * annotation `scheduler.alpha.kubernetes.io/node-selector: type=real` ({@link realNodeNamespace}).
 * Admission sets the pod's nodeSelector; nothing an MCPServer renders changes.
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { CoreV1Api, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import { NODE_BINARIES, allExecutable } from '../binaries.js';
import {
  CLUSTER_DIR,
  NODE_DIR,
  NODE_SELECTOR_ANNOTATION,
  REAL_NODE_NAME,
  REAL_NODE_READY_MS,
  REAL_NODE_SELECTOR,
} from '../paths.js';
import { clientExt, issueCert, pki, serverExt, writeKubeconfig } from '../pki.js';
import { nodeIsReady } from '../kube.js';
import { waitFor } from '../process.js';
import { readState, type ClusterState, type ProcessRecord, type RealNodeNetwork } from '../state.js';
import type { StartContext } from '../components/context.js';
import { CONTAINERD_SOCKET, ctrArgs, startContainerd } from '../components/containerd.js';
import { startKubelet } from '../components/kubelet.js';
import { startKubeProxy } from '../components/kube-proxy.js';
import { startNetworkPolicies } from '../components/kube-network-policies.js';
import { COREDNS_USER, applyClusterDnsObjects, startCoreDns } from '../components/coredns.js';
import { metricsServerBinary, startMetricsServer } from '../components/metrics-server.js';
import { run, tryRun } from './exec.js';
import { ensurePauseImage } from './images.js';
import { teardownNetwork } from './network.js';

/**
 * Why this machine cannot run the real node, or undefined if it can: root (network namespaces,
 * mounts, cgroups), `ip`, `nsenter` and `iptables`, a mounted cgroup hierarchy with the memory
 * controller, network namespaces (a probe namespace is created and deleted), veth and bridge
 * links, Debian's CNI plugins, and the node binaries from build.sh. `KUBEMCP_NO_REAL_NODE=1`
 * turns it off on purpose.
 */
export async function realNodeUnsupportedReason(
  binDir: string,
  nodeBinDir: string | undefined,
): Promise<string | undefined> {
  if (process.env.KUBEMCP_NO_REAL_NODE === '1') return 'KUBEMCP_NO_REAL_NODE=1';
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root (needs network namespaces, mounts and cgroups)';
  if (
    !nodeBinDir ||
    !allExecutable(binDir, NODE_BINARIES.binDir) ||
    !allExecutable(nodeBinDir, NODE_BINARIES.nodeBinDir)
  ) {
    return 'its binaries are not built (see build.sh output: runc needs libseccomp-dev, pkg-config and gcc)';
  }
  for (const tool of ['ip', 'nsenter', 'iptables', 'tar', 'gcc']) {
    if (!(await tryRun('sh', ['-c', `command -v ${tool}`]))) return `${tool} is not installed`;
  }
  for (const plugin of ['bridge', 'host-local', 'loopback', 'portmap']) {
    if (!fs.existsSync(`/usr/lib/cni/${plugin}`))
      return `CNI plugin /usr/lib/cni/${plugin} is missing (apt-get install containernetworking-plugins)`;
  }
  if (!fs.existsSync('/sys/fs/cgroup/memory') && !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(' cgroup2 '))
    return 'no cgroup hierarchy with the memory controller';
  const probe = `kubemcp-probe-${process.pid}`;
  try {
    await run('ip', ['netns', 'add', probe]);
    await run('ip', ['netns', 'exec', probe, 'ip', 'link', 'add', 'kmcpv0', 'type', 'veth', 'peer', 'name', 'kmcpv1']);
    await run('ip', ['netns', 'exec', probe, 'ip', 'link', 'add', 'kmcpb0', 'type', 'bridge']);
    await run('ip', ['netns', 'exec', probe, 'iptables', '-w', '5', '-t', 'nat', '-L', '-n']);
  } catch (err) {
    return `network namespaces, veth, bridge or iptables unavailable (${(err as Error).message.split('\n')[0]})`;
  } finally {
    await tryRun('ip', ['netns', 'del', probe]);
  }
  return undefined;
}

/**
 * Issues the real node's client and serving certificates and writes their kubeconfigs, which
 * reach the apiserver at `https://<hostIp>:<port>` (DNAT to 127.0.0.1, see ./network.ts).
 */
async function nodeCredentials(net: RealNodeNetwork): Promise<{ kubelet: string; kubeProxy: string; coredns: string }> {
  await Promise.all([
    issueCert('kubelet', `/O=system:nodes/CN=system:node:${REAL_NODE_NAME}`, clientExt),
    issueCert(
      'kubelet-serving',
      `/O=system:nodes/CN=system:node:${REAL_NODE_NAME}`,
      serverExt(`IP:${net.nodeIp},DNS:${REAL_NODE_NAME}`),
    ),
    issueCert('kube-proxy', '/CN=system:kube-proxy', clientExt),
    issueCert('coredns', `/CN=${COREDNS_USER}`, clientExt),
  ]);
  const server = `https://${net.hostIp}:${net.apiserverPort}`;
  const files = {
    kubelet: pki('kubelet.kubeconfig'),
    kubeProxy: pki('kube-proxy.kubeconfig'),
    coredns: pki('coredns.kubeconfig'),
  };
  writeKubeconfig(files.kubelet, server, 'kubelet', `system:node:${REAL_NODE_NAME}`);
  writeKubeconfig(files.kubeProxy, server, 'kube-proxy', 'system:kube-proxy');
  writeKubeconfig(files.coredns, server, 'coredns', COREDNS_USER);
  return files;
}

/**
 * Starts the real node on a running control plane: credentials, CoreDNS's RBAC and the kube-dns
 * Service, containerd (then the pause image), kubelet, kube-proxy, kube-network-policies, CoreDNS
 * and (when build.sh built it) metrics-server on the host. Returns once all but metrics-server are
 * started (it starts in the background, after CoreDNS), with a promise that resolves when the
 * Node is Ready, kube-proxy healthy, kube-network-policies serving, CoreDNS ready and the
 * metrics.k8s.io APIService Available (each bounded; rejects naming the component and its log).
 * @throws Error naming the component that failed to start.
 */
export async function startRealNode(
  ctx: StartContext,
  kc: KubeConfig,
  net: RealNodeNetwork,
  nodeBinDir: string,
): Promise<{ ready: Promise<void> }> {
  fs.mkdirSync(NODE_DIR, { recursive: true });
  const creds = await nodeCredentials(net);
  await applyClusterDnsObjects(kc, net);
  await startContainerd(ctx, net, nodeBinDir);
  await ensurePauseImage(path.join(nodeBinDir, 'ctr'), CONTAINERD_SOCKET, nodeBinDir).catch((err: Error) => {
    throw new Error(`containerd: cannot load the sandbox image: ${err.message}`);
  });
  ctx.log('sandbox (pause) image loaded');
  const kubelet = await startKubelet(ctx, net, creds.kubelet);
  const proxy = await startKubeProxy(ctx, net, creds.kubeProxy);
  const netpol = await startNetworkPolicies(ctx, kc, net, nodeBinDir);
  const dns = await startCoreDns(ctx, net, nodeBinDir, creds.coredns);
  // Optional in build.sh: without its binary the node runs, and metrics.k8s.io is not served.
  const metricsBin = metricsServerBinary(nodeBinDir);
  // Not awaited here: its certificates, RBAC and APIService are made while the node comes up.
  const metrics = metricsBin ? startMetricsServer(ctx, kc, metricsBin).then((m) => m.ready) : undefined;
  if (!metricsBin) ctx.log(`metrics-server is not built in ${nodeBinDir}: metrics.k8s.io is not served`);
  const core = kc.makeApiClient(CoreV1Api);
  const ready = Promise.all([
    waitFor(
      'kubelet',
      `Node ${REAL_NODE_NAME} to become Ready`,
      REAL_NODE_READY_MS,
      async () => (nodeIsReady(await core.readNode({ name: REAL_NODE_NAME })) ? true : undefined),
      kubelet,
    ).then(() => ctx.log(`node ${REAL_NODE_NAME} is Ready`)),
    proxy.healthy.then(() => ctx.log('kube-proxy is healthy')),
    netpol.ready.then(() => ctx.log('kube-network-policies is running (NetworkPolicy enforced)')),
    dns.ready.then(() => ctx.log('coredns is ready')),
    metrics?.then(() => ctx.log('metrics-server is serving metrics.k8s.io')),
  ]).then(() => undefined);
  return { ready };
}

/** Mount points under `dir` (from /proc/self/mountinfo), deepest first. */
function mountsUnder(dir: string): string[] {
  const unescape = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => unescape(l.split(' ')[4] ?? ''))
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Stops the real node's containers and removes its runtime state, given its processes' records:
 * stops metrics-server, CoreDNS, kube-network-policies, kube-proxy and the kubelet by pid; kills and deletes every task and container
 * in containerd's `k8s.io` namespace; stops containerd, then kills the shims left of this node's
 * socket (they outlive containerd by design) and what runs under them; unmounts
 * everything under NODE_DIR (pod volumes, rootfs overlays, the pods' network namespaces); removes
 * the node's network; deletes NODE_DIR when nothing is mounted there any more.
 * @param stop stops one process record by pid (the caller's stopProcess)
 * @throws Error when a process survives SIGKILL (the rest is still attempted first).
 */
export async function stopRealNode(
  state: ClusterState,
  stop: (p: ProcessRecord) => Promise<void>,
  log: (line: string) => void,
): Promise<void> {
  const rn = state.realNode;
  const failures: string[] = [];
  const byName = (c: string): ProcessRecord[] => state.processes.filter((p) => p.component === c);
  const stopAllOf = async (c: string): Promise<void> => {
    for (const p of byName(c)) await stop(p).catch((err: Error) => void failures.push(err.message));
  };
  for (const c of ['metrics-server', 'coredns', 'kube-network-policies', 'kube-proxy', 'kubelet']) await stopAllOf(c);
  const ctr = rn?.nodeBinDir ? path.join(rn.nodeBinDir, 'ctr') : undefined;
  if (ctr && fs.existsSync(CONTAINERD_SOCKET) && byName('containerd').length > 0) {
    const ids = (await run(ctr, ctrArgs('containers', 'ls', '-q')).catch(() => '')).split('\n').filter(Boolean);
    for (const id of ids) await tryRun(ctr, ctrArgs('tasks', 'kill', '--all', '--signal', 'SIGKILL', id));
    for (const id of ids) await tryRun(ctr, ctrArgs('tasks', 'delete', '--force', id), { timeoutMs: 15_000 });
    for (const id of ids) await tryRun(ctr, ctrArgs('containers', 'delete', id));
    if (ids.length) log(`removed ${ids.length} containers of the real node`);
  }
  await stopAllOf('containerd');
  // Shims outlive containerd by design (they keep containers running across its restarts); this
  // node's are the ones started with its socket as -address. Issue 20: demo:down left them running.
  const shims = await killShims(CONTAINERD_SOCKET);
  if (shims.killed) log(`stopped ${shims.killed} containerd shims of the real node (and what ran under them)`);
  if (shims.left.length) failures.push(`containerd shims still running: ${shims.left.join(', ')}`);
  if (fs.existsSync(NODE_DIR)) {
    for (const m of mountsUnder(NODE_DIR)) {
      if (!(await tryRun('umount', [m]))) await tryRun('umount', ['-l', m]);
    }
  }
  if (rn?.network) await teardownNetwork(rn.network, log);
  const left = fs.existsSync(NODE_DIR) ? mountsUnder(NODE_DIR) : [];
  if (left.length) failures.push(`still mounted under ${NODE_DIR}: ${left.slice(0, 3).join(', ')}`);
  else fs.rmSync(NODE_DIR, { recursive: true, force: true });
  if (failures.length) throw new Error(`real node: ${failures.join('\n')}`);
}

/** Pids of the processes whose argv is that of a containerd shim started with `-address <socket>`. */
export function shimPids(socket: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    const i = argv.indexOf('-address');
    if (path.basename(argv[0] ?? '').startsWith('containerd-shim') && i >= 0 && argv[i + 1] === socket)
      out.push(Number(entry));
  }
  return out;
}

/** Direct children of `pid` (from /proc/<pid>/task/<tid>/children). */
function childPids(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * SIGKILLs every shim of containerd socket `socket` and the processes under it (shims first),
 * then waits up to 5 s for them to be gone.
 * @returns how many shims there were, and the pids still alive after the wait.
 */
export async function killShims(socket: string): Promise<{ killed: number; left: number[] }> {
  const shims = shimPids(socket);
  const all: number[] = [];
  // Every pid is collected before any is killed, parents first: a shim killed first cannot react to
  // its container's death (report it, start anything), and its children, reparented, are still
  // in the list.
  const collect = (pid: number): void => {
    all.push(pid);
    for (const c of childPids(pid)) collect(c);
  };
  shims.forEach(collect);
  for (const pid of all) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const alive = (pid: number): boolean => {
    try {
      // A zombie is gone for our purpose (its parent reaps it); /proc/<pid>/stat's state is Z.
      return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 50 && shims.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  return { killed: shims.length, left: shims.filter(alive) };
}

// ---------------------------------------------------------------------------------------------
// For tests and the demo
// ---------------------------------------------------------------------------------------------

/**
 * Whether the running local cluster has a Ready real node (from state.json: the start waited for
 * Ready), and if not, why: `{ available: false, reason }` with reason kind `unsupported` (this
 * machine lacks something; tests skip with this message) or `failed` (a bug; tests fail).
 */
export function realNodeStatus(): { available: boolean; reason?: { kind: 'unsupported' | 'failed'; message: string } } {
  const state = readState();
  if (!state)
    return { available: false, reason: { kind: 'failed', message: `no local cluster recorded in ${CLUSTER_DIR}` } };
  if (!state.realNode)
    return {
      available: false,
      reason: { kind: 'unsupported', message: 'this cluster was started without a real node' },
    };
  return { available: state.realNode.available, ...(state.realNode.reason ? { reason: state.realNode.reason } : {}) };
}

/** True when the running local cluster has a Ready real node (see {@link realNodeStatus}). */
export function realNodeAvailable(): boolean {
  return realNodeStatus().available;
}

/**
 * A Namespace object whose pods run on the real node: the PodNodeSelector annotation gives each
 * new pod the nodeSelector `type=real` (instead of the cluster default `type=kwok`).
 * Create it with `core.createNamespace({ body: realNodeNamespace('x') })`.
 */
export function realNodeNamespace(name: string, labels: Record<string, string> = {}): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels, annotations: { [NODE_SELECTOR_ANNOTATION]: REAL_NODE_SELECTOR } },
  };
}
