/**
 * `kubemcp controller`: runs the MCPServer controller with the flags controller-runtime managers
 * have: kubeconfig or in-cluster config, namespace, workers, leader election on a Lease, health
 * (`/healthz`, `/readyz`) and Prometheus metrics (`/metrics`) on their own ports, JSON logs,
 * graceful shutdown on SIGTERM/SIGINT (stop taking work, finish in-flight reconciles, release
 * the lease).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import type * as k8s from '@kubernetes/client-node';
import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import type { LeaderElector } from './leader.js';
import {
  CONTROLLER_NAME,
  CONTROLLER_PORTS,
  DEFAULT_CONTROLLER_IMAGE,
  DEFAULT_WORKERS,
  operatorPeer,
} from '../charts/operator-config.js';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Parsed flags of `kubemcp controller`. */
export interface ControllerFlags {
  kubeconfig?: string;
  namespace?: string;
  selector?: string;
  workers: number;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  healthPort: number;
  metricsPort: number;
  bindAddress: string;
  resyncPeriod: number;
  logLevel: string;
  verify: 'auto' | 'dns' | 'proxy' | 'off';
  verifyInterval: number;
  verifyTimeout: number;
  /** Image of the bridge of bridged stdio MCPServers (the operator chart passes its own image). */
  bridgeImage: string;
}

