/**
 * A real, local Kubernetes cluster on loopback, for tests and the demo: the public entry of
 * `cluster/` (import from here).
 *
 * Everything runs as plain processes built from source by `build.sh` (no Docker, no downloads
 * beyond the Go module proxy and Debian packages): etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok. kwok plays the kubelet for one fake node (`kwok-node-0`), so
 * Deployments, ReplicaSets and Pods go through the real controllers and scheduler and their pods
 * become Running/Ready without any container runtime. Where the machine allows it (root, network
 * namespaces, cgroups), a real node runs beside it (`kubemcp-node-0`: containerd, runc, CNI
 * bridge, kubelet, kube-proxy, CoreDNS in its own network namespace, and metrics-server on the
 * host serving metrics.k8s.io for it); pods go there only from namespaces made with
 * {@link realNodeNamespace}.
 *
 * Modules, by concern (as envtest's internal/testing/controlplane):
 * - `paths.ts`       paths under `.cluster/`, names, address ranges, wait bounds
 * - `state.ts`       state.json, the up/down lock, runtime-state removal
 * - `process.ts`     spawn detached, pid checks, stop by pid, bounded waits, free ports
 * - `pki.ts`         certificates (openssl) and kubeconfigs
 * - `binaries.ts`    build.sh (Go module in this folder, cached in ~/.cache/kubemcp)
 * - `kube.ts`        API helpers used during start
 * - `components/`    one module per component: how it is started and when it is ready
 * - `realnode/`      the real node: support check, network namespace, images, start/teardown
 * - `lifecycle.ts`   clusterUp / clusterDown / clusterStatus / restartComponent
 * - `cli.ts`         `npm run cluster:up|down|status`
 *
 * Every process binds 127.0.0.1 only, on ports chosen at runtime. Processes are spawned
 * detached, so the cluster outlives the process that started it (`npm run cluster:up`), and
 * they are stopped by pid only (clusterDown). Every wait is bounded in both attempts and time; a
 * failed wait throws an Error naming the component, its log file and the log's tail.
 *
 * @module
 */
export * from './paths.js';
export {
  readState,
  type ClusterPorts,
  type ClusterState,
  type ProcessRecord,
  type RealNodeNetwork,
  type RealNodeState,
} from './state.js';
export {
  isProcessRunning,
  poll,
  pollProgress,
  type PollOptions,
  type ProgressObservation,
  type ProgressOptions,
} from './process.js';
export { ensureBinaries } from './binaries.js';
export { loadKubeConfig } from './kube.js';
export { realNodeAvailable, realNodeNamespace, realNodeStatus } from './realnode/index.js';
export { BUSYBOX_IMAGE, importImage, writeOciArchive, ensureBusyboxImage, type ImageSpec } from './realnode/images.js';
export { CONTAINERD_SOCKET } from './components/containerd.js';
export {
  clusterDown,
  clusterStatus,
  clusterUp,
  restartComponent,
  type ClusterInfo,
  type ClusterStatus,
  type ClusterUpOptions,
  type ComponentStatus,
} from './lifecycle.js';
