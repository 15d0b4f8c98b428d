/**
 * Tools for any kind, CRDs included, resolved through cached discovery (issue 5, "The toolset"):
 * list-resources, get-resource, describe-resource, apply-manifest (server-side apply, dry-run
 * switch), patch-resource (merge/JSON/strategic) and delete-resource. The writes take `preview`
 * (preview.ts: a dry run and the diff, or what a delete removes); deletes ask the user first when
 * the client supports elicitation (ToolContext.confirm).
 */
import { z } from 'zod';
import { fence, FENCE_OVERHEAD } from '../fence.js';
import { parseAllDocuments } from 'yaml';
import {
  FIELD_MANAGER,
  KubeError,
  type ApiResource,
  type Condition,
  type DeleteOptions,
  type Event,
  type KubernetesObject,
  type Workload,
} from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import {
  age,
  budgetText,
  compact,
  fromApiTable,
  renderTable,
  toYaml,
  truncatedNote,
  type TextTable,
} from '../format.js';
import { contextArg, defineTool, type AnyToolDef, type ToolContext, type ToolOutput } from './registry.js';
import {
  listTable,
  nsFor,
  objectOutput,
  objectResult,
  ownerChain,
  parseDoc,
  resolveKind,
  resolveNamed,
  selectorOf,
  tableOutput,
  tableResult,
} from './common.js';
import {
  diffOutput,
  planDelete,
  planText,
  previewArg,
  previewResult,
  type DeletePlan,
  type PreviewEntry,
} from './preview.js';

const kindArg = z
  .string()
  .min(1)
  .describe('kind or resource as kubectl accepts it (Pod, po, deployments.apps, mcps); `kind/name` works too');
const nameArg = z.string().min(1).describe('object name');
const nsArg = z.string().optional().describe("namespace (default: the context's); ignored for cluster-scoped kinds");
const apiVersionArg = z.string().optional().describe('apiVersion to disambiguate a kind, e.g. apps/v1');

/** Events about one object (core/v1 events by involvedObject.uid), newest last, as a table. */
export async function eventsFor(
  ctx: ToolContext,
  obj: KubernetesObject,
  context?: string,
  max = 20,
): Promise<TextTable> {
  const api = await ctx.kube.resolve('events', 'v1', context);
  const ns = obj.metadata?.namespace;
  const list = await ctx.kube
    .list<Event>(
      { context, api, namespace: ns || undefined },
      { fieldSelector: `involvedObject.uid=${obj.metadata?.uid ?? ''}` },
    )
    .catch((err: unknown) => {
      // Cluster-scoped objects' events live in "default"; a namespace allow-list may refuse them.
      if (!ns) return { items: [] };
      throw err;
    });
  return eventTable(list.items, false, max);
}

/** Renders events as LAST SEEN / TYPE / REASON / OBJECT / MESSAGE rows, sorted by time, last `max`. */
export function eventTable(items: Event[], withNamespace: boolean, max: number): TextTable {
  const when = (e: Event) => e.lastTimestamp || e.eventTime || e.firstTimestamp || e.metadata?.creationTimestamp;
  const sorted = [...items].sort((a, b) => String(when(a)).localeCompare(String(when(b)))).slice(-max);
  return {
    columns: [...(withNamespace ? ['NAMESPACE'] : []), 'LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'COUNT', 'MESSAGE'],
    rows: sorted.map((e) => [
      ...(withNamespace ? [e.metadata?.namespace ?? ''] : []),
      age(when(e)),
      e.type ?? '',
      e.reason ?? '',
      `${String(e.involvedObject?.kind ?? '').toLowerCase()}/${e.involvedObject?.name ?? ''}`,
      String(e.count ?? e.series?.count ?? 1),
      String(e.message ?? '')
        .replace(/\s+/g, ' ')
        .trim(),
    ]),
  };
}

const WORKLOADS = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'MCPServer',
  'Service',
  'ReplicationController',
]);

