/**
 * The MCPServer controller: informers on MCPServers and on the children they own, a keyed work
 * queue, and N workers running the {@link Reconciler} (controller-runtime's Controller shape),
 * an informer on their pods (for why they do not run), and the MCP handshake {@link Verifier}.
 *
 * - Informer events only enqueue keys (`namespace/name` of the MCPServer; a child's event
 *   enqueues its controller owner).
 * - An informer whose watch fails is restarted with exponential backoff (1 s .. 30 s).
 * - Every `resyncPeriodMs` all known MCPServers are enqueued again (level-based reconcile).
 * - A failed reconcile is retried with per-key backoff (5 ms .. 1000 s); success forgets it.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, KIND, PLURAL, VERSION } from '../charts/api/schema.js';
import type { KubeObject } from '../charts/render.js';
import { ControllerMetrics } from './metrics.js';
import { Priority, WorkQueue, backoffMs } from './queue.js';
import { childEventPriority, mcpServerEventPriority, podEventPriority } from './priority.js';
import { CHILD_KINDS, Reconciler, type Caches, type ChildKind, type MCPServerObject } from './reconciler.js';
import { urlFor } from './status.js';
import { Verifier, type VerifyTarget } from './verify.js';
import { bridgeReadyTargetFor, type BridgeReadyTargetFn } from './bridge-ready.js';
import { kubeFetch, withConnectionReuse, type FetchLike } from '../lib/kube-http.js';
import { trimForCache, type CachedKind } from './transform.js';
import { LIST_IDLE_TIMEOUT_MS, pagedList } from './list.js';
import { DEFAULT_WORKERS } from '../charts/operator-config.js';
import type { MCPServerPeer, MCPServerSpec } from '../charts/api/schema.js';
import { PORT_NAME, authMode } from '../charts/mcpserver.js';
import { AudienceTokens, selfServiceAccount } from './token.js';

/** How the controller verifies HTTP MCPServers with an MCP handshake (`--verify`). */
export const VERIFY_MODES = ['auto', 'dns', 'proxy', 'off'] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

/** Whether this process runs in a pod (the in-cluster service account and service env are there). */
export function inCluster(): boolean {
  return !!process.env.KUBERNETES_SERVICE_HOST;
}

/**
 * Where the handshake of an MCPServer goes: `dns` the Service's cluster DNS name
 * (`status.url`), `proxy` the apiserver's service proxy
 * (`<server>/api/v1/namespaces/<ns>/services/http:<name>:mcp/proxy<path>`) with the kubeconfig's
 * credentials, `auto` DNS in a pod and the proxy outside. With `tokens` (the operator's pod), a
 * `dns` handshake carries the controller's token for the server's audience (controller/token.ts);
 * the service proxy drops any Authorization header (kubernetes/kubernetes#38775), so a server in
 * auth mode kubernetes answers a `proxy` handshake 401 and status says so.
 */
export function verifyTargetFor(
  kc: k8s.KubeConfig,
  mode: Exclude<VerifyMode, 'off'>,
  tokens?: AudienceTokens,
): (namespace: string, name: string, spec: MCPServerSpec) => VerifyTarget {
  const via = mode === 'auto' ? (inCluster() ? 'dns' : 'proxy') : mode;
  if (via === 'dns')
    return (namespace, name, spec) => {
      const url = urlFor(name, namespace, spec)!;
      return tokens && authMode(spec) !== 'none'
        ? { url, fetch: tokens.fetchFor(url, globalThis.fetch as FetchLike) }
        : { url };
    };
  const fetch = kubeFetch(kc);
  const server = kc.getCurrentCluster()?.server.replace(/\/+$/, '') ?? '';
  return (namespace, name, spec) => ({
    url: `${server}/api/v1/namespaces/${encodeURIComponent(namespace)}/services/http:${encodeURIComponent(name)}:${PORT_NAME}/proxy${spec.path}`,
    fetch,
  });
}

/** Label selecting the children the controller manages (seed 003's managed-by label). */
export const CHILD_SELECTOR = 'app.kubernetes.io/managed-by=mcp-operator';
/** Largest retry delay after a refused apply, in ms. */
const APPLY_RETRY_MAX_MS = 30_000;
/** The label naming a pod's MCPServer (seed 003's labelsForMCPServer). */
const INSTANCE_LABEL = 'app.kubernetes.io/instance';

