/**
 * Seed 001's resources, names and URIs kept exactly: `k8s://cluster/nodes` and the template
 * `k8s://namespace/{namespace}/pods` (with namespace completion and a list of the allowed
 * namespaces), in the seed's JSON shape. Plus resource subscriptions (seed 002, issue 5): a
 * client that subscribes to either URI gets `notifications/resources/updated` when the nodes or
 * pods change, driven by a Kubernetes watch through the gateway (so the policy applies).
 */
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema, McpError, ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { errorText, type KubeGateway } from './kube.js';

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
  const list = await kube.request({ api });
  const nodes = (list.items ?? []).map((n: any) => ({
    name: n.metadata?.name,
    status: n.status?.conditions?.find((c: any) => c.type === 'Ready')?.status,
    version: n.status?.nodeInfo?.kubeletVersion,
    capacity: { cpu: n.status?.capacity?.cpu, memory: n.status?.capacity?.memory, pods: n.status?.capacity?.pods },
  }));
  return { nodes, count: nodes.length };
}

/** The seed's pod summary of a namespace: name, namespace, phase, ready, restarts, age (creation time). */
export async function podsDoc(kube: KubeGateway, namespace: string) {
  const api = await kube.resolve('pods', 'v1');
  const list = await kube.request({ api, namespace });
  const pods = (list.items ?? []).map((p: any) => ({
    name: p.metadata?.name,
    namespace: p.metadata?.namespace,
    phase: p.status?.phase,
    ready: (p.status?.containerStatuses ?? []).length > 0 && p.status.containerStatuses.every((c: any) => c.ready),
    restarts: (p.status?.containerStatuses ?? []).reduce((s: number, c: any) => s + (c.restartCount ?? 0), 0),
    age: p.metadata?.creationTimestamp,
  }));
  return { namespace, pods, count: pods.length };
}

/** Names of the namespaces a client may see (the allow-list, or all). */
export async function namespaceNames(kube: KubeGateway): Promise<string[]> {
  const allowed = kube.policy.allowedNamespaces;
  if (allowed.length) return allowed;
  const api = await kube.resolve('namespaces', 'v1');
  const list = await kube.request({ api, query: { limit: 500 } });
  return (list.items ?? []).map((n: any) => n.metadata.name as string);
}

function asJson(uri: string, doc: unknown) {
  return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(doc, null, 2) }] };
}

/** Read failures become JSON-RPC errors with the reason (never a crash). */
function readError(uri: string, err: unknown): McpError {
  return new McpError(ErrorCode.InternalError, `cannot read ${uri}: ${errorText(err)}`);
}

/** Registers the two resources; call before connect(). */
export function registerResources(server: McpServer, deps: Deps): void {
  server.registerResource(
    'cluster-nodes',
    NODES_URI,
    { title: 'Kubernetes Cluster Nodes', description: 'Information about all nodes in the cluster', mimeType: 'application/json' },
    async (uri) => {
      try {
        return asJson(uri.href, await nodesDoc(deps.kube));
      } catch (err) {
        throw readError(uri.href, err);
      }
    },
  );
  server.registerResource(
    'namespace-pods',
    new ResourceTemplate(PODS_TEMPLATE, {
      list: async () => {
        const names = await namespaceNames(deps.kube).catch(() => ['default']);
        return {
          resources: names.slice(0, 100).map((ns) => ({ uri: `k8s://namespace/${ns}/pods`, name: `${ns} pods`, description: `Pods in namespace ${ns}`, mimeType: 'application/json' })),
        };
      },
      complete: {
        namespace: async (value) => (await namespaceNames(deps.kube).catch(() => [])).filter((n) => n.startsWith(value ?? '')).slice(0, 100),
      },
    }),
    { title: 'Namespace Pods', description: 'List all pods in a namespace', mimeType: 'application/json' },
    async (uri, vars) => {
      const ns = String(Array.isArray(vars.namespace) ? vars.namespace[0] : vars.namespace);
      if (!PODS_RE.test(`k8s://namespace/${ns}/pods`)) throw new McpError(ErrorCode.InvalidParams, `invalid namespace "${ns}" in ${uri.href}: a DNS-1123 label`);
      try {
        return asJson(uri.href, await podsDoc(deps.kube, ns));
      } catch (err) {
        throw readError(uri.href, err);
      }
    },
  );
}

