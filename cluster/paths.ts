/**
 * Paths, names and constants of the local cluster: where its runtime state lives (all under
 * {@link CLUSTER_DIR}, `<repo>/.cluster/`, git-ignored), the fixed names (context, node) and the
 * address ranges. Pure constants: importing this module starts nothing.
 *
 * Layout of {@link CLUSTER_DIR}:
 * - `kubeconfig`        admin kubeconfig (context `kubemcp`, user in group system:masters)
 * - `state.json`        the ClusterState (./state.ts): pids, ports, bin dir, start time
 * - `logs/<name>.log`   one log per component (the previous run's log is kept as `.log.prev`)
 * - `pki/`              CA, serving and client certificates, service-account key pair, and
 *                       the per-component kubeconfigs
 * - `etcd/`             etcd data dir; `kwok/` kwok's work dir; `pod.log` the fake pod log
 *
 * @module
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Directory of this module: `<repo>/cluster`. */
export const CLUSTER_SRC_DIR = path.dirname(fileURLToPath(import.meta.url));
/** Repository root, derived from this module's own location (not from `process.cwd()`). */
export const REPO_ROOT = path.resolve(CLUSTER_SRC_DIR, '..');
/** Root of all runtime state of the local cluster: `<repo>/.cluster`. */
export const CLUSTER_DIR = path.join(REPO_ROOT, '.cluster');
/** Admin kubeconfig of the local cluster (context {@link CONTEXT_NAME}). */
export const KUBECONFIG_PATH = path.join(CLUSTER_DIR, 'kubeconfig');
/** JSON file describing the running cluster (ClusterState, see ./state.ts). */
export const STATE_PATH = path.join(CLUSTER_DIR, 'state.json');
/** Directory of the component logs, `<component>.log`; kept by clusterDown. */
export const LOG_DIR = path.join(CLUSTER_DIR, 'logs');
/** Certificates, keys and per-component kubeconfigs. */
export const PKI_DIR = path.join(CLUSTER_DIR, 'pki');
/** etcd's data directory. */
export const ETCD_DATA_DIR = path.join(CLUSTER_DIR, 'etcd');
/** kwok's work dir (`KWOK_WORKDIR`), so that a user's `~/.kwok/kwok.yaml` is never picked up. */
export const KWOK_WORK_DIR = path.join(CLUSTER_DIR, 'kwok');
/** The CRI-formatted file kwok serves as every container's log. */
export const FAKE_POD_LOG_PATH = path.join(CLUSTER_DIR, 'pod.log');
/**
 * The apiserver's audit log: JSON lines at Metadata level for write requests only
 * (create, update, patch, delete, deletecollection), so tests can count what a client wrote.
 */
export const AUDIT_LOG_PATH = path.join(CLUSTER_DIR, 'logs', 'audit.log');
/** Lock file serialising concurrent `up`/`down` calls (holds the owner's pid). */
export const LOCK_PATH = path.join(CLUSTER_DIR, 'lock');
/** kwok Stage objects (copied from sigs.k8s.io/kwok@v0.8.0/kustomize/stage). */
export const STAGES_DIR = path.join(CLUSTER_SRC_DIR, 'stages');
/** kwok CRDs (Stage, Logs, ClusterLogs; copied from sigs.k8s.io/kwok@v0.8.0/kustomize/crd). */
export const CRDS_DIR = path.join(STAGES_DIR, 'crds');
/** The script that builds (or finds cached) binaries and prints their directory last. */
export const BUILD_SCRIPT = path.join(CLUSTER_SRC_DIR, 'build.sh');

