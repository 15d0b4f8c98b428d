/**
 * Previews of writes (issue 19, "Previews of writes"): the write is sent as a server-side dry run
 * (`dryRun=All`: admission and validation run, nothing is persisted; Kubernetes API concepts,
 * "Dry-run"), and the answer is a unified diff (jsdiff's createTwoFilesPatch, as `diff -u`) of
 * the live object against what the apiserver would store, both as YAML without
 * `metadata.managedFields`, `resourceVersion`, `generation` and the last-applied annotation, as
 * `kubectl diff` shows them (k8s.io/kubectl/pkg/cmd/diff: it drops managedFields too). A create
 * diffs against nothing. A delete preview lists what would go: the object, the dry run's
 * answer, and its dependents (objects whose ownerReferences lead to it, which the garbage
 * collector deletes unless propagation is Orphan; https://kubernetes.io/docs/concepts/architecture/garbage-collection/).
 *
 * Secret values: both sides come through the gateway (kube.ts), which masks every `data` and
 * `stringData` value as `***` and every copy of one; they are masked again here before diffing,
 * so no side can show a value. A change of a value alone then shows no line: the preview says so
 * and names the keys the request writes (never their values).
 */
import { z } from 'zod';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { KubeError, type ApiResource, type DeleteOptions, type KubernetesObject, type ObjectMeta } from '../kube.js';
import { LAST_APPLIED, PolicyError } from '../policy.js';
import { budgetText, toYaml, truncatedNote } from '../format.js';
import { fence } from '../fence.js';
import { GROUP, PLURAL } from '../../charts/api/constants.js';
import type { ToolContext } from './registry.js';

/** The one `preview` argument of every write tool that has a preview. */
export const previewArg = z.boolean().optional().describe('dry run; show what would change');

/** Output field of a preview: the unified diff, raw (the text answer fences it). */
export const diffOutput = z.string().optional();

/** The metadata fields of a deletion (meta/v1 ObjectMeta). */
type DeletionMeta = ObjectMeta & { finalizers?: string[]; deletionGracePeriodSeconds?: number };

/** Whether a resolved resource is core/v1 Secrets. */
function isSecrets(api: Pick<ApiResource, 'group' | 'resource'>): boolean {
  return api.group === '' && api.resource === 'secrets';
}

/**
 * A copy of `obj` as a preview shows it: Secret values masked (the policy's masking, again),
 * without managedFields, resourceVersion, generation and the last-applied annotation (an empty
 * annotations map left behind goes too).
 */
export function forDiff(ctx: ToolContext, api: ApiResource, obj: KubernetesObject): KubernetesObject {
  const o = { ...(ctx.policy.sanitize(obj, isSecrets(api)) as KubernetesObject & Record<string, unknown>) };
  if (o.metadata && typeof o.metadata === 'object') {
    const { managedFields: _m, resourceVersion: _r, generation: _g, ...meta } = o.metadata as Record<string, unknown>;
    const ann = meta.annotations as Record<string, string> | undefined;
    if (ann && LAST_APPLIED in ann) {
      const { [LAST_APPLIED]: _l, ...rest } = ann;
      if (Object.keys(rest).length) meta.annotations = rest;
      else delete meta.annotations;
    }
    o.metadata = meta;
  }
  return o;
}

/** One object of a preview: its label (`kind/namespace/name`), the live object (absent: a create), what would be stored. */
export interface PreviewEntry {
  api: ApiResource;
  label: string;
  live?: KubernetesObject;
  stored: KubernetesObject;
  /** The request body (manifest document, patch), to name the Secret keys it writes. */
  body?: unknown;
}

/**
 * The unified diff of one entry (3 lines of context, `live/<label>` or `/dev/null` against
 * `dry-run/<label>`), '' when nothing would change.
 */
export function diffEntry(ctx: ToolContext, e: PreviewEntry): string {
  const before = e.live ? toYaml(forDiff(ctx, e.api, e.live)) : '';
  const after = toYaml(forDiff(ctx, e.api, e.stored));
  if (before === after) return '';
  return createTwoFilesPatch(
    e.live ? `live/${e.label}` : '/dev/null',
    `dry-run/${e.label}`,
    before,
    after,
    undefined,
    undefined,
    {
      context: 3,
      headerOptions: FILE_HEADERS_ONLY,
    },
  );
}

/**
 * The `data`/`stringData` keys a request body writes: the keys of a manifest or merge/strategic
 * patch, the paths of a JSON patch's operations under /data or /stringData (`data.*` for the
 * whole map).
 */
