/**
 * Seed 001's resources, names and URIs kept exactly: `k8s://cluster/nodes` and the template
 * `k8s://namespace/{namespace}/pods` (with namespace completion and a list of the allowed
 * namespaces), in the seed's JSON shape. Plus resource subscriptions (seed 002, issue 5): a
 * client that subscribes to either URI gets `notifications/resources/updated` when the nodes or
 * pods change, driven by a Kubernetes watch through the gateway (so the policy applies).
 */
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  McpError,
  ErrorCode,
} from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import {
  callerKey,
  currentCaller,
  errorText,
  KubeError,
  runAsCaller,
  type Caller,
  type KubeGateway,
  type Node,
  type Pod,
} from './kube.js';
import { PolicyError } from './policy.js';

/** URI of the nodes resource (seed 001). */
export const NODES_URI = 'k8s://cluster/nodes';
/** URI template of the pods resource (seed 001). */
export const PODS_TEMPLATE = 'k8s://namespace/{namespace}/pods';
const PODS_RE = /^k8s:\/\/namespace\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/pods$/;

interface Deps {
  kube: KubeGateway;
  log: Logger;
}

/** The seed's node summary: name, Ready status, kubelet version, capacity. */
export async function nodesDoc(kube: KubeGateway) {
  const api = await kube.resolve('nodes', 'v1');
  const list = await kube.list<Node>({ api });
  const nodes = list.items.map((n) => ({
    name: n.metadata?.name,
    status: n.status?.conditions?.find((c) => c.type === 'Ready')?.status,
    version: n.status?.nodeInfo?.kubeletVersion,
    capacity: { cpu: n.status?.capacity?.cpu, memory: n.status?.capacity?.memory, pods: n.status?.capacity?.pods },
  }));
  return { nodes, count: nodes.length };
}

/** The seed's pod summary of a namespace: name, namespace, phase, ready, restarts, age (creation time). */
export async function podsDoc(kube: KubeGateway, namespace: string) {
  const api = await kube.resolve('pods', 'v1');
  const list = await kube.list<Pod>({ api, namespace });
  const pods = list.items.map((p) => ({
    name: p.metadata?.name,
    namespace: p.metadata?.namespace,
    phase: p.status?.phase,
    ready: (p.status?.containerStatuses ?? []).length > 0 && (p.status?.containerStatuses ?? []).every((c) => c.ready),
    restarts: (p.status?.containerStatuses ?? []).reduce((s, c) => s + (c.restartCount ?? 0), 0),
    age: p.metadata?.creationTimestamp,
  }));
  return { namespace, pods, count: pods.length };
}

/** Names of the namespaces a client may see (the allow-list, or all). */
export async function namespaceNames(kube: KubeGateway): Promise<string[]> {
  const allowed = kube.policy.allowedNamespaces;
  if (allowed.length) return allowed;
  const api = await kube.resolve('namespaces', 'v1');
  const list = await kube.list({ api }, { limit: 500 });
  return list.items.map((n) => n.metadata?.name ?? '').filter(Boolean);
}

function asJson(uri: string, doc: unknown) {
  return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(doc, null, 2) }] };
}

/** Read failures become JSON-RPC errors with the reason (never a crash). */
function readError(uri: string, err: unknown): McpError {
  return new McpError(ErrorCode.InternalError, `cannot read ${uri}: ${errorText(err)}`);
}

/** Seed 001's nodes resource: its name and metadata (both eras list it so). */
export const NODES_RESOURCE = {
  name: 'cluster-nodes',
  title: 'Kubernetes Cluster Nodes',
  description: 'Information about all nodes in the cluster',
  mimeType: 'application/json',
} as const;

/** Seed 001's pods template: its name and metadata. */
export const PODS_RESOURCE = {
  name: 'namespace-pods',
  title: 'Namespace Pods',
  description: 'List all pods in a namespace',
  mimeType: 'application/json',
} as const;

/** The pods resource of each namespace the client may see (at most 100; `default` when they cannot be listed). */
export async function podResources(kube: KubeGateway) {
  const names = await namespaceNames(kube).catch(() => ['default']);
  return names.slice(0, 100).map((ns) => ({
    uri: `k8s://namespace/${ns}/pods`,
    name: `${ns} pods`,
    description: `Pods in namespace ${ns}`,
    mimeType: 'application/json',
  }));
}

/** Reads the nodes resource (the seed's JSON). @throws McpError InternalError naming the reason. */
export async function readNodes(kube: KubeGateway, uri = NODES_URI) {
  try {
    return asJson(uri, await nodesDoc(kube));
  } catch (err) {
    throw readError(uri, err);
  }
}

/**
 * Reads the pods resource of `namespace` (the seed's JSON).
 * @throws McpError InvalidParams when `namespace` is not a DNS-1123 label; InternalError naming the reason.
 */
