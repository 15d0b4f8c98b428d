/**
 * Names, namespace and ports of the operator, shared by the operator chart (charts/operator.ts)
 * and `kubemcp controller`'s flag defaults, without loading cdk8s.
 */
import type { MCPServerPeer } from './api/schema.js';

/** Namespace the operator runs in (seed 003's `make deploy`). */
export const OPERATOR_NAMESPACE = 'mcp-system';
/** Name of the controller's Deployment, ServiceAccount, ClusterRole, bindings and leader-election Lease. */
export const CONTROLLER_NAME = 'kubemcp-controller';
/** Labels of the controller's Deployment and pods (its selector; MCPServer NetworkPolicies admit them). */
export const CONTROLLER_LABELS = {
  'app.kubernetes.io/name': 'kubemcp',
  'app.kubernetes.io/component': 'controller',
  'app.kubernetes.io/part-of': 'kubemcp',
} as const;
/** Ports of the controller process: Prometheus metrics and health probes. */
export const CONTROLLER_PORTS = { metrics: 8080, health: 8081 } as const;
/** Default controller image; override with the operator chart's `image` prop. */
export const DEFAULT_CONTROLLER_IMAGE = 'kubemcp:0.1.0';

/**
 * Default concurrent reconciles of the controller (`--workers`). A reconcile mostly waits on the
 * apiserver (2-3 round trips), so throughput grows with workers until the apiserver is busy; on
 * the local cluster 16 keep up with a 16-in-flight raw server-side-apply client
 * (`npm run bench:controller`, docs/benchmarks.md, "The controller at scale"). controller-runtime's default
 * MaxConcurrentReconciles is 1.
 */
export const DEFAULT_WORKERS = 16;

/**
 * NODE_OPTIONS of the controller's container. `--max-semi-space-size=1` (MiB) caps V8's young
 * generation, which otherwise grows to 3 x 16 MiB under the allocation rate of a burst of
 * reconciles: the compiled controller's RSS, idle on the local cluster, is ~160 MiB without it
 * and ~135 MiB with it (docs/benchmarks.md, "The controller at scale"; Node.js docs, "--max-semi-space-size").
 */
export const CONTROLLER_NODE_OPTIONS = '--max-semi-space-size=1';

/**
 * V8 flags of the controller's `node` command line (the container's `command`), for the ones
 * Node refuses in NODE_OPTIONS. `--heap-growing-percent=20`: after a full GC, V8 lets the old
 * generation grow by 20% of what survived before the next one (by default by a factor of up to
 * 4 under a burst's allocation rate). With 1,000 MCPServers created at once
 * (`npm run bench:controller`) the controller ended the burst at 128 MiB RSS (peak 128) with it,
 * 156 (peak 204) without; restarted against them, it peaked at 135 MiB and settled at 108, 190
 * and 120 without. `--optimize-for-size` gave about the same RSS (120-127 MiB) for more CPU
 * (37-43 s against 36 s for the same burst), as it also makes the compiler favour size (docs/benchmarks.md
 * "The controller at scale"; `node --v8-options`).
 */
export const CONTROLLER_NODE_FLAGS = ['--heap-growing-percent=20'] as const;

/**
 * Environment of the controller's process besides NODE_OPTIONS. `MALLOC_ARENA_MAX=2`: glibc's
 * malloc otherwise keeps an arena per thread that allocates (Node's libuv and V8 worker threads),
 * ~10 MiB of RSS at 1,000 MCPServers (mallopt(3), M_ARENA_MAX). musl (the Alpine base) ignores it.
 */
export const CONTROLLER_ENV = { MALLOC_ARENA_MAX: '2' } as const;

/** Path of the bundled `kubemcp` bin in the image (Dockerfile: WORKDIR /app, dist/cli). */
export const IMAGE_BIN = '/app/dist/cli/kubemcp.js';

/**
 * The NetworkPolicy peer of the operator's pods in `namespace` (the controller Deployment's labels,
 * charts/operator.ts): admitted beside a non-empty `spec.allowFrom`, so the handshake reaches the server.
 */
export function operatorPeer(namespace: string): MCPServerPeer {
  return {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
    podSelector: { matchLabels: { ...CONTROLLER_LABELS } },
  };
}