/** Options of {@link Controller}. */
export interface ControllerOptions {
  kubeConfig: k8s.KubeConfig;
  log: Logger;
  /** Namespace to watch; undefined watches all namespaces. */
  namespace?: string;
  /**
   * Label selector of the MCPServers this controller reconciles (`-l app=x,tier!=dev`, the
   * apiserver's syntax); others are not cached and never touched: sharding, or a canary controller
   * beside the main one. Undefined: every MCPServer of `namespace`.
   */
  selector?: string;
  /** Concurrent reconciles (distinct keys). Default {@link DEFAULT_WORKERS}. */
  workers?: number;
  /** Period in ms at which every MCPServer is reconciled again. Default 300,000 (5 min). */
  resyncPeriodMs?: number;
  metrics?: ControllerMetrics;
  /** MCP handshake verification of HTTP MCPServers (see {@link verifyTargetFor}). Default `auto`. */
  verify?: VerifyMode;
  /** Re-verify every MCPServer after this many ms (jittered +-10%). Default 300,000 (5 min). */
  verifyIntervalMs?: number;
  /** Deadline of one handshake in ms. Default 10,000. */
  verifyTimeoutMs?: number;
  /**
   * Overrides where handshakes go (e.g. a test pointing the controller at a local MCP server
   * standing in for the pods); default {@link verifyTargetFor} of `verify`.
   */
  verifyTarget?: (namespace: string, name: string, spec: MCPServerSpec) => VerifyTarget;
  /**
   * Where the bridge's `/ready` of a running but unready bridged pod is read, so status says why
   * (controller/bridge-ready.ts); default the pod IP in the cluster, the apiserver's pod proxy
   * outside (as `verify`). Off with `verify: 'off'`.
   */
  bridgeReadyTarget?: BridgeReadyTargetFn;
  /** Image of the bridge of bridged stdio MCPServers; default the kubemcp image (charts/mcpserver.ts DEFAULT_BRIDGE_IMAGE). */
  bridgeImage?: string;
  /**
   * The controller's own pods as a NetworkPolicy peer (charts/mcpserver.ts operatorPeer), admitted
   * by MCPServers that narrow `spec.allowFrom`; the command sets it when it runs in a pod.
   */
  operatorPeer?: MCPServerPeer;
}

type AnyInformer = k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>;