export async function readPods(kube: KubeGateway, namespace: string, uri = `k8s://namespace/${namespace}/pods`) {
  if (!PODS_RE.test(`k8s://namespace/${namespace}/pods`))
    throw new McpError(ErrorCode.InvalidParams, `invalid namespace "${namespace}" in ${uri}: a DNS-1123 label`);
  try {
    return asJson(uri, await podsDoc(kube, namespace));
  } catch (err) {
    throw readError(uri, err);
  }
}

/** The namespace a pods resource URI names, or undefined when `uri` is not one. */
export function podsNamespace(uri: string): string | undefined {
  return PODS_RE.exec(uri)?.[1];
}

/** Registers the two resources on a 2025-era McpServer; call before connect(). */
export function registerResources(server: McpServer, deps: Deps): void {
  const { name: nodesName, ...nodesMeta } = NODES_RESOURCE;
  server.registerResource(nodesName, NODES_URI, nodesMeta, async (uri) => readNodes(deps.kube, uri.href));
  const { name: podsName, ...podsMeta } = PODS_RESOURCE;
  server.registerResource(
    podsName,
    new ResourceTemplate(PODS_TEMPLATE, {
      list: async () => ({ resources: await podResources(deps.kube) }),
      complete: {
        namespace: async (value) =>
          (await namespaceNames(deps.kube).catch(() => [])).filter((n) => n.startsWith(value ?? '')).slice(0, 100),
      },
    }),
    podsMeta,
    async (uri, vars) =>
      readPods(deps.kube, String(Array.isArray(vars.namespace) ? vars.namespace[0] : vars.namespace), uri.href),
  );
}

/** What a subscription watches: the nodes, or the pods of one namespace. */
export type WatchTarget = { kind: 'nodes' } | { kind: 'pods'; namespace: string };

/** Limits of the subscription hub (issue 9, item 3). */
export interface HubOptions {
  /** Most subscriptions one MCP session may hold (default 16; `--max-subscriptions`). */
  maxPerSession?: number;
  /** Most distinct watched targets (= apiserver watches) of the whole server (default 100; `--max-watches`). */
  maxWatches?: number;
  /** Watches are re-opened after failures with exponential backoff from this (ms; default 500) ... */
  backoffBaseMs?: number;
  /** ... up to this (ms; default 30 000). */
  backoffMaxMs?: number;
}

interface Watched {
  key: string;
  /** The caller it was opened for (an impersonating server keeps one watch per caller and target). */
  caller?: Caller;
  target: WatchTarget;
  listeners: Set<() => void>;
  stop?: () => void;
  /** Last resourceVersion seen (events and bookmarks); the watch resumes from it. */
  rv?: string;
  /** Consecutive failed (re)opens; > 0 means the watch is down. */
  failures: number;
  timer?: NodeJS.Timeout;
  closed: boolean;
  ready: Promise<void>;
}

/** Exponential backoff, as the controller's (controller/queue.ts): base * 2^n, capped, with up to 20% jitter. */
function backoff(n: number, base: number, max: number): number {
  const d = Math.min(max, base * 2 ** Math.min(n, 20));
  return Math.round(d * (0.8 + Math.random() * 0.2));
}

/**
 * One Kubernetes watch per watched target, shared by every session that subscribes to it
 * (issue 9, item 3): the number of targets is bounded (`maxWatches`), each watch is released when
 * its last subscriber leaves, and a watch that ends or fails is re-opened with exponential
 * backoff from the last resourceVersion seen, with a fresh list when the apiserver answers
 * 410 Gone (item 6, as client-go's reflector does). Subscribers are called on every change, and
 * once more after a recovery from a failure, so clients re-read what they may have missed.
 */
export class SubscriptionHub {
  readonly maxPerSession: number;
  private readonly maxWatchesOption?: number;
  private readonly watched = new Map<string, Watched>();
  private readonly base: number;
  private readonly max: number;

  constructor(
    private readonly deps: Deps,
    opts: HubOptions = {},
  ) {
    this.maxPerSession = opts.maxPerSession ?? 16;
    this.maxWatchesOption = opts.maxWatches;
    this.base = opts.backoffBaseMs ?? 500;
    this.max = opts.backoffMaxMs ?? 30_000;
  }

  /**
   * The server's watch limit: the option, else the gateway's. Read on use, so that building a
   * server does not create the gateway (the stdio start answers tools/list before it exists).
   */
  get maxWatches(): number {
    return this.maxWatchesOption ?? this.deps.kube.maxWatches;
  }

  /** Number of apiserver watches held (distinct targets). */
  get watches(): number {
    return this.watched.size;
  }

  /** Whether the watch of `key` is currently established (no failure pending). */
  healthy(key: string): boolean {
    const w = this.watched.get(key);
    return !!w && w.failures === 0 && !!w.stop;
  }

