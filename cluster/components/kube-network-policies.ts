/**
 * NetworkPolicy enforcement on the real node: `sigs.k8s.io/kube-network-policies` (the
 * Kubernetes SIG Network implementation), a process in the node's network namespace like
 * kube-proxy. It programs an nftables table there (never in the host's tables) whose postrouting
 * chain sends the first packet of each connection to or from a pod selected by a NetworkPolicy to
 * an nfqueue, and accepts or drops it by the policies it watches. Packets the node's root user
 * sends (the kubelet's probes) and established connections pass untouched.
 *
 * It reads only in-cluster config (client-go `rest.InClusterConfig`: env KUBERNETES_SERVICE_HOST
 * and _PORT, token and CA at /var/run/secrets/kubernetes.io/serviceaccount): it gets the
 * ServiceAccount `kube-system/kube-network-policies` with a token Secret, mounted there in a
 * private mount namespace of its own (cluster/process.ts), and the apiserver at the host end of
 * the node's veth (DNAT to the apiserver, ../realnode/network.ts). Pod-to-pod packets on the
 * node's bridge reach the postrouting hook through br_netfilter (`bridge-nf-call-iptables`,
 * set in the node's namespace by ../realnode/network.ts).
 * Reference: https://github.com/kubernetes-sigs/kube-network-policies (v0.8.0, cmd/main.go,
 * install.yaml) and https://kubernetes.io/docs/concepts/services-networking/network-policies/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { COMPONENT_READY_MS, NODE_DIR, REAL_NODE_NAME } from '../paths.js';
import { pki } from '../pki.js';
import { createIdempotently } from '../kube.js';
import { httpGet, waitFor } from '../process.js';
import type { ProcessRecord, RealNodeNetwork } from '../state.js';
import type { StartContext } from './context.js';

/** Its ServiceAccount (namespace kube-system), ClusterRole and ClusterRoleBinding name. */
export const NETWORK_POLICY_AGENT = 'kube-network-policies';
/** The port of its /metrics on the node address (its readiness: served once its informers run). */
export const NETWORK_POLICY_METRICS_PORT = 9080;
/** How long the token controller may take to fill the token Secret. */
const TOKEN_WAIT_MS = 60_000;

/** The rules of upstream's install.yaml ClusterRole (v0.8.0), NetworkPolicies only (no admin policies). */
const RULES = [
  { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['list', 'watch'] },
];

/**
 * Creates its ServiceAccount, RBAC and a token Secret (idempotent), waits for the token, and
 * writes `token` and `ca.crt` into `dir` (0700; files 0600).
 * @throws Error when the apiserver keeps refusing an object or the token never appears.
 */
export async function writeNetworkPolicyCredentials(kc: KubeConfig, dir: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const namespace = 'kube-system';
  await createIdempotently(`ServiceAccount ${namespace}/${NETWORK_POLICY_AGENT}`, () =>
    core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: NETWORK_POLICY_AGENT } } }),
  );
  await createIdempotently(`ClusterRole ${NETWORK_POLICY_AGENT}`, () =>
    rbac.createClusterRole({ body: { metadata: { name: NETWORK_POLICY_AGENT }, rules: RULES } }),
  );
  await createIdempotently(`ClusterRoleBinding ${NETWORK_POLICY_AGENT}`, () =>
    rbac.createClusterRoleBinding({
      body: {
        metadata: { name: NETWORK_POLICY_AGENT },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NETWORK_POLICY_AGENT },
        subjects: [{ kind: 'ServiceAccount', name: NETWORK_POLICY_AGENT, namespace }],
      },
    }),
  );
  const secret = `${NETWORK_POLICY_AGENT}-token`;
  await createIdempotently(`Secret ${namespace}/${secret}`, () =>
    core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: secret, annotations: { 'kubernetes.io/service-account.name': NETWORK_POLICY_AGENT } },
        type: 'kubernetes.io/service-account-token',
      },
    }),
  );
  // The token controller (kube-controller-manager) fills data.token.
  const token = await waitFor(
    'kube-controller-manager',
    `the token of Secret ${namespace}/${secret}`,
    TOKEN_WAIT_MS,
    async () => {
      const s = await core.readNamespacedSecret({ name: secret, namespace });
      return s.data?.token ? Buffer.from(s.data.token, 'base64').toString('utf8') : undefined;
    },
  );
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'token'), token, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'ca.crt'), fs.readFileSync(pki('ca.crt')), { mode: 0o600 });
}

/**
 * Starts kube-network-policies in the node's namespace; returns its record and a promise of its
 * /metrics answering 200 ({@link COMPONENT_READY_MS} at most; rejects naming its log).
 * @throws Error when its credentials cannot be made or it cannot be started.
 */
export async function startNetworkPolicies(
  ctx: StartContext,
  kc: KubeConfig,
  net: RealNodeNetwork,
  nodeBinDir: string,
): Promise<{ proc: ProcessRecord; ready: Promise<true> }> {
  const credentials = path.join(NODE_DIR, `${NETWORK_POLICY_AGENT}-credentials`);
  await writeNetworkPolicyCredentials(kc, credentials);
  const proc = await ctx.launch(
    'kube-network-policies',
    path.join(nodeBinDir, 'kube-network-policies'),
    [
      `--hostname-override=${REAL_NODE_NAME}`,
      '--disable-nri', // no NRI socket on this node: pod IPs come from the apiserver
      `--metrics-bind-address=${net.nodeIp}:${NETWORK_POLICY_METRICS_PORT}`,
      '--v=1',
    ],
    { KUBERNETES_SERVICE_HOST: net.hostIp, KUBERNETES_SERVICE_PORT: String(net.apiserverPort) },
    net.netns,
    credentials,
  );
  const url = `http://${net.nodeIp}:${NETWORK_POLICY_METRICS_PORT}/metrics`;
  const ready = waitFor(
    'kube-network-policies',
    url,
    COMPONENT_READY_MS,
    async () => ((await httpGet(url)).status === 200 ? true : undefined),
    proc,
  );
  return { proc, ready };
}
