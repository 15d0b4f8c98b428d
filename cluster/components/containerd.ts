/**
 * containerd 2.x (CRI plugin) of the real node, in the node's network namespace, with its own
 * root, state and socket under NODE_DIR (so it never meets a system containerd or another
 * worktree's), runc from build.sh, Debian's CNI plugins with a bridge conflist on the node's pod
 * subnet, and the pinned sandbox image PAUSE_IMAGE.
 * - `restrict_oom_score_adj = true`: these machines lack CAP_SYS_RESOURCE; without it every
 *   sandbox fails with "runc create failed: can't get final child's PID from pipe: EOF".
 * - `netns_mounts_under_state_dir`: the pods' network namespaces are mounted under our state dir,
 *   not /run/netns, so teardown finds them all.
 * Config reference: https://github.com/containerd/containerd/blob/main/docs/cri/config.md (version 3).
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { NODE_DIR, PAUSE_IMAGE } from '../paths.js';
import { run } from '../realnode/exec.js';
import { waitFor } from '../process.js';
import type { ProcessRecord, RealNodeNetwork } from '../state.js';
import type { StartContext } from './context.js';

/** containerd's root (content, snapshots), state (runtime, sockets) and CNI dirs. */
export const CONTAINERD_ROOT = path.join(NODE_DIR, 'containerd');
export const CONTAINERD_STATE = path.join(NODE_DIR, 'run');
/** containerd's gRPC socket (the kubelet's container runtime endpoint; `ctr --address`). */
export const CONTAINERD_SOCKET = path.join(NODE_DIR, 'containerd.sock');
export const CNI_CONF_DIR = path.join(NODE_DIR, 'cni', 'net.d');
export const CNI_IPAM_DIR = path.join(NODE_DIR, 'cni', 'ipam');
/** Debian's containernetworking-plugins. */
export const CNI_BIN_DIR = '/usr/lib/cni';
/** Name of the pods' bridge in the node's network namespace. */
export const POD_BRIDGE = 'kmcpbr0';
const CONTAINERD_READY_MS = 30_000;

/** containerd's config.toml (version 3) for binaries in `nodeBinDir`. */
export function containerdConfig(nodeBinDir: string): string {
  const q = (s: string): string => JSON.stringify(s);
  return `version = 3
root = ${q(CONTAINERD_ROOT)}
state = ${q(CONTAINERD_STATE)}

[grpc]
  address = ${q(CONTAINERD_SOCKET)}

[ttrpc]
  address = ${q(`${CONTAINERD_SOCKET}.ttrpc`)}

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${q(path.join(CONTAINERD_ROOT, 'opt'))}
  [plugins."io.containerd.nri.v1.nri"]
    disable = true
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = ${q(PAUSE_IMAGE)}
  [plugins."io.containerd.cri.v1.runtime"]
    restrict_oom_score_adj = true
    disable_apparmor = true
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          BinaryName = ${q(path.join(nodeBinDir, 'runc'))}
          Root = ${q(path.join(CONTAINERD_STATE, 'runc'))}
          SystemdCgroup = false
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [${q(CNI_BIN_DIR)}]
      conf_dir = ${q(CNI_CONF_DIR)}
      max_conf_num = 1
`;
}

/**
 * The CNI network of the pods (cniVersion 1.0.0): a bridge in the node's namespace, gateway
 * `.1` of the pod subnet, host-local IPAM with its state under NODE_DIR, no IP masquerade
 * (nothing leaves the machine), hairpin on (a pod reaching itself through a Service), portmap.
 */
export function cniConflist(net: RealNodeNetwork): object {
  return {
    cniVersion: '1.0.0',
    name: 'kubemcp',
    plugins: [
      {
        type: 'bridge',
        bridge: POD_BRIDGE,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: net.podCidr }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: CNI_IPAM_DIR,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

/** `ctr` arguments addressing our containerd's CRI namespace. */
export const ctrArgs = (...args: string[]): string[] => [
  '--address',
  CONTAINERD_SOCKET,
  '--namespace',
  'k8s.io',
  ...args,
];

/**
 * Writes containerd's config and the CNI conflist, starts containerd in the node's namespace
 * (its shim and runc from `nodeBinDir` first on PATH) and waits until `ctr version` answers.
 * @throws Error naming containerd and its log on exit or timeout.
 */
export async function startContainerd(
  ctx: StartContext,
  net: RealNodeNetwork,
  nodeBinDir: string,
): Promise<ProcessRecord> {
  for (const d of [CONTAINERD_ROOT, CONTAINERD_STATE, CNI_CONF_DIR, CNI_IPAM_DIR]) fs.mkdirSync(d, { recursive: true });
  const config = path.join(NODE_DIR, 'containerd.toml');
  fs.writeFileSync(config, containerdConfig(nodeBinDir));
  fs.writeFileSync(path.join(CNI_CONF_DIR, '10-kubemcp.conflist'), JSON.stringify(cniConflist(net), null, 2) + '\n');
  const proc = await ctx.launch(
    'containerd',
    path.join(nodeBinDir, 'containerd'),
    ['--config', config],
    { PATH: `${nodeBinDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` },
    net.netns,
  );
  await waitFor(
    'containerd',
    `${CONTAINERD_SOCKET} to answer`,
    CONTAINERD_READY_MS,
    async () => {
      await run(path.join(nodeBinDir, 'ctr'), ['--address', CONTAINERD_SOCKET, 'version'], { timeoutMs: 5_000 });
      return true;
    },
    proc,
  );
  ctx.log('containerd is serving');
  return proc;
}
