/**
 * The real node's network. The node's processes (containerd and the pods' CNI bridge, kubelet,
 * kube-proxy, CoreDNS) run in their own network namespace, joined to the host by a veth pair, so
 * that kube-proxy's iptables rules, the node's ports (kubelet 10250, DNS 53) and the pod bridge
 * never touch the host's network or another worktree's cluster. The kubelet refuses a loopback
 * node IP; the veth gives it a private one. Nothing is routed beyond this machine: the node's
 * namespace has no default route, and the host only gains a route to the node's pod subnet.
 *
 *   host netns                                 node netns (ip netns <netns>)
 *   kube-apiserver 127.0.0.1:<port>            kubelet, kube-proxy, CoreDNS, containerd
 *   <hostIf> 10.246.<i>.1/30  <---- veth ---->  <nodeIf> 10.246.<i>.2/30 (node InternalIP)
 *   route 10.247.<i>.0/24 via 10.246.<i>.2      bridge kmcpbr0 10.247.<i>.1/24 -- pods
 *   DNAT <hostIf>:10.246.<i>.1:<port> -> 127.0.0.1:<port>  (the node and pods reach the apiserver)
 *
 * `<i>` (1-250) is chosen per cluster directory; an owner file in /run/kubemcp marks whose
 * namespace it is, so a crashed cluster's leftovers are removed by the same cluster's next start.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CLUSTER_DIR, POD_CIDR, SERVICE_CIDR } from '../paths.js';
import type { RealNodeNetwork } from '../state.js';
import { run, tryRun } from './exec.js';

/** Owner files: `/run/kubemcp/<netns>.owner` holds the CLUSTER_DIR that created the namespace. */
const OWNER_DIR = '/run/kubemcp';
const NETNS_PREFIX = 'kubemcp-';

/** The planned names and addresses for index `i`. */
function plan(index: number, apiserverPort: number): RealNodeNetwork {
  return {
    index,
    netns: `${NETNS_PREFIX}${index}`,
    hostIf: `kmcp${index}h`,
    nodeIf: `kmcp${index}n`,
    hostIp: `10.246.${index}.1`,
    nodeIp: `10.246.${index}.2`,
    podCidr: `10.247.${index}.0/24`,
    apiserverPort,
  };
}

const ownerFile = (netns: string): string => path.join(OWNER_DIR, `${netns}.owner`);

/** Whether network namespace `name` exists (a file in /run/netns). */
const netnsExists = (name: string): boolean => fs.existsSync(path.join('/run/netns', name));

/** Whether a host interface of that name exists. */
const linkExists = (name: string): boolean => fs.existsSync(path.join('/sys/class/net', name));

/**
 * Chooses an index for this cluster: the one derived from a hash of CLUSTER_DIR, or the next
 * free one. A namespace this same cluster dir left behind (owner file) is torn down and reused.
 * @throws Error when all 250 indexes are taken.
 */
async function chooseIndex(apiserverPort: number, log: (line: string) => void): Promise<number> {
  const start = createHash('sha256').update(CLUSTER_DIR).digest().readUInt32BE(0) % 250;
  for (let k = 0; k < 250; k++) {
    const index = ((start + k) % 250) + 1;
    const p = plan(index, apiserverPort);
    let owner: string | undefined;
    try {
      owner = fs.readFileSync(ownerFile(p.netns), 'utf8').trim();
    } catch {
      owner = undefined;
    }
    if (owner === CLUSTER_DIR) {
      log(`removing the real node network left by an earlier run (netns ${p.netns})`);
      await teardownNetwork(p, log);
    }
    if (!netnsExists(p.netns) && !linkExists(p.hostIf)) return index;
  }
  throw new Error('no free real-node network index (1-250): too many kubemcp clusters on this machine?');
}

/** Runs `args` inside the node's network namespace. */
export function inNetns(net: RealNodeNetwork, cmd: string, args: string[]): Promise<string> {
  return run('ip', ['netns', 'exec', net.netns, cmd, ...args]);
}

/**
 * Creates the node's network (see the module comment): namespace, veth pair with addresses, host
 * route to the pod subnet, forwarding and route_localnet, and the DNAT of the apiserver port.
 * On failure, whatever was created is removed before the error is rethrown.
 * @throws Error quoting the failing command.
 */
