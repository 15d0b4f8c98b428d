/**
 * Helpers shared by the tools: kind/name parsing (`secret/<name>`), Table listing with
 * pagination and the namespace allow-list, results under the size budget, output schemas.
 */
import { z } from 'zod';
import { KubeError, type ApiResource, type KubernetesObject, type LabelSelector, type Workload } from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import { budgetTable, budgetText, compact, fromApiTable, toYaml, truncatedNote, type TextTable } from '../format.js';
import { fence, FENCE_OVERHEAD } from '../fence.js';
import type { ToolContext, ToolOutput } from './registry.js';

/** Output schema of list tools: a compact table. */
export const tableOutput = {
  kind: z.string(),
  columns: z.array(z.string()),
  rows: z.array(z.array(z.string())),
  shown: z.number().int(),
  total: z.number().int(),
  truncated: z.boolean(),
  continue: z.string().optional().describe('next page token'),
};

/** Output schema of tools that return one object. */
export const objectOutput = {
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
  truncated: z.boolean(),
  object: z.record(z.string(), z.unknown()).optional().describe('absent when truncated'),
};

/**
 * Resolves the `kind` argument (optionally pinned by `apiVersion`) through discovery.
 * @throws InvalidArgumentError naming `field` when the cluster serves no such kind; KubeError
 *   when discovery fails.
 */
export async function resolveKind(
  ctx: ToolContext,
  kind: string,
  apiVersion: string | undefined,
  context: string | undefined,
  field = 'kind',
): Promise<ApiResource> {
  try {
    return await ctx.kube.resolve(kind, apiVersion, context);
  } catch (err) {
    if (err instanceof KubeError && err.code === 404) throw new InvalidArgumentError(field, err.message);
    throw err;
  }
}

/**
 * Resolves `kind` and the object name (`name`, or `kind/name`) of a one-object tool.
 * @throws InvalidArgumentError naming `name` when there is none, `kind` when it is unknown.
 */
export async function resolveNamed(
  ctx: ToolContext,
  a: { kind: string; name?: string; apiVersion?: string; context?: string },
): Promise<{ api: ApiResource; name: string }> {
  const { kind, name } = splitKindName(a.kind, a.name);
  if (!name) throw new InvalidArgumentError('name', 'a name is required (as `name`, or `kind/name`)');
  return { api: await resolveKind(ctx, kind, a.apiVersion, a.context), name };
}

/** Splits `kind/name` (as `kubectl get secret/foo`) when no separate name is given. */
export function splitKindName(kind: string, name?: string): { kind: string; name?: string } {
  if (!name && kind.includes('/')) {
    const i = kind.indexOf('/');
    return { kind: kind.slice(0, i), name: kind.slice(i + 1) || undefined };
  }
  return { kind, ...(name ? { name } : {}) };
}

/** The namespace a namespaced call uses: the argument, else the context's default. */
export function nsFor(
  ctx: ToolContext,
  api: ApiResource,
  namespace: string | undefined,
  context?: string,
): string | undefined {
  if (!api.namespaced) return undefined;
  return namespace || ctx.kube.defaultNamespace(context);
}

