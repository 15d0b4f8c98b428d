/**
 * get-resource-usage (issue 19, "top"): CPU and memory of pods (per container on request) and nodes from the resource
 * metrics API `metrics.k8s.io/v1beta1` (PodMetrics, NodeMetrics, served by metrics-server), as
 * `kubectl top pod|node` prints them (k8s.io/kubectl/pkg/cmd/top and pkg/metricsutil, v0.36):
 * CPU in millicores (`Quantity.MilliValue()`, rounded up: `250m`), memory in MiB
 * (`Value() / 2^20`, rounded down: `64Mi`), nodes with CPU% and MEMORY% of their allocatable
 * (truncated to an integer), nodes without metrics as `<unknown>` rows after the others; sorted by
 * name (namespace first across namespaces) unless `sortBy` asks for cpu or memory, largest first
 * (with `containers`, pods by their total and containers within each pod).
 *
 * Every request goes through the gateway: the metrics resources are resolved through discovery
 * (`pods`/`nodes` in apiVersion `metrics.k8s.io/v1beta1`), so the namespace allow-list, denied
 * kinds and impersonation apply to them as to any resource.
 *
 * When the cluster does not serve `metrics.k8s.io` the call fails with a message saying so (and
 * how to get it: install metrics-server). The tool is also hidden from tools/list while discovery
 * shows no `metrics.k8s.io`: it declares `apiGroup: 'metrics.k8s.io'`, and registerTools
 * (registry.ts followApiGroup) follows this process's discovery results without asking for any
 * (discovery.ts onDiscovery). So the start listing (the stdio snapshot included) holds `top`
 * without touching the cluster; the first discovery that lacks the group (the stdio warm-up, or
 * any call) disables it and sends notifications/tools/list_changed; a later discovery that has
 * the group lists it again. With several contexts allowed it stays listed (one context's
 * discovery says nothing of another's) and the call's error covers a context without metrics.
 */
import { z } from 'zod';
import { quantityValue } from '../../charts/api/quantity.js';
import { KubeError, type ApiResource, type KubernetesObject } from '../kube.js';
import { checkName, InvalidArgumentError } from '../names.js';
import type { TextTable } from '../format.js';
import { contextArg, defineTool, type AnyToolDef, type ToolContext } from './registry.js';
import { tableOutput, tableResult } from './common.js';

/** The resource metrics API group and version (metrics-server; KEP-1013's successor, k8s.io/metrics). */
export const METRICS_GROUP = 'metrics.k8s.io';
const METRICS_VERSION = `${METRICS_GROUP}/v1beta1`;

/** Usage of one container or node: CPU and memory quantities (`"12345678n"`, `"20480Ki"`). */
interface Usage {
  cpu?: string;
  memory?: string;
}
/** A PodMetrics object (metrics.k8s.io/v1beta1). */
interface PodMetrics extends KubernetesObject {
  timestamp?: string;
  window?: string;
  containers?: Array<{ name: string; usage?: Usage }>;
}
/** A NodeMetrics object (metrics.k8s.io/v1beta1). */
interface NodeMetrics extends KubernetesObject {
  usage?: Usage;
}
/** The part of a Node read here. */
interface NodeObject extends KubernetesObject {
  status?: { allocatable?: Usage };
}

/**
 * Millicores of a CPU quantity, rounded up as `resource.Quantity.MilliValue()` (`"1500000n"` -> 2,
 * `"250m"` -> 250, `"2"` -> 2000); integer mantissas with suffix n, u, m or none are exact.
 * @throws Error when the text is not a Kubernetes quantity.
 */
export function milliCores(q: string | undefined): number {
  if (!q) return 0;
  const m = /^(\d+)(n|u|m|)$/.exec(q);
  if (m) {
    const n = Number(m[1]);
    if (Number.isSafeInteger(n)) {
      if (m[2] === 'n') return Math.ceil(n / 1e6);
      if (m[2] === 'u') return Math.ceil(n / 1e3);
      if (m[2] === 'm') return n;
      return n * 1000;
    }
  }
  return Math.ceil(quantityValue(q) * 1000 - 1e-6);
}

/**
 * Bytes of a memory quantity, rounded up as `resource.Quantity.Value()` (`"20480Ki"` -> 20971520).
 * @throws Error when the text is not a Kubernetes quantity.
 */
export function bytesOf(q: string | undefined): number {
  return q ? Math.ceil(quantityValue(q) - 1e-6) : 0;
}

