/**
 * The real node's kubelet, in the node's network namespace, registering node REAL_NODE_NAME with
 * label `type=real` and InternalIP = the node's veth address. KubeletConfiguration as checked on
 * these machines (issue 8): `failCgroupV1: false` (cgroup v1 hybrid hosts; 1.35+ refuses them
 * otherwise), `cgroupDriver: cgroupfs`, webhook authentication/authorization (the apiserver calls
 * it with its kubelet client cert), `enforceNodeAllocatable: []`, `failSwapOn: false`,
 * `localStorageCapacityIsolation: false`. Its API listens on the node address only (the apiserver
 * reaches it there for logs, exec and port-forward); healthz on 127.0.0.1 of the node namespace.
 * `cgroupsPerQOS: false` keeps it out of a shared `/kubepods` hierarchy, so two worktrees' nodes
 * never manage the same cgroups; pod logs go under NODE_DIR, not /var/log/pods.
 * Reference: https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { CLUSTER_DNS_IP, CLUSTER_DOMAIN, KUBELET_PORT, NODE_DIR, NODE_TYPE_LABEL, REAL_NODE_NAME } from '../paths.js';
import { pki } from '../pki.js';
import type { ProcessRecord, RealNodeNetwork } from '../state.js';
import { CONTAINERD_SOCKET } from './containerd.js';
import type { StartContext } from './context.js';

export const KUBELET_ROOT = path.join(NODE_DIR, 'kubelet');
export const POD_LOGS_DIR = path.join(NODE_DIR, 'pod-logs');

/** The KubeletConfiguration (kubelet.config.k8s.io/v1beta1) of the real node. */
export function kubeletConfig(net: RealNodeNetwork): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    localStorageCapacityIsolation: false,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: pki('ca.crt') },
    },
    authorization: { mode: 'Webhook' },
    address: net.nodeIp,
    port: KUBELET_PORT,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    tlsCertFile: pki('kubelet-serving.crt'),
    tlsPrivateKeyFile: pki('kubelet-serving.key'),
    containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
    clusterDNS: [CLUSTER_DNS_IP],
    clusterDomain: CLUSTER_DOMAIN,
    // No upstream resolvers: names outside the cluster do not resolve in pods (nothing leaves the machine).
    resolvConf: path.join(NODE_DIR, 'resolv.conf'),
    podLogsDir: POD_LOGS_DIR,
    maxPods: 50,
    serializeImagePulls: false,
    // A shared build machine's disk and memory must not make the node evict test pods.
    evictionHard: {
      'memory.available': '50Mi',
      'nodefs.available': '1%',
      'imagefs.available': '1%',
      'nodefs.inodesFree': '1%',
    },
    // The kubelet's /logs/ handler with log queries (NodeLogQuery, GA-locked in 1.36): `kubemcp
    // serve`'s get-node-logs reads it through the node proxy.
    enableSystemLogHandler: true,
    enableSystemLogQuery: true,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
  };
}

/**
 * Writes the kubelet's config, resolv.conf and kubeconfig (user system:node:REAL_NODE_NAME) and
 * starts it in the node's network namespace. Readiness is the Node's Ready condition (the caller
 * waits for it through the API).
 * @throws Error naming the kubelet and its log if it cannot start.
 */
export async function startKubelet(
  ctx: StartContext,
  net: RealNodeNetwork,
  kubeconfig: string,
): Promise<ProcessRecord> {
  for (const d of [KUBELET_ROOT, POD_LOGS_DIR]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(NODE_DIR, 'resolv.conf'), '# kubemcp local cluster: pods resolve cluster names only\n');
  const config = path.join(NODE_DIR, 'kubelet.yaml');
  fs.writeFileSync(config, toYaml(kubeletConfig(net)));
  return ctx.launch(
    'kubelet',
    path.join(ctx.binDir, 'kubelet'),
    [
      `--config=${config}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${KUBELET_ROOT}`,
      `--hostname-override=${REAL_NODE_NAME}`,
      `--node-ip=${net.nodeIp}`,
      `--node-labels=${NODE_TYPE_LABEL}=real`,
      '--v=1',
    ],
    {},
    net.netns,
  );
}