/** Options of a Table list. */
export interface ListOpts {
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

/**
 * Lists a resource as the apiserver's Table. All namespaces with a namespace allow-list lists
 * each allowed namespace instead (the policy refuses a cluster-wide list).
 */
export async function listTable(
  ctx: ToolContext,
  api: ApiResource,
  o: ListOpts,
): Promise<{ table: TextTable; continue?: string; remaining?: number }> {
  const all = api.namespaced && !!o.allNamespaces;
  const query = {
    labelSelector: o.labelSelector,
    fieldSelector: o.fieldSelector,
    limit: o.limit,
    continue: o.continue,
  };
  const allowed = ctx.policy.allowedNamespaces;
  if (all && allowed.length > 0) {
    const tables: TextTable[] = [];
    for (const ns of allowed) {
      const t = await ctx.kube.table({ context: o.context, api, namespace: ns }, { ...query, continue: undefined });
      tables.push(fromApiTable(t, true));
    }
    return { table: { columns: tables[0]?.columns ?? [], rows: tables.flatMap((t) => t.rows) } };
  }
  const namespace = all ? undefined : api.namespaced ? o.namespace || ctx.kube.defaultNamespace(o.context) : undefined;
  const t = await ctx.kube.table({ context: o.context, api, namespace }, query);
  const cont = t.metadata?.continue;
  return {
    table: fromApiTable(t, all),
    ...(cont ? { continue: cont } : {}),
    ...(t.metadata?.remainingItemCount !== undefined ? { remaining: t.metadata.remainingItemCount } : {}),
  };
}

/**
 * A list result under the budget, with the narrowing hint when rows were cut or more pages
 * exist; `untrusted` (the source, e.g. `events in default`) fences the rows (fence.ts). `more.omitted` counts rows the caller dropped before (e.g. list-events keeping the most
 * recent N): every cut is flagged in both the text and `structuredContent.truncated`.
 */
export function tableResult(
  ctx: ToolContext,
  kind: string,
  table: TextTable,
  more?: { continue?: string; remaining?: number; omitted?: number; omittedNote?: string },
  hint = 'labelSelector, fieldSelector, namespace or limit',
  untrusted?: string,
): ToolOutput {
  const { text, shown } = budgetTable(table, untrusted ? Math.max(0, ctx.budget - FENCE_OVERHEAD) : ctx.budget);
  const omitted = more?.omitted ?? 0;
  const cutByBudget = shown < table.rows.length;
  const truncated = cutByBudget || omitted > 0;
  // Rows written by anyone with a pod (event messages) are fenced (fence.ts); the notes are ours.
  let out = text ? (untrusted ? fence(text, untrusted).text : text) : `No ${kind} found.`;
  if (cutByBudget)
    out += truncatedNote(
      `showing ${shown} of ${table.rows.length + omitted} rows within the ${ctx.budget}-character budget`,
      hint,
    );
  else if (omitted > 0)
    out += truncatedNote(more?.omittedNote ?? `showing ${shown} of ${table.rows.length + omitted} rows`, hint);
  if (more?.continue)
    out += `\n[more results${more.remaining ? ` (${more.remaining} remaining)` : ''}: call again with continue="${more.continue}"]`;
  return {
    text: out,
    structured: {
      kind,
      columns: table.columns,
      rows: table.rows.slice(0, shown),
      shown,
      total: table.rows.length + omitted,
      truncated,
      ...(more?.continue ? { continue: more.continue } : {}),
    },
  };
}

/**
 * A one-object result (YAML text, compact object) under the budget; `untrusted` (the source, e.g.
 * `configmap default/app`) fences the YAML (fence.ts): annotations, labels and data are written
 * by whoever may write the object.
 */
export function objectResult(ctx: ToolContext, obj: KubernetesObject, prefix = '', untrusted?: string): ToolOutput {
  const c = compact(obj);
  const yaml = prefix + toYaml(c);
  const cutAt = untrusted ? Math.max(0, ctx.budget - FENCE_OVERHEAD) : ctx.budget;
  const { text: raw, cut } = budgetText(yaml, cutAt);
  const text = untrusted ? fence(raw, untrusted).text : raw;
  const meta = c.metadata ?? {};
  return {
    text: cut
      ? text +
        truncatedNote(
          `${yaml.length} characters exceed the ${ctx.budget}-character budget`,
          'get-resource on a narrower kind, describe-resource, or list-resources with a selector',
        )
      : text,
    structured: {
      kind: String(c?.kind ?? ''),
      name: String(meta.name ?? ''),
      ...(meta.namespace ? { namespace: meta.namespace } : {}),
      truncated: cut,
      ...(cut ? {} : { object: c }),
    },
    target: `${String(c?.kind ?? '').toLowerCase()}/${meta.namespace ? meta.namespace + '/' : ''}${meta.name ?? ''}`,
  };
}

/**
 * The label selector string of a workload (`spec.selector`, MCPServer `status.selector`, Service `spec.selector`).
 * @throws InvalidArgumentError naming `kind` when the object selects no pods (the kind was not a workload).
 */
export function selectorOf(obj: Workload): string {
  if (obj.kind === 'Service' && obj.spec?.selector)
    return Object.entries(obj.spec.selector)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(',');
  if (typeof obj.status?.selector === 'string' && obj.status.selector) return obj.status.selector;
  const sel = obj.spec?.selector as LabelSelector | undefined;
  if (!sel)
    throw new InvalidArgumentError('kind', `${obj.kind ?? 'object'} ${obj.metadata?.name ?? ''} has no pod selector`);
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator === 'In') parts.push(`${e.key} in (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  if (parts.length === 0) throw new InvalidArgumentError('kind', `${obj.kind} ${obj.metadata?.name} selects no labels`);
  return parts.join(',');
}

/**
 * Parses a JSON patch/manifest argument given as text or object.
 * @throws InvalidArgumentError naming `field` when the text is not JSON.
 */
export function parseDoc(v: unknown, field: string): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    throw new InvalidArgumentError(field, 'not valid JSON');
  }
}

/**
 * The owner chain of an object, nearest first (`[{kind: 'ReplicaSet', ...}, {kind: 'Deployment', ...}]`):
 * each step follows the controller owner reference (else the first one), at most 5 steps; a
 * step that cannot be read (deleted, forbidden, unknown kind) ends the chain there.
 */
export async function ownerChain(
  ctx: ToolContext,
  obj: KubernetesObject,
  context?: string,
): Promise<Array<{ kind: string; name: string }>> {
  const owners: Array<{ kind: string; name: string }> = [];
  let cur: KubernetesObject = obj;
  for (let depth = 0; depth < 5; depth++) {
    const ref = (cur.metadata?.ownerReferences ?? []).find((r) => r.controller) ?? cur.metadata?.ownerReferences?.[0];
    if (!ref) break;
    owners.push({ kind: ref.kind, name: ref.name });
    try {
      const api = await ctx.kube.resolve(ref.kind, ref.apiVersion, context);
      cur = await ctx.kube.get({
        context,
        api,
        namespace: api.namespaced ? obj.metadata?.namespace : undefined,
        name: ref.name,
      });
    } catch {
      break;
    }
  }
  return owners;
}