export async function setupNetwork(apiserverPort: number, log: (line: string) => void): Promise<RealNodeNetwork> {
  const net = plan(await chooseIndex(apiserverPort, log), apiserverPort);
  try {
    fs.mkdirSync(OWNER_DIR, { recursive: true });
    fs.writeFileSync(ownerFile(net.netns), `${CLUSTER_DIR}\n`);
    await run('ip', ['netns', 'add', net.netns]);
    await run('ip', ['link', 'add', net.hostIf, 'type', 'veth', 'peer', 'name', net.nodeIf]);
    await run('ip', ['link', 'set', net.nodeIf, 'netns', net.netns]);
    await run('ip', ['addr', 'add', `${net.hostIp}/30`, 'dev', net.hostIf]);
    await run('ip', ['link', 'set', net.hostIf, 'up']);
    await inNetns(net, 'ip', ['addr', 'add', `${net.nodeIp}/30`, 'dev', net.nodeIf]);
    await inNetns(net, 'ip', ['link', 'set', net.nodeIf, 'up']);
    await inNetns(net, 'ip', ['link', 'set', 'lo', 'up']);
    // Pods are routed by the node namespace (forwarding on there only); the host reaches them via the node.
    await inNetns(net, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    // Packets between pods on the node's bridge pass the IP hooks (where kube-network-policies
    // enforces NetworkPolicy) only with br_netfilter, set per namespace: here, not on the host.
    if (!fs.existsSync('/proc/sys/net/bridge')) await tryRun('modprobe', ['br_netfilter']);
    for (const key of ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables'])
      if (!(await tryRun('ip', ['netns', 'exec', net.netns, 'sysctl', '-q', '-w', `${key}=1`])))
        log(`real node network: cannot set ${key}=1 (no br_netfilter): NetworkPolicy is not enforced between pods`);
    await run('ip', ['route', 'add', net.podCidr, 'via', net.nodeIp, 'dev', net.hostIf]);
    // The apiserver listens on 127.0.0.1 only: connections from the node to hostIp:port are
    // DNATed to it, which needs route_localnet on this one interface.
    fs.writeFileSync(`/proc/sys/net/ipv4/conf/${net.hostIf}/route_localnet`, '1');
    await run('iptables', dnatRule('-A', net));
    log(
      `real node network: netns ${net.netns}, node ${net.nodeIp}, pods ${net.podCidr}, apiserver via ${net.hostIp}:${apiserverPort}`,
    );
    return net;
  } catch (err) {
    await teardownNetwork(net, log);
    throw err;
  }
}

/** The iptables arguments adding (`-A`) or deleting (`-D`) the apiserver DNAT of `net`. */
function dnatRule(op: '-A' | '-D', net: RealNodeNetwork): string[] {
  return [
    '-w',
    '5',
    '-t',
    'nat',
    op,
    'PREROUTING',
    '-i',
    net.hostIf,
    '-d',
    `${net.hostIp}/32`,
    '-p',
    'tcp',
    '--dport',
    String(net.apiserverPort),
    '-m',
    'comment',
    '--comment',
    `kubemcp ${net.netns} apiserver`,
    '-j',
    'DNAT',
    '--to-destination',
    `127.0.0.1:${net.apiserverPort}`,
  ];
}

/**
 * Removes the node's network: the DNAT rule, the namespace (its veth end and the pod bridge go
 * with it), the host veth end (and its route), and the owner file. Each step is best effort and
 * idempotent; never throws.
 */
export async function teardownNetwork(net: RealNodeNetwork, log: (line: string) => void): Promise<void> {
  for (let i = 0; i < 5 && (await tryRun('iptables', dnatRule('-D', net))); i++) {
    /* delete every copy */
  }
  if (netnsExists(net.netns) && !(await tryRun('ip', ['netns', 'del', net.netns])))
    log(`could not delete netns ${net.netns}`);
  if (linkExists(net.hostIf)) await tryRun('ip', ['link', 'del', net.hostIf]);
  fs.rmSync(ownerFile(net.netns), { force: true });
}

/**
 * Fences the cluster's virtual address ranges on the host: kwok's fake pod IPs
 * ({@link POD_CIDR}) and the Service CIDR ({@link SERVICE_CIDR}) get `unreachable` routes in the
 * host's routing table, so nothing sent to them from this machine (the apiserver's service proxy
 * to a kwok pod, a handshake through it, a ClusterIP dialled from the host) can follow the default
 * route off the machine: it fails at once with EHOSTUNREACH instead. The real node's own ranges
 * (10.246/10.247) keep their more specific routes, and the node's namespace has its own table.
 * Idempotent (`ip route replace`); the routes stay after `down`, as other clusters of this machine
 * may rely on them, and name no address anything else uses. Needs root; without it nothing is done.
 * @returns whether the routes are in place.
 */
export async function fenceClusterRanges(log: (line: string) => void): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  let ok = true;
  for (const cidr of [POD_CIDR, SERVICE_CIDR])
    ok = (await tryRun('ip', ['route', 'replace', 'unreachable', cidr])) && ok;
  log(
    ok
      ? `host routes: ${POD_CIDR} (kwok's pod IPs) and ${SERVICE_CIDR} (Services) unreachable from the host`
      : 'host routes: could not fence the cluster ranges',
  );
  return ok;
}
