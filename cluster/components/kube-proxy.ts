/**
 * The real node's kube-proxy (iptables mode) in the node's network namespace: its rules live
 * there only, never in the host's tables. masqueradeAll, because a pod reaching a Service backed
 * by a pod on the same bridge must get the reply back through the node (and the node's namespace
 * need not rely on br_netfilter). Conntrack sysctls are left alone (`maxPerCore: 0`, timeouts 0):
 * nf_conntrack_max is global to the machine.
 * Reference: https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { COMPONENT_READY_MS, NODE_DIR, REAL_NODE_NAME } from '../paths.js';
import { httpGet, waitFor } from '../process.js';
import type { ProcessRecord, RealNodeNetwork } from '../state.js';
import type { StartContext } from './context.js';

/** kube-proxy's healthz port on the node address. */
export const KUBE_PROXY_HEALTHZ_PORT = 10256;

/** The KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) of the real node. */
export function kubeProxyConfig(net: RealNodeNetwork, kubeconfig: string): object {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig },
    hostnameOverride: REAL_NODE_NAME,
    clusterCIDR: net.podCidr,
    detectLocalMode: 'ClusterCIDR',
    healthzBindAddress: `${net.nodeIp}:${KUBE_PROXY_HEALTHZ_PORT}`,
    metricsBindAddress: '127.0.0.1:10249',
    iptables: { masqueradeAll: true },
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    nodePortAddresses: [`${net.nodeIp}/32`],
  };
}

/**
 * Starts kube-proxy in the node's namespace; returns its record and a promise of its /healthz
 * answering 200 ({@link COMPONENT_READY_MS} at most; rejects naming its log).
 */
export async function startKubeProxy(
  ctx: StartContext,
  net: RealNodeNetwork,
  kubeconfig: string,
): Promise<{ proc: ProcessRecord; healthy: Promise<true> }> {
  const config = path.join(NODE_DIR, 'kube-proxy.yaml');
  fs.writeFileSync(config, toYaml(kubeProxyConfig(net, kubeconfig)));
  const proc = await ctx.launch(
    'kube-proxy',
    path.join(ctx.binDir, 'kube-proxy'),
    [`--config=${config}`, '--v=1'],
    {},
    net.netns,
  );
  const url = `http://${net.nodeIp}:${KUBE_PROXY_HEALTHZ_PORT}/healthz`;
  const healthy = waitFor(
    'kube-proxy',
    url,
    COMPONENT_READY_MS,
    async () => ((await httpGet(url)).status === 200 ? true : undefined),
    proc,
  );
  return { proc, healthy };
}
