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

/**
 * V8 flags of the controller's `node` command line (the container's `command`), for the ones
 * Node refuses in NODE_OPTIONS. `--optimize-for-size` makes V8 grow its heap in smaller steps and
 * collect sooner: with 1,000 MCPServers cached, the controller restarted against them peaked at
 * 125 MiB RSS and settled at 107 MiB with it, 190 and 120 MiB without (README "The controller at
 * scale"; `node --v8-options`).
 */
export const CONTROLLER_NODE_FLAGS = ['--optimize-for-size'] as const;

/**
 * Environment of the controller's process besides NODE_OPTIONS. `MALLOC_ARENA_MAX=2`: glibc's
 * malloc otherwise keeps an arena per thread that allocates (Node's libuv and V8 worker threads),
 * ~10 MiB of RSS at 1,000 MCPServers (mallopt(3), M_ARENA_MAX). musl (the Alpine base) ignores it.
 */
export const CONTROLLER_ENV = { MALLOC_ARENA_MAX: '2' } as const;

/** Path of the bundled `kubemcp` bin in the image (Dockerfile: WORKDIR /app, dist/cli). */
export const IMAGE_BIN = '/app/dist/cli/kubemcp.js';