/**
 * Resource subscriptions of one MCP session: one Kubernetes watch per subscribed URI, each
 * event (debounced by `debounceMs`) sent as notifications/resources/updated. Watches that end
 * are re-opened after a second, at most `maxRestarts` times per URI.
 */
export class Subscriptions {
  private readonly watches = new Map<string, { stop?: () => void; timer?: NodeJS.Timeout; restarts: number; closed: boolean }>();

  constructor(
    private readonly server: McpServer,
    private readonly deps: Deps,
    private readonly debounceMs = 200,
    private readonly maxRestarts = 100,
  ) {
    server.server.setRequestHandler(SubscribeRequestSchema, async (req) => {
      await this.subscribe(req.params.uri);
      return {};
    });
    server.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
      this.unsubscribe(req.params.uri);
      return {};
    });
  }

  /** URIs subscribed to. */
  get uris(): string[] {
    return [...this.watches.keys()];
  }

  /**
   * Starts watching `uri`.
   * @throws McpError InvalidParams for URIs other than the two resources, or when the watch cannot start.
   */
  async subscribe(uri: string): Promise<void> {
    if (this.watches.has(uri)) return;
    let target: { kind: string; namespace?: string };
    if (uri === NODES_URI) target = { kind: 'nodes' };
    else {
      const m = PODS_RE.exec(uri);
      if (!m) throw new McpError(ErrorCode.InvalidParams, `cannot subscribe to ${uri}: subscribable resources are ${NODES_URI} and ${PODS_TEMPLATE}`);
      target = { kind: 'pods', namespace: m[1]! };
    }
    const state = { restarts: 0, closed: false } as { stop?: () => void; timer?: NodeJS.Timeout; restarts: number; closed: boolean };
    this.watches.set(uri, state);
    try {
      await this.open(uri, target, state);
    } catch (err) {
      this.watches.delete(uri);
      throw new McpError(ErrorCode.InvalidParams, `cannot subscribe to ${uri}: ${errorText(err)}`);
    }
  }

  private async open(uri: string, target: { kind: string; namespace?: string }, state: { stop?: () => void; timer?: NodeJS.Timeout; restarts: number; closed: boolean }) {
    const api = await this.deps.kube.resolve(target.kind, 'v1');
    // Start from the current resourceVersion, so only changes after the subscription notify.
    const list = await this.deps.kube.request({ api, namespace: target.namespace, query: { limit: 1 } });
    const rv = list.metadata?.resourceVersion;
    state.stop = await this.deps.kube.watch(
      { api, namespace: target.namespace, query: { resourceVersion: rv } },
      () => {
        if (state.closed || state.timer) return;
        state.timer = setTimeout(() => {
          state.timer = undefined;
          if (!state.closed) this.server.server.sendResourceUpdated({ uri }).catch((err) => this.deps.log.debug({ err: String(err) }, 'resource update not sent'));
        }, this.debounceMs);
      },
      (err) => {
        if (state.closed) return;
        if (state.restarts++ >= this.maxRestarts) {
          this.deps.log.warn({ uri }, 'watch ended too often; subscription dropped');
          this.watches.delete(uri);
          return;
        }
        if (err) this.deps.log.debug({ uri, err: err.message }, 'watch ended');
        setTimeout(() => {
          if (!state.closed) this.open(uri, target, state).catch((e) => this.deps.log.debug({ uri, err: errorText(e) }, 'watch restart failed'));
        }, 1000).unref();
      },
    );
  }

  /** Stops watching `uri` (no error when not subscribed). */
  unsubscribe(uri: string): void {
    const s = this.watches.get(uri);
    if (!s) return;
    s.closed = true;
    if (s.timer) clearTimeout(s.timer);
    s.stop?.();
    this.watches.delete(uri);
  }

  /** Stops every watch (on session close). */
  close(): void {
    for (const uri of [...this.watches.keys()]) this.unsubscribe(uri);
  }
}