  /**
   * Adds `listener` to the watch of `target` (opening it when it is the first). Returns the
   * release function. When `signal` aborts before the watch is up, nothing is kept.
   * @throws McpError when the server's watch limit is reached or the watch cannot start.
   */
  async acquire(uri: string, target: WatchTarget, listener: () => void, signal?: AbortSignal): Promise<() => void> {
    // Acting as callers (--impersonate), a watch serves only the caller it was opened as: what
    // one caller may watch says nothing of another (issue 17).
    const caller = currentCaller();
    const key = caller ? `${callerKey(caller)} ${uri}` : uri;
    let w = this.watched.get(key);
    if (!w) {
      if (this.watched.size >= this.maxWatches) {
        throw new McpError(
          ErrorCode.InvalidRequest,
          `the server already holds ${this.maxWatches} watches, its limit (--max-watches); unsubscribe from something first`,
        );
      }
      const created: Watched = {
        key,
        ...(caller ? { caller } : {}),
        target,
        listeners: new Set(),
        failures: 0,
        closed: false,
        ready: Promise.resolve(),
      };
      created.ready = this.start(created);
      this.watched.set(key, created);
      w = created;
    }
    w.listeners.add(listener);
    const release = () => {
      const cur = this.watched.get(key);
      if (!cur || cur !== w) return;
      cur.listeners.delete(listener);
      if (cur.listeners.size === 0) this.drop(cur);
    };
    try {
      await w.ready;
    } catch (err) {
      w.listeners.delete(listener);
      if (this.watched.get(key) === w) this.drop(w);
      throw err;
    }
    if (signal?.aborted) {
      release();
      throw new McpError(ErrorCode.InvalidRequest, 'subscribe request cancelled');
    }
    return release;
  }

  private drop(w: Watched): void {
    w.closed = true;
    if (w.timer) clearTimeout(w.timer);
    w.stop?.();
    w.stop = undefined;
    if (this.watched.get(w.key) === w) this.watched.delete(w.key);
  }

  private notify(w: Watched): void {
    for (const l of [...w.listeners]) {
      try {
        l();
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  /** Runs `fn` as the watch's caller, if it has one (re-opens run from timers, outside any call). */
  private as<T>(w: Watched, fn: () => Promise<T>): Promise<T> {
    return w.caller ? runAsCaller(w.caller, fn) : fn();
  }

  /** First open: checks the namespace exists, lists for a resourceVersion and starts the watch. */
  private start(w: Watched): Promise<void> {
    return this.as(w, () => this.startAs(w));
  }

  private async startAs(w: Watched): Promise<void> {
    const kube = this.deps.kube;
    if (w.target.kind === 'pods') {
      const nsApi = await kube.resolve('namespaces', 'v1');
      try {
        await kube.get({ api: nsApi, name: w.target.namespace });
      } catch (err) {
        // A kind deny-list may refuse reading Namespaces; the pods watch is checked on its own.
        if (!(err instanceof PolicyError))
          throw new McpError(ErrorCode.InvalidParams, `namespace ${w.target.namespace}: ${errorText(err)}`);
      }
    }
    await this.open(w, true);
  }

  /** Lists (when there is no resourceVersion to resume from) and opens the watch. */
  private async open(w: Watched, first = false): Promise<void> {
    const kube = this.deps.kube;
    const api = await kube.resolve(w.target.kind, 'v1');
    const namespace = w.target.kind === 'pods' ? w.target.namespace : undefined;
    let relisted = false;
    if (!w.rv) {
      const list = await kube.list({ api, namespace }, { limit: 1 });
      w.rv = list.metadata?.resourceVersion;
      relisted = !first;
    }
    if (w.closed) return;
    const stop = await kube.watch(
      // The apiserver ends each watch after timeoutSeconds; it is then resumed from the last resourceVersion.
      { api, namespace, resourceVersion: w.rv, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
      (e) => {
        const rv = e.object.metadata?.resourceVersion;
        if (typeof rv === 'string' && rv) w.rv = rv;
        if (e.type !== 'BOOKMARK') this.notify(w);
      },
      (err) => this.ended(w, err),
    );
    if (w.closed) {
      stop();
      return;
    }
    w.stop = stop;
    const recovered = w.failures > 0;
    if (recovered) this.deps.log.info({ watch: w.key, after: w.failures }, 'watch re-established');
    w.failures = 0;
    // After an outage or a relist, changes may have been missed: subscribers re-read.
    if (recovered || relisted) this.notify(w);
  }

  private ended(w: Watched, err?: Error): void {
    w.stop = undefined;
    if (w.closed) return;
    if (err instanceof KubeError && err.code === 410) w.rv = undefined; // too old: relist
    if (err) {
      w.failures = Math.max(w.failures, 1);
      this.deps.log.warn({ watch: w.key, err: errorText(err) }, 'watch failed; re-opening with backoff');
    }
    this.schedule(w, w.failures === 0 ? 0 : backoff(w.failures - 1, this.base, this.max));
  }

  private schedule(w: Watched, delay: number): void {
    if (w.closed) return;
    if (w.timer) clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      w.timer = undefined;
      if (w.closed) return;
      this.as(w, () => this.open(w)).catch((err: unknown) => {
        if (w.closed) return;
        if (err instanceof KubeError && err.code === 410) w.rv = undefined;
        w.failures++;
        if (w.failures === 1)
          this.deps.log.warn({ watch: w.key, err: errorText(err) }, 'watch re-open failed; retrying with backoff');
        else this.deps.log.debug({ watch: w.key, attempt: w.failures, err: errorText(err) }, 'watch re-open failed');
        this.schedule(w, backoff(w.failures - 1, this.base, this.max));
      });
    }, delay);
    w.timer.unref?.();
  }

  /** Stops every watch (server shutdown). */
  close(): void {
    for (const w of [...this.watched.values()]) this.drop(w);
  }
}

/**
 * Resource subscriptions of one MCP session (seed 002): each subscribed URI holds a listener on
 * the shared hub's watch; changes (debounced by `debounceMs`) become
 * notifications/resources/updated. At most `hub.maxPerSession` URIs per session. Everything is
 * released on unsubscribe and when the session closes.
 */
export class Subscriptions {
  private readonly subs = new Map<string, { release?: () => void; timer?: NodeJS.Timeout; closed: boolean }>();
  private closed = false;

  constructor(
    private readonly server: McpServer,
    private readonly deps: Deps,
    private readonly hub: SubscriptionHub,
    private readonly debounceMs = 200,
  ) {
    server.server.setRequestHandler(SubscribeRequestSchema, async (req, extra) => {
      await this.subscribe(req.params.uri, extra.signal);
      return {};
    });
    server.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
      this.unsubscribe(req.params.uri);
      return {};
    });
  }