/** Builds the describe text and structure of one object: object, conditions, owner chain, pods, events. */
async function describe(ctx: ToolContext, api: ApiResource, obj: Workload, context?: string) {
  const sections: string[] = [];
  const owners = await ownerChain(ctx, obj, context);
  const conditions = (obj.status?.conditions ?? []).map((c: Condition) => ({
    type: c.type,
    status: c.status,
    reason: c.reason ?? '',
    message: c.message ?? '',
  }));
  let pods: TextTable | undefined;
  if (WORKLOADS.has(api.kind)) {
    try {
      const podApi = await ctx.kube.resolve('pods', 'v1', context);
      const t = await ctx.kube.table(
        { context, api: podApi, namespace: obj.metadata?.namespace },
        { labelSelector: selectorOf(obj), limit: 50 },
      );
      pods = fromApiTable(t, false);
    } catch (err) {
      sections.push(`Pods: <unavailable: ${(err as Error).message}>`);
    }
  }
  const events = await eventsFor(ctx, obj, context).catch(() => ({ columns: [], rows: [] }) as TextTable);
  if (owners.length) sections.push(`Owner chain: ${owners.map((o) => `${o.kind}/${o.name}`).join(' <- ')}`);
  if (conditions.length)
    sections.push(
      'Conditions:\n' +
        renderTable({
          columns: ['TYPE', 'STATUS', 'REASON', 'MESSAGE'],
          rows: conditions.map((c) => [c.type, c.status, c.reason, c.message]),
        }),
    );
  if (pods) sections.push(`Pods (${pods.rows.length}):\n` + (renderTable(pods) || '<none>'));
  const ev = renderTable(events);
  sections.push(
    'Events:\n' + (ev ? fence(ev, `events of ${api.kind.toLowerCase()} ${obj.metadata?.name ?? ''}`).text : '<none>'),
  );
  return { sections, owners, conditions, pods, events };
}

