/**
 * CoreDNS as the cluster DNS of the real node's pods: a process in the node's network namespace
 * listening on the node address, port 53, behind the kube-dns Service (ClusterIP CLUSTER_DNS_IP,
 * no selector, an EndpointSlice pointing at the node address), so `<svc>.<ns>.svc.cluster.local`
 * resolves in pods. Only the `kubernetes` plugin answers: names outside the cluster do not
 * resolve (nothing is forwarded off the machine).
 * Reference: https://coredns.io/plugins/kubernetes/ and
 * https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { CoreV1Api, DiscoveryV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CLUSTER_DNS_IP, CLUSTER_DOMAIN, COMPONENT_READY_MS, CONTEXT_NAME, NODE_DIR } from '../paths.js';
import { createIdempotently } from '../kube.js';
import { httpGet, waitFor } from '../process.js';
import type { ProcessRecord, RealNodeNetwork } from '../state.js';
import type { StartContext } from './context.js';

/** CoreDNS's client identity (its client certificate's CN), bound to {@link COREDNS_ROLE}. */
export const COREDNS_USER = 'system:coredns';
/** ClusterRole of CoreDNS's kubernetes plugin (as CoreDNS's own deployment manifests). */
export const COREDNS_ROLE = 'system:coredns';
const READY_PORT = 8181;

/** The Corefile for the node address `net.nodeIp`. */
export function corefile(net: RealNodeNetwork, kubeconfig: string): string {
  return `.:53 {
    bind ${net.nodeIp}
    errors
    health ${net.nodeIp}:8080
    ready ${net.nodeIp}:${READY_PORT}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig} ${CONTEXT_NAME}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
`;
}

/**
 * Creates CoreDNS's RBAC and the kube-dns Service with its EndpointSlice (idempotent).
 * @throws Error when the apiserver keeps refusing an object.
 */
export async function applyClusterDnsObjects(kc: KubeConfig, net: RealNodeNetwork): Promise<void> {
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  await createIdempotently(`ClusterRole ${COREDNS_ROLE}`, () =>
    rbac.createClusterRole({
      body: {
        metadata: { name: COREDNS_ROLE },
        rules: [
          { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
          { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
        ],
      },
    }),
  );
  await createIdempotently(`ClusterRoleBinding ${COREDNS_ROLE}`, () =>
    rbac.createClusterRoleBinding({
      body: {
        metadata: { name: COREDNS_ROLE },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: COREDNS_ROLE },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: COREDNS_USER }],
      },
    }),
  );
  const ports = [
    { name: 'dns', port: 53, protocol: 'UDP' },
    { name: 'dns-tcp', port: 53, protocol: 'TCP' },
  ];
  await createIdempotently('Service kube-system/kube-dns', () =>
    core.createNamespacedService({
      namespace: 'kube-system',
      body: {
        metadata: { name: 'kube-dns', labels: { 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS' } },
        spec: { clusterIP: CLUSTER_DNS_IP, ports: ports.map((p) => ({ ...p, targetPort: 53 })) },
      },
    }),
  );
  await createIdempotently('EndpointSlice kube-system/kube-dns-node', () =>
    discovery.createNamespacedEndpointSlice({
      namespace: 'kube-system',
      body: {
        metadata: {
          name: 'kube-dns-node',
          labels: {
            'kubernetes.io/service-name': 'kube-dns',
            'endpointslice.kubernetes.io/managed-by': 'kubemcp.local',
          },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [net.nodeIp], conditions: { ready: true } }],
        ports,
      },
    }),
  );
}

/**
 * Starts CoreDNS in the node's namespace; returns its record and a promise of its /ready
 * answering 200 ({@link COMPONENT_READY_MS} at most; rejects naming its log).
 */
export async function startCoreDns(
  ctx: StartContext,
  net: RealNodeNetwork,
  nodeBinDir: string,
  kubeconfig: string,
): Promise<{ proc: ProcessRecord; ready: Promise<true> }> {
  const file = path.join(NODE_DIR, 'Corefile');
  fs.writeFileSync(file, corefile(net, kubeconfig));
  const proc = await ctx.launch('coredns', path.join(nodeBinDir, 'coredns'), ['-conf', file], {}, net.netns);
  const url = `http://${net.nodeIp}:${READY_PORT}/ready`;
  const ready = waitFor(
    'coredns',
    url,
    COMPONENT_READY_MS,
    async () => ((await httpGet(url)).status === 200 ? true : undefined),
    proc,
  );
  return { proc, ready };
}