/** Resolves a KubeConfig from --kubeconfig, $KUBECONFIG / ~/.kube/config, or the in-cluster service account. */
export async function loadKubeConfig(path?: string): Promise<k8s.KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/** Serves /healthz, /readyz and /metrics. Port 0 picks a free port; resolves with the bound port. */
function serve(
  host: string,
  port: number,
  handler: (path: string) => Promise<[number, string, string]>,
): Promise<[Server, number]> {
  const server = createServer((req, res) => {
    handler(new URL(req.url ?? '/', 'http://x').pathname).then(
      ([code, type, body]) => res.writeHead(code, { 'content-type': type }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve([server, (server.address() as { port: number }).port]));
  });
}

/**
 * Runs the controller until SIGTERM/SIGINT. Resolves after a graceful shutdown.
 * @throws when the kubeconfig cannot be loaded or a port cannot be bound.
 */
export async function runController(flags: ControllerFlags, logger?: Logger): Promise<void> {
  // Loaded here, not at the top, so that other subcommands of the CLI start without them.
  // pino's default export, not `{ pino }`: the bundle's CommonJS interop has no named exports (build.ts).
  const [{ default: pino }, { Controller }, { LeaderElector }, { ControllerMetrics }] = await Promise.all([
    import('pino'),
    import('./controller.js'),
    import('./leader.js'),
    import('./metrics.js'),
  ]);
  const log = logger ?? pino({ level: flags.logLevel, base: { component: CONTROLLER_NAME } });
  const kc = await loadKubeConfig(flags.kubeconfig);
  const metrics = new ControllerMetrics();
  const controller = new Controller({
    kubeConfig: kc,
    log,
    namespace: flags.namespace,
    selector: flags.selector,
    workers: flags.workers,
    resyncPeriodMs: flags.resyncPeriod * 1000,
    metrics,
    verify: flags.verify,
    verifyIntervalMs: flags.verifyInterval * 1000,
    verifyTimeoutMs: flags.verifyTimeout * 1000,
    bridgeImage: flags.bridgeImage,
    // In its pod, the controller's handshake must pass MCPServers' narrowed NetworkPolicies.
    ...(existsSync(IN_CLUSTER_TOKEN) && process.env.POD_NAMESPACE
      ? { operatorPeer: operatorPeer(process.env.POD_NAMESPACE) }
      : {}),
  });
  let leader: LeaderElector | undefined;
  let started = false;
  let startError: unknown;

  const [healthServer, healthPort] = await serve(flags.bindAddress, flags.healthPort, async (path) => {
    if (path === '/healthz')
      return startError ? [500, 'text/plain', `start failed: ${String(startError)}\n`] : [200, 'text/plain', 'ok\n'];
    if (path === '/readyz') {
      // A standby replica (not leader) is ready: it can take over at once.
      const ready = leader && !leader.isLeader ? true : controller.hasSynced;
      return ready ? [200, 'text/plain', 'ok\n'] : [503, 'text/plain', 'informers not synced\n'];
    }
    return [404, 'text/plain', 'not found\n'];
  });
  const [metricsServer, metricsPort] = await serve(flags.bindAddress, flags.metricsPort, async (path) =>
    path === '/metrics'
      ? [200, metrics.registry.contentType, await metrics.registry.metrics()]
      : [404, 'text/plain', 'not found\n'],
  );
  log.info({ healthPort, metricsPort }, 'serving health and metrics');

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping = false;
  const shutdown = async (why: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'shutting down: finishing in-flight reconciles');
    await controller.stop();
    await leader?.stop();
    metrics.isLeader.set(0);
    await new Promise((r) => healthServer.close(r));
    await new Promise((r) => metricsServer.close(r));
    log.info('stopped');
    process.exitCode = code;
    resolveDone();
  };
  const onSignal = (sig: string) => void shutdown(sig);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  const startController = () => {
    started = true;
    metrics.isLeader.set(1);
    controller.start().catch((err: unknown) => {
      startError = err;
      log.error({ err: String(err) }, 'controller failed to start (is the MCPServer CRD installed?)');
      void shutdown('start failed', 1);
    });
  };

  if (flags.leaderElect) {
    const identity = `${process.env.POD_NAME ?? hostname()}_${randomBytes(4).toString('hex')}`;
    leader = new LeaderElector({
      kubeConfig: kc,
      namespace: flags.leaderElectionNamespace,
      leaseName: flags.leaderElectionId,
      identity,
      timings: {
        leaseDurationMs: flags.leaseDuration * 1000,
        renewDeadlineMs: flags.renewDeadline * 1000,
        retryPeriodMs: flags.retryPeriod * 1000,
      },
      log,
      onStartedLeading: startController,
      // As controller-runtime does: a replica that lost its lease exits, and is restarted as a candidate.
      onStoppedLeading: () => void shutdown('leadership lost', started ? 1 : 0),
    });
    log.info(
      { identity, lease: `${flags.leaderElectionNamespace}/${flags.leaderElectionId}` },
      'campaigning for leadership',
    );
    leader.start();
  } else startController();

  await done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
}

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${v}`);
  return n;
};

/** Registers `kubemcp controller` on the CLI program. */
export function registerController(program: Command): void {
  const inCluster = existsSync(IN_CLUSTER_TOKEN);
  program
    .command('controller')
    .description(
      'run the MCPServer controller (reconciles MCPServer objects into Deployments, Services and ConfigMaps)',
    )
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('-n, --namespace <namespace>', 'watch only this namespace (default: all)')
    .option('-l, --selector <selector>', 'reconcile only MCPServers matching this label selector (default: all)')
    .option('--workers <n>', 'concurrent reconciles', int, DEFAULT_WORKERS)
    .addOption(new Option('--leader-elect', 'use leader election (default: on in-cluster)').default(inCluster))
    .option('--no-leader-elect', 'disable leader election')
    .option(
      '--leader-election-namespace <ns>',
      'namespace of the leader-election Lease',
      process.env.POD_NAMESPACE ?? 'mcp-system',
    )
    .option('--leader-election-id <name>', 'name of the leader-election Lease', CONTROLLER_NAME)
    .option('--lease-duration <seconds>', 'leader lease duration', int, 15)
    .option('--renew-deadline <seconds>', 'leader renew deadline', int, 10)
    .option('--retry-period <seconds>', 'leader election retry period', int, 2)
    .option('--health-port <port>', 'port of /healthz and /readyz (0: any free port)', int, CONTROLLER_PORTS.health)
    .option('--metrics-port <port>', 'port of /metrics (0: any free port)', int, CONTROLLER_PORTS.metrics)
    .option('--bind-address <host>', 'address the health and metrics servers bind', inCluster ? '0.0.0.0' : '127.0.0.1')
    .option('--resync-period <seconds>', 'reconcile every MCPServer again after this period', int, 300)
    .addOption(
      new Option(
        '--verify <mode>',
        'MCP handshake of HTTP MCPServers before Ready: auto (Service DNS in a pod, apiserver service proxy outside), dns, proxy, off',
      )
        .choices(['auto', 'dns', 'proxy', 'off'])
        .default('auto'),
    )
    .option('--verify-interval <seconds>', 're-verify each MCPServer after this period (jittered +-10%)', int, 300)
    .option('--verify-timeout <seconds>', 'deadline of one MCP handshake', int, 10)
    .option('--log-level <level>', 'pino log level', 'info')
    .option(
      '--bridge-image <image>',
      'image of the bridge (init container and sidecar) of stdio MCPServers with command',
      DEFAULT_CONTROLLER_IMAGE,
    )
    .action(async (flags: ControllerFlags) => {
      await runController(flags);
    });
}
