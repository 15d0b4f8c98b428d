/**
 * Names, namespace and ports of the operator, shared by the operator chart (charts/operator.ts)
 * and `kubemcp controller`'s flag defaults, without loading cdk8s.
 */

/** Namespace the operator runs in (seed 003's `make deploy`). */
export const OPERATOR_NAMESPACE = 'mcp-system';
/** Name of the controller's Deployment, ServiceAccount, ClusterRole, bindings and leader-election Lease. */
export const CONTROLLER_NAME = 'kubemcp-controller';
/** Ports of the controller process: Prometheus metrics and health probes. */
export const CONTROLLER_PORTS = { metrics: 8080, health: 8081 } as const;
/** Default controller image; override with the operator chart's `image` prop. */
export const DEFAULT_CONTROLLER_IMAGE = 'kubemcp:0.1.0';

/**
 * Default concurrent reconciles of the controller (`--workers`). A reconcile mostly waits on the
 * apiserver (2-3 round trips), so throughput grows with workers until the apiserver is busy; on
 * the local cluster 16 keep up with a 16-in-flight raw server-side-apply client
 * (`npm run bench:controller`, README "The controller at scale"). controller-runtime's default
 * MaxConcurrentReconciles is 1.
 */
export const DEFAULT_WORKERS = 16;

/**
 * NODE_OPTIONS of the controller's container. `--max-semi-space-size=1` (MiB) caps V8's young
 * generation, which otherwise grows to 3 x 16 MiB under the allocation rate of a burst of
 * reconciles: the compiled controller's RSS, idle on the local cluster, is ~160 MiB without it
 * and ~135 MiB with it (README "The controller at scale"; Node.js docs, "--max-semi-space-size").
 */
export const CONTROLLER_NODE_OPTIONS = '--max-semi-space-size=1';