export function secretKeysWritten(body: unknown): string[] {
  const out = new Set<string>();
  if (Array.isArray(body)) {
    for (const op of body) {
      const p = (op as { path?: unknown } | null)?.path;
      const m = typeof p === 'string' ? /^\/(data|stringData)(?:\/(.*))?$/.exec(p) : null;
      if (m) out.add(`${m[1]}.${m[2] ? m[2].replace(/~1/g, '/').replace(/~0/g, '~') : '*'}`);
    }
  } else if (body && typeof body === 'object') {
    for (const field of ['data', 'stringData']) {
      const m = (body as Record<string, unknown>)[field];
      if (m && typeof m === 'object') for (const k of Object.keys(m)) out.add(`${field}.${k}`);
    }
  }
  return [...out];
}

/** A preview's answer: the text (diffs fenced, under the budget) and the raw diff for structuredContent. */
export interface PreviewResult {
  text: string;
  diff: string;
  changed: boolean;
  truncated: boolean;
}

/**
 * Renders the diffs of `entries` (one per object) under the budget: a headline, the diffs inside
 * a fence (the live side holds cluster text: annotations, ConfigMap data), and for Secrets the
 * note on masked values with the keys the request writes.
 */
export function previewResult(ctx: ToolContext, entries: PreviewEntry[]): PreviewResult {
  const notes: string[] = [];
  const diffs: string[] = [];
  for (const e of entries) {
    const d = diffEntry(ctx, e);
    diffs.push(d);
    notes.push(`${e.label}: ${!e.live ? 'would be created' : d ? 'would change' : 'no change'}`);
    if (isSecrets(e.api) && !ctx.policy.showSecrets) {
      const keys = secretKeysWritten(e.body);
      const writes = keys.length ? `; the request writes ${keys.join(', ')}` : '';
      notes.push(
        e.live
          ? `  Secret values are masked (***) on both sides: a changed value alone shows no line${writes}.`
          : `  Secret values are masked (***)${writes}.`,
      );
    }
  }
  const diff = diffs.filter(Boolean).join('');
  const changed = diff.length > 0;
  const head = `Preview (server dry run; nothing was changed):\n${notes.join('\n')}\n`;
  if (!changed) return { text: head, diff, changed, truncated: false };
  const room = Math.max(500, ctx.budget - head.length - 300);
  const cut = budgetText(diff, room);
  const text =
    head +
    fence(cut.text.replace(/\n$/, ''), 'preview diff').text +
    (cut.cut ? truncatedNote('diff cut', 'a narrower patch, or get-resource for the whole object') : '');
  return { text, diff: cut.text, changed, truncated: cut.cut };
}

/** The kinds searched for dependents (objects a garbage collector deletes with their owner), in this order. */
const DEPENDENT_KINDS = [
  'deployments.apps',
  'replicasets.apps',
  'statefulsets.apps',
  'daemonsets.apps',
  'controllerrevisions.apps',
  'cronjobs.batch',
  'jobs.batch',
  'pods',
  'services',
  'endpointslices.discovery.k8s.io',
  'configmaps',
  'secrets',
  'serviceaccounts',
  'persistentvolumeclaims',
  'poddisruptionbudgets.policy',
  'horizontalpodautoscalers.autoscaling',
  'roles.rbac.authorization.k8s.io',
  'rolebindings.rbac.authorization.k8s.io',
  'networkpolicies.networking.k8s.io',
  'ingresses.networking.k8s.io',
  `${PLURAL}.${GROUP}`,
];

/** Most objects of one kind read when searching dependents. */
const LIST_LIMIT = 1000;

/** Most dependents listed. */
const MAX_DEPENDENTS = 200;

/** Metadata-only list answers (Kubernetes API concepts, "Receiving resources as metadata only"). */
const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json';

/** What a delete would remove. */
export interface DeletePlan {
  /** `kind/name` of the object, then of each dependent (depth first, owners before what they own). */
  items: string[];
  /** One text line per item, indented by ownership depth. */
  lines: string[];
  /** What the apiserver's dry run said (gone at once, or marked for deletion pending finalizers or grace). */
  dryRun: string;
  /** Kinds that could not be searched, with why. */
  unchecked: string[];
  /** Dependents were cut at MAX_DEPENDENTS. */
  cut: boolean;
}

/**
 * Works out what deleting `name` would remove, changing nothing: reads the object, sends the
 * delete as a dry run (so a refusal, a NotFound or a Forbidden shows now), and lists the
 * dependents in its namespace by ownerReferences (for a Namespace: everything in it of the
 * searched kinds), unless `propagationPolicy` is Orphan. Cluster-scoped owners other than
 * Namespaces are listed alone (a note says so).
 * @throws KubeError / PolicyError of the read or the dry run (nothing is deleted).
 */