/** The generic tools. */
export function genericTools(): AnyToolDef[] {
  return [
    defineTool({
      name: 'list-resources',
      title: 'List resources',
      description:
        'List objects of any kind (CRDs included) as a compact table, like `kubectl get`, with selectors and pagination.',
      effect: 'read',
      input: {
        kind: kindArg,
        apiVersion: apiVersionArg,
        namespace: nsArg,
        allNamespaces: z.boolean().optional().describe('list across all (allowed) namespaces'),
        labelSelector: z.string().optional().describe('e.g. app=web,tier!=db'),
        fieldSelector: z.string().optional().describe('e.g. status.phase=Running'),
        limit: z
          .number()
          .int()
          .min(1)
          .max(5000)
          .optional()
          .describe('page size; pass the returned continue token for the next page'),
        continue: z.string().optional(),
        context: contextArg,
      },
      output: tableOutput,
      run: async (a, ctx) => {
        const api = await resolveKind(ctx, a.kind, a.apiVersion, a.context);
        if (!api.verbs.includes('list')) throw new InvalidArgumentError('kind', `${api.resource} cannot be listed`);
        const r = await listTable(ctx, api, a);
        return tableResult(ctx, api.kind, r.table, r);
      },
    }),
    defineTool({
      name: 'get-resource',
      title: 'Get a resource',
      description:
        'Get one object of any kind as YAML (managedFields and the last-applied annotation removed; Secret values masked), fenced as cluster data.',
      effect: 'read',
      input: {
        kind: kindArg,
        name: nameArg.optional(),
        namespace: nsArg,
        apiVersion: apiVersionArg,
        context: contextArg,
      },
      output: objectOutput,
      run: async (a, ctx) => {
        const { api, name } = await resolveNamed(ctx, a);
        const ns = nsFor(ctx, api, a.namespace, a.context);
        return objectResult(
          ctx,
          await ctx.kube.get({ context: a.context, api, namespace: ns, name }),
          '',
          `${api.kind.toLowerCase()} ${ns ? `${ns}/` : ''}${name}`,
        );
      },
    }),
    defineTool({
      name: 'describe-resource',
      title: 'Describe a resource',
      description:
        'One object (compact YAML) with its conditions, owner chain, pods (of a workload or Service) and recent events, in one call; object and events fenced as cluster data.',
      effect: 'read',
      input: {
        kind: kindArg,
        name: nameArg.optional(),
        namespace: nsArg,
        apiVersion: apiVersionArg,
        context: contextArg,
      },
      output: {
        kind: z.string(),
        name: z.string(),
        namespace: z.string().optional(),
        truncated: z.boolean(),
        owners: z.array(z.object({ kind: z.string(), name: z.string() })),
        conditions: z.array(
          z.object({ type: z.string(), status: z.string(), reason: z.string(), message: z.string() }),
        ),
        pods: z.array(z.array(z.string())).optional(),
        events: z.array(z.array(z.string())),
      },
      run: async (a, ctx) => {
        const { api, name } = await resolveNamed(ctx, a);
        const obj = await ctx.kube.get<Workload>({
          context: a.context,
          api,
          namespace: nsFor(ctx, api, a.namespace, a.context),
          name,
        });
        const d = await describe(ctx, api, obj, a.context);
        const c = compact(obj);
        const tail = '\n' + d.sections.join('\n\n');
        // The sections are kept whole; the object YAML gives way first.
        const room = Math.max(2000, ctx.budget - tail.length - FENCE_OVERHEAD);
        const y = budgetText(toYaml(c), room);
        const source = `${api.kind.toLowerCase()} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''}${name}`;
        let text =
          fence(y.text, source).text +
          (y.cut ? truncatedNote('object YAML cut', 'get-resource for the full object') : '') +
          tail;
        const all = budgetText(text, ctx.budget);
        if (all.cut) text = all.text + truncatedNote('describe output cut', 'list-events or get-pod-logs for details');
        return {
          text,
          structured: {
            kind: api.kind,
            name,
            ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
            truncated: y.cut || all.cut,
            owners: d.owners,
            conditions: d.conditions,
            ...(d.pods ? { pods: d.pods.rows } : {}),
            events: d.events.rows,
          },
        };
      },
    }),
    defineTool({
      name: 'apply-manifest',
      title: 'Apply a manifest',
      description:
        'Server-side apply one or more YAML/JSON documents (field manager "' +
        FIELD_MANAGER +
        '"), like `kubectl apply --server-side`. Returns what the apiserver stored (Secret values masked).',
      effect: 'write',
      idempotent: true,
      input: {
        manifest: z.string().min(1).describe('YAML (multi-document allowed) or JSON'),
        namespace: z.string().optional().describe('namespace for namespaced objects that name none'),
        dryRun: z.boolean().optional().describe('server-side dry run: validate without persisting'),
        preview: previewArg,
        force: z
          .boolean()
          .optional()
          .describe('take ownership of fields other managers own (default false: conflicts are reported)'),
        context: contextArg,
      },
      output: {
        dryRun: z.boolean(),
        results: z.array(
          z.object({
            kind: z.string(),
            name: z.string(),
            namespace: z.string().optional(),
            resourceVersion: z.string().optional(),
          }),
        ),
        truncated: z.boolean(),
        diff: diffOutput,
      },
      run: async (a, ctx) => {
        let docs: unknown[];
        try {
          const parsed = parseAllDocuments(a.manifest);
          for (const d of parsed) if (d.errors.length) throw new Error(d.errors[0]!.message);
          docs = parsed.map((d) => d.toJSON() as unknown).filter((d) => d !== null && d !== undefined);
        } catch (err) {
          throw new InvalidArgumentError('manifest', `not valid YAML: ${(err as Error).message}`);
        }
        if (docs.length === 0) throw new InvalidArgumentError('manifest', 'has no documents');
        if (docs.length > 50)
          throw new InvalidArgumentError('manifest', `has ${docs.length} documents; at most 50 per call`);
        const results: Array<{ kind: string; name: string; namespace?: string; resourceVersion?: string }> = [];
        const texts: string[] = [];
        const previews: PreviewEntry[] = [];
        for (const [i, doc] of docs.entries()) {
          if (!isObject(doc)) throw new InvalidArgumentError('manifest', `document ${i + 1} is not an object`);
          const { apiVersion, kind, metadata } = doc;
          if (typeof apiVersion !== 'string' || !apiVersion || typeof kind !== 'string' || !kind || !metadata?.name) {
            throw new InvalidArgumentError('manifest', `document ${i + 1} needs apiVersion, kind and metadata.name`);
          }
          const api = await resolveKind(ctx, kind, apiVersion, a.context, 'manifest');
          const namespace = api.namespaced
            ? metadata.namespace || a.namespace || ctx.kube.defaultNamespace(a.context)
            : undefined;
          const body = api.namespaced ? { ...doc, metadata: { ...metadata, namespace } } : doc;
          const ref = { context: a.context, api, namespace, name: metadata.name };
          // A preview reads the live object first (none: a create, diffed against nothing).
          const live = a.preview ? await getOrNone(ctx, ref) : undefined;
          const out = await ctx.kube.apply(ref, body, { force: a.force, dryRun: a.dryRun || a.preview });
          if (a.preview)
            previews.push({ api, label: labelOf(api, namespace, metadata.name), live, stored: out, body: doc });
          results.push({
            kind: api.kind,
            name: out.metadata?.name ?? metadata.name,
            ...(namespace ? { namespace } : {}),
            resourceVersion: out.metadata?.resourceVersion,
          });
          texts.push(
            `${api.kind.toLowerCase()}/${out.metadata?.name}${namespace ? ` (namespace ${namespace})` : ''} ${a.dryRun ? 'applied (server dry run)' : 'applied'}\n` +
              toYaml(compact(out)),
          );
        }
        const target = results
          .map((r) => `${r.kind.toLowerCase()}/${r.namespace ? r.namespace + '/' : ''}${r.name}`)
          .join(',');
        if (a.preview) {
          const p = previewResult(ctx, previews);
          return { text: p.text, structured: { dryRun: true, results, truncated: p.truncated, diff: p.diff }, target };
        }
        const { text, cut } = budgetText(texts.join('---\n'), ctx.budget);
        return {
          text: cut ? text + truncatedNote('applied objects shown partly', 'get-resource on one object') : text,
          structured: { dryRun: !!a.dryRun, results, truncated: cut },
          target,
        };
      },
    }),
    defineTool({
      name: 'patch-resource',
      title: 'Patch a resource',
      description:
        'Patch one object: type "merge" (JSON merge patch, default), "json" (RFC 6902 JSON patch) or "strategic" (built-in kinds only). dryRun validates without persisting.',
      effect: 'write',
      input: {
        kind: kindArg,
        name: nameArg.optional(),
        namespace: nsArg,
        apiVersion: apiVersionArg,
        patch: z
          .union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())])
          .describe('the patch, as JSON text or an object/array'),
        type: z.enum(['merge', 'json', 'strategic']).optional(),
        subresource: z.enum(['status', 'scale']).optional(),
        dryRun: z.boolean().optional(),
        preview: previewArg,
        context: contextArg,
      },
      output: { ...objectOutput, diff: diffOutput },
      run: async (a, ctx) => {
        const { api, name } = await resolveNamed(ctx, a);
        const patch = parseDoc(a.patch, 'patch');
        const namespace = nsFor(ctx, api, a.namespace, a.context);
        const ref = { context: a.context, api, namespace, name, subresource: a.subresource };
        const live = a.preview ? await ctx.kube.get(ref) : undefined;
        const out = await ctx.kube.patch(ref, a.type ?? 'merge', patch, { dryRun: a.dryRun || a.preview });
        if (a.preview) {
          const label = labelOf(api, namespace, name) + (a.subresource ? `/${a.subresource}` : '');
          const p = previewResult(ctx, [{ api, label, live, stored: out, body: patch }]);
          return {
            text: p.text,
            structured: {
              kind: api.kind,
              name,
              ...(namespace ? { namespace } : {}),
              truncated: p.truncated,
              diff: p.diff,
            },
            target: `${api.kind.toLowerCase()}/${namespace ? namespace + '/' : ''}${name}`,
          };
        }
        return objectResult(ctx, out, a.dryRun ? '# server dry run: not persisted\n' : '');
      },
    }),
    defineTool({
      name: 'delete-resource',
      title: 'Delete a resource',
      description:
        'Delete one object of any kind. propagationPolicy defaults to Background; dryRun checks without deleting.',
      effect: 'delete',
      input: {
        kind: kindArg,
        name: nameArg.optional(),
        namespace: nsArg,
        apiVersion: apiVersionArg,
        propagationPolicy: z.enum(['Background', 'Foreground', 'Orphan']).optional(),
        gracePeriodSeconds: z.number().int().min(0).optional(),
        dryRun: z.boolean().optional(),
        preview: previewArg,
        context: contextArg,
      },
      output: deleteOutput,
      run: async (a, ctx) => {
        const { api, name } = await resolveNamed(ctx, a);
        const namespace = nsFor(ctx, api, a.namespace, a.context);
        return deleteObject(ctx, api, name, namespace, a);
      },
    }),
  ];
}