export class Controller {
  readonly metrics: ControllerMetrics;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  /** Runs the MCP handshakes; undefined with `verify: 'off'`. */
  readonly verifier?: Verifier;
  private readonly mcpInformer: AnyInformer;
  private readonly childInformers = new Map<ChildKind, AnyInformer>();
  private readonly podInformer: AnyInformer;
  private readonly workers: Promise<void>[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private synced = false;

  constructor(private readonly opts: ControllerOptions) {
    this.metrics = opts.metrics ?? new ControllerMetrics();
    this.queue = new WorkQueue({ onDepth: (d) => this.metrics.queueDepth.set(d) });
    // One keep-alive connection pool for every request (client-node opens a TLS connection per request otherwise).
    const kc = withConnectionReuse(opts.kubeConfig);
    const ns = opts.namespace;
    const nsPath = (group: string, resource: string) => `${group}${ns ? `/namespaces/${ns}` : ''}/${resource}`;
    // Lists page by page, as plain JSON trimmed as it arrives (controller/list.ts); watches by client-node.
    const server = kc.getCurrentCluster()?.server?.replace(/\/+$/, '') ?? '';
    const listFetch = kubeFetch(kc, { idleTimeoutMs: LIST_IDLE_TIMEOUT_MS });
    const informer = (kind: CachedKind, path: string, labelSelector?: string) =>
      k8s.makeInformer(
        kc,
        path,
        pagedList(server, path, listFetch, { labelSelector, transform: (o) => trimForCache(kind, o) }),
        labelSelector,
      ) as AnyInformer;

    this.mcpInformer = informer('MCPServer', nsPath(`/apis/${GROUP}/${VERSION}`, PLURAL), opts.selector);
    const paths: Record<ChildKind, string> = {
      ConfigMap: nsPath('/api/v1', 'configmaps'),
      Service: nsPath('/api/v1', 'services'),
      Deployment: nsPath('/apis/apps/v1', 'deployments'),
      PodDisruptionBudget: nsPath('/apis/policy/v1', 'poddisruptionbudgets'),
      NetworkPolicy: nsPath('/apis/networking.k8s.io/v1', 'networkpolicies'),
    };
    for (const kind of CHILD_KINDS) this.childInformers.set(kind, informer(kind, paths[kind], CHILD_SELECTOR));

    // Pods carry the template's labels (managed-by, instance): their states say why a Deployment is not ready.
    this.podInformer = informer('Pod', nsPath('/api/v1', 'pods'), CHILD_SELECTOR);

    const caches: Caches = {
      mcpServer: (namespace, name) => this.mcpInformer.get(name, namespace) as MCPServerObject | undefined,
      child: (kind, namespace, name) => this.childInformers.get(kind)!.get(name, namespace) as KubeObject | undefined,
      children: (kind, namespace) => this.childInformers.get(kind)!.list(namespace) as readonly KubeObject[],
      pods: (namespace, name) =>
        (this.podInformer.list(namespace) as k8s.V1Pod[]).filter((p) => p.metadata?.labels?.[INSTANCE_LABEL] === name),
    };
    const mode = opts.verify ?? 'auto';
    this.verifier =
      mode === 'off'
        ? undefined
        : new Verifier({
            intervalMs: opts.verifyIntervalMs ?? 300_000,
            timeoutMs: opts.verifyTimeoutMs ?? 10_000,
            // A handshake result changes the status: reconcile promptly.
            onDone: (key) => this.queue.add(key, Priority.HIGH),
            metrics: this.metrics,
            log: opts.log,
          });
    const self = selfServiceAccount();
    const tokens = self ? new AudienceTokens({ server, fetch: kubeFetch(kc), self }) : undefined;
    const verifyTarget = mode === 'off' ? undefined : (opts.verifyTarget ?? verifyTargetFor(kc, mode, tokens));
    const bridgeReadyTarget =
      mode === 'off'
        ? undefined
        : (opts.bridgeReadyTarget ??
          bridgeReadyTargetFor(kc, mode === 'auto' ? (inCluster() ? 'dns' : 'proxy') : mode));
    this.reconciler = new Reconciler({
      kubeConfig: kc,
      caches,
      log: opts.log,
      metrics: this.metrics,
      verifier: this.verifier,
      verifyTarget,
      bridgeReadyTarget,
      bridgeImage: opts.bridgeImage,
      operatorPeer: opts.operatorPeer,
    });
  }

  /** Concurrent reconciles: `workers`, default {@link DEFAULT_WORKERS}. */
  get workerCount(): number {
    return this.opts.workers ?? DEFAULT_WORKERS;
  }

  /** Whether the informer caches have synced once (for /readyz). */
  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Starts the informers, waits for their first list, then starts the workers and the resync
   * timer. @throws when an informer's first list fails (e.g. the CRD is not installed).
   */
  async start(): Promise<void> {
    const verbs = [
      [k8s.ADD, 'add'],
      [k8s.UPDATE, 'update'],
      [k8s.DELETE, 'delete'],
    ] as const;
    // The caches keep only what the controller reads (controller/transform.ts, controller-runtime's
    // cache transforms): the cache holds the very object the handlers get, so trimming it here
    // trims the cached copy. These handlers are registered first, so they run before the ones
    // that enqueue.
    const informers: Array<[CachedKind, AnyInformer]> = [
      ['MCPServer', this.mcpInformer],
      ...this.childInformers,
      ['Pod', this.podInformer],
    ];
    for (const [kind, inf] of informers)
      for (const verb of [k8s.ADD, k8s.UPDATE] as const) inf.on(verb, (o) => void trimForCache(kind, o));

    // Every event enqueues its MCPServer with a priority (controller/priority.ts): status-changing
    // child events first, desired-state changes next, echoes of our own writes and the initial
    // list last, so that a burst does not delay the reconcile that turns an MCPServer Ready.
    const mcp = (namespace: string | undefined, name: string) =>
      this.mcpInformer.get(name, namespace) as MCPServerObject | undefined;
    for (const [verb, v] of verbs) {
      this.mcpInformer.on(verb, (o) =>
        this.queue.add(
          `${o.metadata!.namespace}/${o.metadata!.name}`,
          mcpServerEventPriority(v, o as MCPServerObject, this.synced),
        ),
      );
      for (const [kind, inf] of this.childInformers)
        inf.on(verb, (o) => {
          const owner = o.metadata?.ownerReferences?.find(
            (r) => r.controller && r.kind === KIND && r.apiVersion.startsWith(`${GROUP}/`),
          );
          if (owner)
            this.queue.add(
              `${o.metadata!.namespace}/${owner.name}`,
              this.synced ? childEventPriority(kind, v, o, mcp(o.metadata!.namespace, owner.name)) : Priority.LOW,
            );
        });
      // A pod's owner is a ReplicaSet; its MCPServer is named by the instance label.
      this.podInformer.on(verb, (o) => {
        const instance = o.metadata?.labels?.[INSTANCE_LABEL];
        if (instance)
          this.queue.add(
            `${o.metadata!.namespace}/${instance}`,
            this.synced ? podEventPriority(v, o as k8s.V1Pod, mcp(o.metadata!.namespace, instance)) : Priority.LOW,
          );
      });
    }
    for (const [name, inf] of informers) this.restartOnError(name, inf);
    await Promise.all(informers.map(([, inf]) => inf.start()));
    this.synced = true;
    this.opts.log.info(
      { namespace: this.opts.namespace ?? '(all)', workers: this.workerCount },
      'informers synced; starting workers',
    );
    for (let i = 0; i < this.workerCount; i++) this.workers.push(this.work());
    const period = this.opts.resyncPeriodMs ?? 300_000;
    this.resyncTimer = setInterval(() => this.resync(), period);
    this.resyncTimer.unref();
  }

  /** Enqueues every MCPServer in the cache (what a periodic resync does). */
  resync(): void {
    for (const o of this.mcpInformer.list())
      this.queue.add(`${o.metadata!.namespace}/${o.metadata!.name}`, Priority.LOW);
  }

  private restartOnError(name: string, informer: AnyInformer): void {
    // client-node emits CONNECT before it connects, so the backoff resets after a quiet minute instead.
    let failures = 0;
    let lastError = 0;
    informer.on(k8s.ERROR, (err: unknown) => {
      if (this.stopped) return;
      if (Date.now() - lastError > 60_000) failures = 0;
      lastError = Date.now();
      const delay = backoffMs(failures++, 1000, 30_000);
      this.opts.log.warn(
        { informer: name, err: String(err), retryInMs: delay },
        'watch failed; restarting the informer',
      );
      const t = setTimeout(() => {
        this.restartTimers.delete(t);
        if (!this.stopped)
          informer
            .start()
            .catch((e: unknown) => this.opts.log.warn({ informer: name, err: String(e) }, 'informer restart failed'));
      }, delay);
      this.restartTimers.add(t);
    });
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const [namespace, name] = key.split('/') as [string, string];
      const end = this.metrics.reconcileDuration.startTimer();
      try {
        const result = await this.reconciler.reconcile(namespace, name);
        this.queue.forget(key);
        this.metrics.reconcileTotal.inc({ result: 'success' });
        if (result.requeueAfterMs) this.queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        this.metrics.reconcileTotal.inc({ result: 'error' });
        this.metrics.reconcileErrors.inc();
        let delay = this.queue.addRateLimited(key);
        // A refused apply is in the status already; retry it at least every 30 s, so the status
        // recovers soon after the cause goes away (it may not touch our objects: an admission policy).
        if ((err as { code?: unknown }).code === 'ApplyFailed' && delay > APPLY_RETRY_MAX_MS)
          this.queue.addAfter(key, (delay = APPLY_RETRY_MAX_MS));
        const body = (err as { body?: unknown }).body;
        this.opts.log.error(
          {
            mcpserver: key,
            err: String(err),
            body: typeof body === 'string' ? body.slice(0, 500) : body,
            retryInMs: delay,
          },
          'reconcile failed',
        );
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  /**
   * Graceful stop: no new keys are handed out, in-flight reconciles finish, informers stop.
   * Resolves when all workers have returned.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const t of this.restartTimers) clearTimeout(t);
    this.queue.shutDown();
    await Promise.all(this.workers);
    await Promise.all(
      [this.mcpInformer, ...this.childInformers.values(), this.podInformer].map((i) => i.stop().catch(() => undefined)),
    );
  }
}