export async function planDelete(
  ctx: ToolContext,
  api: ApiResource,
  name: string,
  namespace: string | undefined,
  a: DeleteOptions & { context?: string },
): Promise<DeletePlan> {
  const ref = { context: a.context, api, namespace, name };
  const live = await ctx.kube.get(ref);
  const dry = await ctx.kube.delete(ref, { ...a, dryRun: true });
  const kindOf = (k: string | undefined) => String(k ?? '').toLowerCase();
  const self = `${kindOf(api.kind)}/${name}`;
  const plan: DeletePlan = { items: [self], lines: [self], dryRun: dryRunText(dry), unchecked: [], cut: false };
  const fin = (live.metadata as DeletionMeta | undefined)?.finalizers ?? [];
  if (fin.length) plan.lines[0] += `  (finalizers: ${fin.join(', ')})`;
  if (a.propagationPolicy === 'Orphan') {
    plan.lines.push('  dependents are orphaned (propagationPolicy Orphan), not deleted');
    return plan;
  }
  const isNamespace = api.group === '' && api.resource === 'namespaces';
  if (!api.namespaced && !isNamespace) {
    plan.unchecked.push('dependents of a cluster-scoped object');
    return plan;
  }
  const inNs = isNamespace ? name : namespace;
  const found: Array<{ item: string; uid: string; owners: string[]; rank: number }> = [];
  await Promise.all(
    DEPENDENT_KINDS.map(async (k, rank) => {
      let dapi: ApiResource;
      try {
        dapi = await ctx.kube.resolve(k, undefined, a.context);
      } catch {
        return; // not served by this cluster
      }
      if (!dapi.namespaced || !dapi.verbs.includes('list')) return;
      try {
        const list = await ctx.kube.request<{ items?: KubernetesObject[]; metadata?: { continue?: string } }>({
          context: a.context,
          api: dapi,
          namespace: inNs,
          accept: METADATA_ACCEPT,
          query: { limit: LIST_LIMIT },
        });
        if (list.metadata?.continue) plan.unchecked.push(`${dapi.resource} past the first ${LIST_LIMIT}`);
        for (const o of list.items ?? [])
          found.push({
            item: `${kindOf(dapi.kind)}/${o.metadata?.name ?? ''}`,
            uid: o.metadata?.uid ?? '',
            owners: (o.metadata?.ownerReferences ?? []).map((r) => r.uid),
            rank,
          });
      } catch (err) {
        if (err instanceof PolicyError) plan.unchecked.push(`${dapi.resource} (refused by policy)`);
        else if (err instanceof KubeError) plan.unchecked.push(`${dapi.resource} (${err.reason})`);
        else throw err;
      }
    }),
  );
  found.sort((x, y) => x.rank - y.rank || x.item.localeCompare(y.item));
  const add = (item: string, depth: number) => {
    if (plan.items.length > MAX_DEPENDENTS) {
      plan.cut = true;
      return false;
    }
    plan.items.push(item);
    plan.lines.push(`${'  '.repeat(depth)}${item}`);
    return true;
  };
  if (isNamespace) {
    plan.unchecked.push(`objects of other kinds in namespace ${name} (they go too)`);
    for (const f of found) if (!add(f.item, 1)) break;
    return plan;
  }
  // Depth first from the object through ownerReferences; each dependent once (an object with two owners is listed under the first).
  const seen = new Set<string>([live.metadata?.uid ?? '']);
  const walk = (uid: string, depth: number): boolean => {
    for (const f of found) {
      if (seen.has(f.uid) || !f.owners.includes(uid)) continue;
      seen.add(f.uid);
      if (!add(f.item, depth) || !walk(f.uid, depth + 1)) return false;
    }
    return true;
  };
  if (live.metadata?.uid) walk(live.metadata.uid, 1);
  return plan;
}

/** What a delete's dry-run answer says: a Status (gone at once), or the object marked for deletion. */
function dryRunText(out: KubernetesObject): string {
  if (out.kind === 'Status' || !out.metadata?.deletionTimestamp) return 'the apiserver accepts the delete (dry run)';
  const meta: DeletionMeta = out.metadata;
  const fin = meta.finalizers ?? [];
  const grace = meta.deletionGracePeriodSeconds;
  const why = [
    fin.length ? `finalizers ${fin.join(', ')} finish` : '',
    grace ? `graceful termination (${grace} s) ends` : '',
  ].filter(Boolean);
  return `the apiserver accepts the delete (dry run); the object stays${why.length ? ` until ${why.join(' and ')}` : ' while it terminates'}`;
}

/** The plan as text: the headline, the items by ownership, what was not searched. */
export function planText(plan: DeletePlan, where: string): string {
  return (
    `Would delete ${plan.items.length} object(s)${where}: ${plan.dryRun}.\n` +
    plan.lines.join('\n') +
    (plan.cut ? `\n[truncated: more than ${MAX_DEPENDENTS} dependents]` : '') +
    (plan.unchecked.length ? `\nNot searched: ${plan.unchecked.join('; ')}` : '')
  );
}