  /** URIs subscribed to. */
  get uris(): string[] {
    return [...this.subs.keys()];
  }

  /**
   * Starts watching `uri` (a no-op when already subscribed).
   * @throws McpError InvalidParams for URIs other than the two resources or a namespace that does
   *   not exist; InvalidRequest over the session's or the server's limit, or when the watch cannot start.
   */
  async subscribe(uri: string, signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new McpError(ErrorCode.InvalidRequest, 'the session is closed');
    if (this.subs.has(uri)) return;
    let target: WatchTarget;
    if (uri === NODES_URI) target = { kind: 'nodes' };
    else {
      const m = PODS_RE.exec(uri);
      if (!m)
        throw new McpError(
          ErrorCode.InvalidParams,
          `cannot subscribe to ${uri}: subscribable resources are ${NODES_URI} and ${PODS_TEMPLATE}`,
        );
      target = { kind: 'pods', namespace: m[1]! };
    }
    if (this.subs.size >= this.hub.maxPerSession) {
      throw new McpError(
        ErrorCode.InvalidRequest,
        `cannot subscribe to ${uri}: this session already holds ${this.hub.maxPerSession} subscriptions, the limit per session (--max-subscriptions)`,
      );
    }
    const state: { release?: () => void; timer?: NodeJS.Timeout; closed: boolean } = { closed: false };
    this.subs.set(uri, state);
    const listener = () => {
      if (state.closed || state.timer) return;
      state.timer = setTimeout(() => {
        state.timer = undefined;
        if (!state.closed)
          this.server.server
            .sendResourceUpdated({ uri })
            .catch((err) => this.deps.log.debug({ err: String(err) }, 'resource update not sent'));
      }, this.debounceMs);
      state.timer.unref?.();
    };
    try {
      const release = await this.hub.acquire(uri, target, listener, signal);
      if (state.closed) release();
      else state.release = release;
    } catch (err) {
      if (this.subs.get(uri) === state) this.subs.delete(uri);
      if (err instanceof McpError) throw err;
      throw new McpError(ErrorCode.InvalidParams, `cannot subscribe to ${uri}: ${errorText(err)}`);
    }
  }

  /** Stops watching `uri` (no error when not subscribed). */
  unsubscribe(uri: string): void {
    const s = this.subs.get(uri);
    if (!s) return;
    s.closed = true;
    if (s.timer) clearTimeout(s.timer);
    s.release?.();
    this.subs.delete(uri);
  }

  /** Releases every subscription (on session close); later subscribes are refused. */
  close(): void {
    this.closed = true;
    for (const uri of [...this.subs.keys()]) this.unsubscribe(uri);
  }
}