/** Whether a parsed manifest document is an object (with the metadata fields read here). */
function isObject(v: unknown): v is KubernetesObject & { metadata?: { name?: string; namespace?: string } } {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** The `kind/namespace/name` label of an object in a preview. */
function labelOf(api: ApiResource, namespace: string | undefined, name: string): string {
  return `${api.kind.toLowerCase()}/${namespace ? namespace + '/' : ''}${name}`;
}

/**
 * Reads an object, or undefined when it does not exist (404).
 * @throws KubeError other than 404, PolicyError, InvalidArgumentError.
 */
async function getOrNone(
  ctx: ToolContext,
  ref: { context?: string; api: ApiResource; namespace?: string; name: string },
): Promise<KubernetesObject | undefined> {
  try {
    return await ctx.kube.get(ref);
  } catch (err) {
    if (err instanceof KubeError && err.code === 404) return undefined;
    throw err;
  }
}

/** Output schema of the delete tools (delete-resource, delete-pod, delete-mcpserver). */
export const deleteOutput = {
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
  status: z.enum(['deleted', 'deleting', 'dry-run', 'preview', 'declined', 'cancelled']),
  /** What goes (preview, declined): `kind/name` of the object, then of its dependents. */
  items: z.array(z.string()).optional(),
};

/** Longest confirmation message, in characters. */
const CONFIRM_MAX = 4000;

/**
 * Deletes one object and reports whether it is gone or still finalizing. Shared by delete-* tools.
 * With `preview`, deletes nothing and lists what would go (preview.ts planDelete). Otherwise,
 * unless `dryRun`, the user is asked first when the client supports elicitation
 * (ToolContext.confirm) with that list; a declined or cancelled confirmation deletes nothing and
 * says so (a result, not an error: the call did what the user chose). Clients without
 * elicitation: deleted at once, as before.
 * @throws KubeError (404 NotFound, 403, ...), PolicyError, InvalidArgumentError.
 */
export async function deleteObject(
  ctx: ToolContext,
  api: ApiResource,
  name: string,
  namespace: string | undefined,
  a: DeleteOptions & { context?: string; preview?: boolean },
): Promise<ToolOutput> {
  const where = namespace ? ` from namespace ${namespace}` : '';
  const base = { kind: api.kind, name, ...(namespace ? { namespace } : {}) };
  const target = `${api.resource}/${namespace ? namespace + '/' : ''}${name}`;
  const opts: DeleteOptions & { context?: string } = {
    context: a.context,
    propagationPolicy: a.propagationPolicy,
    gracePeriodSeconds: a.gracePeriodSeconds,
    dryRun: a.dryRun,
  };
  if (a.preview) {
    const plan = await planDelete(ctx, api, name, namespace, opts);
    return {
      text: `Preview (nothing was deleted). ${planText(plan, where)}`,
      structured: { ...base, status: 'preview', items: plan.items },
      target,
    };
  }
  if (!a.dryRun && ctx.confirm) {
    let plan: DeletePlan | undefined;
    const answer = await ctx.confirm(async () => {
      plan = await planDelete(ctx, api, name, namespace, opts);
      return budgetText(`Delete ${api.kind.toLowerCase()}/${name}${where}? ${planText(plan, where)}`, CONFIRM_MAX).text;
    });
    if (answer === 'decline' || answer === 'cancel') {
      const status = answer === 'decline' ? 'declined' : 'cancelled';
      return {
        text: `not deleted: the user ${status} the confirmation; nothing was changed (${api.kind.toLowerCase()}/${name}${where ? ` in namespace ${namespace}` : ''}).`,
        structured: { ...base, status, ...(plan ? { items: plan.items } : {}) },
        target,
      };
    }
  }
  const out = await ctx.kube.delete({ context: a.context, api, namespace, name }, opts);
  const status = a.dryRun
    ? 'dry-run'
    : out.kind === 'Status' || !out.metadata?.deletionTimestamp
      ? 'deleted'
      : 'deleting';
  const verb =
    status === 'dry-run'
      ? 'would be deleted (server dry run)'
      : status === 'deleting'
        ? 'is being deleted (finalizers or graceful termination pending)'
        : 'deleted';
  return { text: `${api.kind.toLowerCase()}/${name}${where} ${verb}`, structured: { ...base, status }, target };
}