const MI = 2 ** 20;
const cpuText = (milli: number) => `${milli}m`;
const memText = (bytes: number) => `${Math.floor(bytes / MI)}Mi`;
/** kubectl's percentage: `int64(usage.MilliValue() / available.MilliValue() * 100)`, 0 when nothing is available. */
const percent = (used: number, available: number) =>
  available > 0 ? `${Math.trunc((used / available) * 100)}%` : '0%';

type SortBy = 'cpu' | 'memory' | undefined;
interface Row {
  namespace: string;
  name: string;
  cpu: number;
  mem: number;
}
/** kubectl's metrics sorters: cpu or memory largest first, else by (namespace and) name. */
function sortRows<T extends Row>(rows: T[], sortBy: SortBy, withNamespace: boolean): T[] {
  return rows.sort((a, b) => {
    if (sortBy === 'cpu') return b.cpu - a.cpu;
    if (sortBy === 'memory') return b.mem - a.mem;
    if (withNamespace && a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/** The error of a call on a cluster that does not serve metrics.k8s.io (or whose metrics server does not answer). */
function metricsError(err: unknown): unknown {
  if (err instanceof KubeError && err.code === 404)
    return new KubeError(
      404,
      'NotFound',
      `the metrics API (${METRICS_GROUP}) is not served by this cluster: install metrics-server (https://github.com/kubernetes-sigs/metrics-server) to use get-resource-usage`,
    );
  if (err instanceof KubeError && err.code === 503)
    return new KubeError(
      503,
      'ServiceUnavailable',
      `${METRICS_GROUP} is registered but its server does not answer (is metrics-server running?): ${err.message}`,
    );
  return err;
}

/**
 * Resolves the metrics resource `resource` (`pods` or `nodes`) in metrics.k8s.io/v1beta1.
 * @throws KubeError 404 saying the metrics API is not served (install metrics-server).
 */
async function metricsApi(ctx: ToolContext, resource: 'pods' | 'nodes', context?: string): Promise<ApiResource> {
  try {
    return await ctx.kube.resolve(resource, METRICS_VERSION, context);
  } catch (err) {
    throw metricsError(err);
  }
}

/** Lists `api` in each namespace of `namespaces` (undefined: cluster-wide or cluster-scoped). */
async function listIn<T extends KubernetesObject>(
  ctx: ToolContext,
  api: ApiResource,
  namespaces: Array<string | undefined>,
  query: { labelSelector?: string; fieldSelector?: string; context?: string },
): Promise<T[]> {
  const out: T[] = [];
  for (const namespace of namespaces) {
    const list = await ctx.kube
      .list<T>(
        { context: query.context, api, namespace },
        { labelSelector: query.labelSelector, fieldSelector: query.fieldSelector },
      )
      .catch((err: unknown) => {
        throw metricsError(err);
      });
    out.push(...list.items);
  }
  return out;
}

/** The top tool. */
export function topTools(): AnyToolDef[] {
  return [
    defineTool({
      name: 'get-resource-usage',
      title: 'Top (CPU and memory)',
      description:
        'CPU (millicores) and memory (Mi) of pods or nodes from metrics.k8s.io, like kubectl top; nodes with % of allocatable. Needs metrics-server.',
      effect: 'read',
      apiGroup: METRICS_GROUP,
      input: {
        kind: z.enum(['pods', 'nodes']).optional().describe('default pods'),
        name: z.string().optional(),
        namespace: z.string().optional(),
        allNamespaces: z.boolean().optional(),
        labelSelector: z.string().optional(),
        containers: z.boolean().optional().describe('one row per container (pods)'),
        sortBy: z.enum(['cpu', 'memory']).optional().describe('largest first; default by name'),
        context: contextArg,
      },
      output: tableOutput,
      run: async (a, ctx) => {
        const nodes = a.kind === 'nodes';
        if (nodes && (a.namespace || a.allNamespaces))
          throw new InvalidArgumentError(a.namespace ? 'namespace' : 'allNamespaces', 'nodes are not namespaced');
        if (nodes && a.containers) throw new InvalidArgumentError('containers', 'containers are for kind pods');
        if (a.namespace && a.allNamespaces)
          throw new InvalidArgumentError('allNamespaces', 'give namespace or allNamespaces, not both');
        if (a.name !== undefined && a.labelSelector)
          throw new InvalidArgumentError('labelSelector', 'give name or labelSelector, not both (as kubectl top)');
        // A valid object name also keeps the field selector below to one term.
        if (a.name !== undefined) checkName(a.name, '', nodes ? 'nodes' : 'pods');
        const query = {
          context: a.context,
          labelSelector: a.labelSelector,
          fieldSelector: a.name ? `metadata.name=${a.name}` : undefined,
        };
        return nodes ? topNodes(ctx, a.sortBy, query) : topPods(ctx, a, query);
      },
    }),
  ];
}

/** `kubectl top node`: NodeMetrics joined with the Nodes' allocatable. */
async function topNodes(
  ctx: ToolContext,
  sortBy: SortBy,
  query: { context?: string; labelSelector?: string; fieldSelector?: string },
) {
  const api = await metricsApi(ctx, 'nodes', query.context);
  const nodeApi = await ctx.kube.resolve('nodes', 'v1', query.context);
  const [metrics, nodeList] = await Promise.all([
    listIn<NodeMetrics>(ctx, api, [undefined], query),
    listIn<NodeObject>(ctx, nodeApi, [undefined], query),
  ]);
  const allocatable = new Map(nodeList.map((n) => [n.metadata?.name ?? '', n.status?.allocatable ?? {}]));
  const rows = sortRows(
    metrics.map((m) => ({
      namespace: '',
      name: m.metadata?.name ?? '',
      cpu: milliCores(m.usage?.cpu),
      mem: bytesOf(m.usage?.memory),
    })),
    sortBy,
    false,
  );
  const table: TextTable = {
    columns: ['NAME', 'CPU(cores)', 'CPU(%)', 'MEMORY(bytes)', 'MEMORY(%)'],
    rows: rows.map((r) => {
      const avail = allocatable.get(r.name);
      const cells = [r.name, cpuText(r.cpu), '', memText(r.mem), ''];
      // kubectl prints a percentage only for nodes it read (allocatable known).
      if (avail) {
        cells[2] = percent(r.cpu, milliCores(avail.cpu));
        cells[4] = percent(r.mem, bytesOf(avail.memory));
      }
      return cells;
    }),
  };
  // Nodes without metrics (kwok's, a node metrics-server does not scrape): `<unknown>`, as kubectl.
  const measured = new Set(rows.map((r) => r.name));
  for (const name of [...allocatable.keys()].filter((n) => !measured.has(n)).sort())
    table.rows.push([name, '<unknown>', '<unknown>', '<unknown>', '<unknown>']);
  return tableResult(ctx, 'NodeMetrics', table, undefined, 'name or labelSelector');
}

/** `kubectl top pod [--containers]`. */
async function topPods(
  ctx: ToolContext,
  a: { namespace?: string; allNamespaces?: boolean; containers?: boolean; sortBy?: SortBy },
  query: { context?: string; labelSelector?: string; fieldSelector?: string },
) {
  const api = await metricsApi(ctx, 'pods', query.context);
  const all = !!a.allNamespaces;
  const allowed = ctx.policy.allowedNamespaces;
  const namespaces = all
    ? allowed.length
      ? allowed
      : [undefined]
    : [a.namespace || ctx.kube.defaultNamespace(query.context)];
  const metrics = await listIn<PodMetrics>(ctx, api, namespaces, query);
  const pods = sortRows(
    metrics.map((m) => {
      const containers = (m.containers ?? []).map((c) => ({
        namespace: '',
        name: c.name,
        cpu: milliCores(c.usage?.cpu),
        mem: bytesOf(c.usage?.memory),
      }));
      return {
        namespace: m.metadata?.namespace ?? '',
        name: m.metadata?.name ?? '',
        cpu: containers.reduce((s, c) => s + c.cpu, 0),
        mem: containers.reduce((s, c) => s + c.mem, 0),
        containers,
      };
    }),
    a.sortBy,
    all,
  );
  const columns = [
    ...(all ? ['NAMESPACE'] : []),
    ...(a.containers ? ['POD'] : []),
    'NAME',
    'CPU(cores)',
    'MEMORY(bytes)',
  ];
  const rows = pods.flatMap((p) => {
    const lead = all ? [p.namespace] : [];
    if (!a.containers) return [[...lead, p.name, cpuText(p.cpu), memText(p.mem)]];
    return sortRows(p.containers, a.sortBy, false).map((c) => [
      ...lead,
      p.name,
      c.name,
      cpuText(c.cpu),
      memText(c.mem),
    ]);
  });
  const out = tableResult(ctx, 'PodMetrics', { columns, rows }, undefined, 'namespace, name or labelSelector');
  if (rows.length === 0) {
    // kubectl top pod: pods that exist but have no metrics yet are "metrics not available yet".
    const podApi = await ctx.kube.resolve('pods', 'v1', query.context);
    const existing = await listIn<KubernetesObject>(ctx, podApi, namespaces, query);
    if (existing.length)
      out.text = `Metrics not available yet for the ${existing.length} matching pod${existing.length > 1 ? 's' : ''}: metrics-server reports a pod after scraping its node twice (about a minute); retry later.`;
  }
  return out;
}