/** kubeconfig context, cluster and user name prefix. */
export const CONTEXT_NAME = 'kubemcp';
/** Name of the single fake node managed by kwok. */
export const NODE_NAME = 'kwok-node-0';
/** Annotation kwok selects its nodes by (`--manage-nodes-with-annotation-selector`). */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
/** Duration of the fake node's Lease, renewed by kwok (kubelet's default is 40 s). */
export const NODE_LEASE_SECONDS = 40;
/** Service CIDR of the cluster; the apiserver's serving cert includes its first address. */
export const SERVICE_CIDR = '10.96.0.0/16';
/** First service IP (the `kubernetes` Service's ClusterIP). */
export const FIRST_SERVICE_IP = '10.96.0.1';
/** Pod CIDR kwok assigns fake pod IPs from. */
export const POD_CIDR = '10.244.0.0/16';
/** Every control-plane process binds this address only. */
export const LOOPBACK = '127.0.0.1';
/** The service-account token issuer (`--service-account-issuer`). */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/** The audit policy behind {@link AUDIT_LOG_PATH} (audit.k8s.io/v1). */
export const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`;

/** Control-plane component names, in start order (clusterDown stops them in reverse). */
export const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
/**
 * Components of the real node, in start order (after the control plane). metrics-server runs on the
 * host, not in the node's namespace, but serves that node only (components/metrics-server.ts).
 */
export const NODE_COMPONENTS = [
  'containerd',
  'kubelet',
  'kube-proxy',
  'kube-network-policies',
  'coredns',
  'metrics-server',
] as const;
/** One of {@link COMPONENTS} or {@link NODE_COMPONENTS}; also the binary's file name. */
export type Component = (typeof COMPONENTS)[number] | (typeof NODE_COMPONENTS)[number];

// ---------------------------------------------------------------------------------------------
// The real node (containerd, runc, CNI, kubelet, kube-proxy, CoreDNS) beside kwok's fake one
// ---------------------------------------------------------------------------------------------

/** Runtime dir of the real node: containerd root/state, kubelet root, CNI config and IPAM state. */
export const NODE_DIR = path.join(CLUSTER_DIR, 'node');
/** Name of the real node (a kubelet registers it). */
export const REAL_NODE_NAME = 'kubemcp-node-0';
/** Label `type` of the nodes: `kwok` on kwok's fake node, `real` on the kubelet's. */
export const NODE_TYPE_LABEL = 'type';
/** Node selector every pod gets unless its namespace says otherwise (PodNodeSelector's cluster default). */
export const KWOK_NODE_SELECTOR = `${NODE_TYPE_LABEL}=kwok`;
/** Node selector of a namespace whose pods run on the real node. */
export const REAL_NODE_SELECTOR = `${NODE_TYPE_LABEL}=real`;
/**
 * Namespace annotation read by the PodNodeSelector admission plugin: its value (a label selector)
 * becomes every new pod's nodeSelector in that namespace.
 * https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#podnodeselector
 */
export const NODE_SELECTOR_ANNOTATION = 'scheduler.alpha.kubernetes.io/node-selector';
/** ClusterIP of the kube-dns Service (CoreDNS); the kubelet's clusterDNS. */
export const CLUSTER_DNS_IP = '10.96.0.10';
/** The cluster's DNS domain: `<svc>.<ns>.svc.cluster.local`. */
export const CLUSTER_DOMAIN = 'cluster.local';
/**
 * The sandbox (pause) image pinned in containerd. `npm run images` builds it from Kubernetes'
 * pause.c; until it is loaded, the cluster loads a minimal build of the same source.
 */
export const PAUSE_IMAGE = 'localhost/kubemcp/pause:3.10';
/** Port of the kubelet's API on the node address (in the node's own network namespace). */
export const KUBELET_PORT = 10250;
/** Bound of the wait for the real node to become Ready. */
export const REAL_NODE_READY_MS = 120_000;

/** Log file path of a component: `<LOG_DIR>/<component>.log`. */
export function logFileOf(component: string): string {
  return path.join(LOG_DIR, `${component}.log`);
}

// Bounds of the waits, in milliseconds.
/** A cold build is 20-40 min on 2 cores. */
export const BUILD_TIMEOUT_MS = 90 * 60_000;
export const ETCD_READY_MS = 30_000;
export const APISERVER_READY_MS = 120_000;
export const COMPONENT_READY_MS = 60_000;
export const CRD_ESTABLISHED_MS = 30_000;
export const NODE_READY_MS = 60_000;
export const SERVICE_ACCOUNT_MS = 60_000;
/** Timeout of one HTTP probe. */
export const HEALTH_PROBE_MS = 2_000;
export const POLL_INTERVAL_MS = 250;
/** The lock holder may be building the binaries. */
export const LOCK_WAIT_MS = BUILD_TIMEOUT_MS + 10 * 60_000;
export const STOP_TERM_WAIT_MS = 10_000;
export const STOP_KILL_WAIT_MS = 5_000;
