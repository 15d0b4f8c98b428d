/**
 * Helm releases read from Helm's own storage (Secrets of type helm.sh/release.v1), no helm binary (issue 19):
 * list-helm-releases (`helm list`) and get-helm-release (`helm status`, `helm get values|manifest|notes`,
 * `helm history`). Listing reads the storage Secrets' metadata only (labels name/version/status) and
 * decodes the latest revision of each release; every read of release data goes through
 * `KubeGateway.helmRelease` (kube.ts), which checks the policy, accepts only Secrets of Helm's type
 * and masks the Secrets a release holds (helm-storage.ts).
 */
import { z } from 'zod';
import { errorText, type KubernetesObject } from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import { PolicyError } from '../policy.js';
import { budgetTable, budgetText, toYaml, truncatedNote, type TextTable } from '../format.js';
import { fence } from '../fence.js';
import { coalesceValues, validReleaseName, type HelmRelease } from '../helm-storage.js';
import { contextArg, defineTool, type AnyToolDef, type ToolContext, type ToolOutput } from './registry.js';
import { tableOutput, tableResult } from './common.js';

/** Most storage Secrets' metadata read per namespace by one call (pages of {@link PAGE}). */
const MAX_INDEX = 5000;
const PAGE = 500;
/** Most releases one list decodes (one GET each); the rest are left out and flagged. */
const MAX_DECODED = 100;
/** Most revisions one history decodes, the newest (`helm history --max` defaults to 256). */
const MAX_HISTORY = 64;
/** Release GETs in flight at once. */
const CONCURRENCY = 8;

/** One revision as its storage Secret's metadata tells it. */
interface Revision {
  namespace: string;
  release: string;
  revision: number;
  status: string;
  /** The storage Secret's name. */
  secret: string;
}

/**
 * The revisions in Helm's storage of a namespace (all namespaces when undefined), optionally of
 * one release, from the Secrets' labels (`name`, `version`, `status`), sorted by release, then
 * revision. `cut` says more than {@link MAX_INDEX} Secrets exist.
 * @throws what KubeGateway.helmReleaseIndex throws (PolicyError, KubeError, InvalidArgumentError).
 */
async function index(
  ctx: ToolContext,
  context: string | undefined,
  namespace: string | undefined,
  release?: string,
): Promise<{ revisions: Revision[]; cut: boolean }> {
  const items: KubernetesObject[] = [];
  let cont: string | undefined;
  do {
    const page = await ctx.kube.helmReleaseIndex(
      { context, namespace },
      { release, limit: Math.min(PAGE, MAX_INDEX - items.length), continue: cont },
    );
    items.push(...page.items);
    cont = page.metadata?.continue || undefined;
  } while (cont && items.length < MAX_INDEX);
  const revisions: Revision[] = [];
  for (const i of items) {
    const l = i.metadata?.labels ?? {};
    const revision = Number(l.version);
    if (!l.name || !Number.isInteger(revision) || revision < 1 || !i.metadata?.name) continue;
    if (release !== undefined && l.name !== release) continue;
    revisions.push({
      namespace: i.metadata.namespace ?? namespace ?? '',
      release: l.name,
      revision,
      status: l.status ?? '',
      secret: i.metadata.name,
    });
  }
  revisions.sort(
    (a, b) => a.release.localeCompare(b.release) || a.namespace.localeCompare(b.namespace) || a.revision - b.revision,
  );
  return { revisions, cut: !!cont };
}

/** `fn` over `items`, at most `n` at a time, results in order. */
async function mapLimit<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** A release's decoded revision, or the reason it could not be read (PolicyError is rethrown: the call is refused). */
async function read(ctx: ToolContext, context: string | undefined, r: Revision): Promise<HelmRelease | string> {
  try {
    return await ctx.kube.helmRelease({ context, namespace: r.namespace, name: r.secret });
  } catch (err) {
    if (err instanceof PolicyError) throw err;
    return errorText(err);
  }
}

const when = (t: string) => t.replace(/\.\d+(?=Z|[+-]\d\d:\d\d$)/, '');
const chartOf = (rel: HelmRelease) => (rel.chart.name ? `${rel.chart.name}-${rel.chart.version}` : '');

/**
 * Fences `body` (untrusted release text) from `source` within `room` characters: the body is cut
 * until the fenced block fits (flag prefixes included). Returns the block, the body kept, whether it was cut.
 */
function fencedWithin(body: string, source: string, room: number): { text: string; kept: string; cut: boolean } {
  let n = room - fence('', source).text.length;
  for (let i = 0; ; i++) {
    const b = budgetText(body, Math.max(0, n));
    const f = fence(b.text, source).text;
    if (f.length <= room || n <= 0 || i >= 5) return { text: f, kept: b.text, cut: b.cut };
    n -= f.length - room;
  }
}

const SHOWS = ['status', 'values', 'manifest', 'history', 'notes'] as const;

/** Output of get-helm-release: the revision shown, and what `show` asked for. */
const releaseOutput = {
  name: z.string(),
  namespace: z.string(),
  revision: z.number().int(),
  status: z.string(),
  chart: z.string(),
  appVersion: z.string(),
  updated: z.string(),
  show: z.string(),
  description: z.string().optional(),
  values: z.record(z.string(), z.unknown()).optional(),
  text: z.string().optional().describe('manifest or notes'),
  rows: z.array(z.array(z.string())).optional().describe('history, oldest first'),
  truncated: z.boolean(),
};

const HISTORY_COLUMNS = ['REVISION', 'UPDATED', 'STATUS', 'CHART', 'APP VERSION', 'DESCRIPTION'];

/** Where Helm keeps releases: hidden when Secrets are a denied kind (registry.ts needsKinds). */
const HELM_STORAGE_KIND = { group: '', resource: 'secrets', kind: 'Secret' };

/** The tools of this module, in listing order. */
export function helmTools(): AnyToolDef[] {
  return [
    defineTool({
      name: 'list-helm-releases',
      title: 'List Helm releases',
      description:
        "List Helm releases (latest revision of each, like `helm list`) from Helm's storage Secrets, no helm binary.",
      effect: 'read',
      needsKinds: [HELM_STORAGE_KIND],
      input: {
        namespace: z.string().optional().describe("default: the context's namespace"),
        allNamespaces: z.boolean().optional().describe('all (allowed) namespaces'),
        context: contextArg,
      },
      output: tableOutput,
      run: async (a, ctx) => {
        const allowed = ctx.policy.allowedNamespaces;
        const namespaces: Array<string | undefined> = a.allNamespaces
          ? allowed.length
            ? allowed
            : [undefined]
          : [a.namespace || ctx.kube.defaultNamespace(a.context)];
        const latest = new Map<string, Revision>();
        let cut = false;
        for (const ns of namespaces) {
          const r = await index(ctx, a.context, ns);
          cut ||= r.cut;
          for (const rev of r.revisions) {
            const key = `${rev.namespace}/${rev.release}`;
            if ((latest.get(key)?.revision ?? 0) < rev.revision) latest.set(key, rev);
          }
        }
        const all = [...latest.values()].sort(
          (x, y) => x.release.localeCompare(y.release) || x.namespace.localeCompare(y.namespace),
        );
        const decoded = all.slice(0, MAX_DECODED);
        const rows = await mapLimit(decoded, CONCURRENCY, async (r) => {
          const rel = await read(ctx, a.context, r);
          if (typeof rel === 'string')
            return [r.release, r.namespace, String(r.revision), '', r.status, `<unreadable: ${rel}>`, ''];
          return [
            r.release,
            r.namespace,
            String(r.revision),
            when(rel.lastDeployed),
            rel.status || r.status,
            chartOf(rel),
            rel.chart.appVersion,
          ];
        });
        const table: TextTable = {
          columns: ['NAME', 'NAMESPACE', 'REVISION', 'UPDATED', 'STATUS', 'CHART', 'APP VERSION'],
          rows,
        };
        const omitted = all.length - decoded.length;
        return tableResult(
          ctx,
          'HelmRelease',
          table,
          {
            omitted,
            omittedNote: cut
              ? `more than ${MAX_INDEX} release Secrets in a namespace: only the first ${MAX_INDEX} were read`
              : `showing ${decoded.length} of ${all.length} releases (at most ${MAX_DECODED} are read per call)`,
          },
          'namespace',
        );
      },
    }),
    defineTool({
      name: 'get-helm-release',
      title: 'Get a Helm release',
      description:
        'A Helm release, like `helm status|get|history`: status, user values (all: with chart defaults), manifest, notes or history. Secrets masked; release text fenced as cluster data.',
      effect: 'read',
      needsKinds: [HELM_STORAGE_KIND],
      input: {
        name: z.string().min(1),
        namespace: z.string().optional(),
        show: z.enum(SHOWS).optional().describe('default status'),
        revision: z.number().int().min(1).optional().describe('default: the latest'),
        all: z.boolean().optional().describe('values: merged over the chart defaults'),
        context: contextArg,
      },
      output: releaseOutput,
      run: async (a, ctx) => {
        const show = a.show ?? 'status';
        if (!validReleaseName(a.name))
          throw new InvalidArgumentError('name', `${JSON.stringify(a.name)} is not a Helm release name`);
        if (a.all && show !== 'values') throw new InvalidArgumentError('all', 'applies to show: values only');
        if (a.revision !== undefined && show === 'history')
          throw new InvalidArgumentError('revision', 'does not apply to show: history (it lists every revision)');
        const namespace = a.namespace || ctx.kube.defaultNamespace(a.context);
        const { revisions } = await index(ctx, a.context, namespace, a.name);
        if (!revisions.length)
          throw new InvalidArgumentError(
            'name',
            `no Helm release "${a.name}" in namespace ${namespace} (list-helm-releases lists them)`,
          );
        const latest = revisions[revisions.length - 1]!;
        const target = `helmrelease/${namespace}/${a.name}`;
        if (show === 'history') return history(ctx, a.context, revisions, target);
        const want = a.revision ?? latest.revision;
        const r = revisions.find((x) => x.revision === want);
        if (!r)
          throw new InvalidArgumentError(
            'revision',
            `release ${a.name} has no revision ${want}; its revisions: ${revisions.map((x) => x.revision).join(', ')}`,
          );
        const rel = await read(ctx, a.context, r);
        if (typeof rel === 'string') throw new Error(`cannot read revision ${want} of release ${a.name}: ${rel}`);
        return shown(ctx, show, rel, r, !!a.all, target);
      },
    }),
  ];
}

/** The get-helm-release answer of one revision for `show` other than history. */
function shown(
  ctx: ToolContext,
  show: Exclude<(typeof SHOWS)[number], 'history'>,
  rel: HelmRelease,
  r: Revision,
  all: boolean,
  target: string,
): ToolOutput {
  const base = {
    name: r.release,
    namespace: r.namespace,
    revision: r.revision,
    status: rel.status || r.status,
    chart: chartOf(rel),
    appVersion: rel.chart.appVersion,
    updated: rel.lastDeployed,
    show,
  };
  const src = `helm release ${r.namespace}/${r.release} revision ${r.revision}`;
  const head = [
    `NAME: ${base.name}`,
    `NAMESPACE: ${base.namespace}`,
    `REVISION: ${base.revision}`,
    `STATUS: ${base.status}`,
    `CHART: ${base.chart}`,
    `APP VERSION: ${base.appVersion}`,
  ];
  if (show === 'status') {
    const text = [...head, `FIRST DEPLOYED: ${rel.firstDeployed}`, `LAST DEPLOYED: ${rel.lastDeployed}`, ''].join('\n');
    const body = `DESCRIPTION: ${rel.description}\nNOTES:\n${rel.notes}`;
    const f = fencedWithin(body, `${src} description and notes`, ctx.budget - text.length - 120);
    const note = f.cut ? truncatedNote('the notes exceed the budget', 'show: notes') : '';
    return {
      text: text + f.text + note,
      structured: {
        ...base,
        description: rel.description,
        text: f.cut ? f.kept.slice(body.length - rel.notes.length) : rel.notes,
        truncated: f.cut,
      },
      target,
    };
  }
  const head1 = `${head.join(', ')}\n`;
  let body: string;
  let label: string;
  let values: Record<string, unknown> | undefined;
  if (show === 'values') {
    values = all ? coalesceValues(rel.chartValues, rel.config) : rel.config;
    body = toYaml(values);
    label = all ? 'COMPUTED VALUES' : 'USER-SUPPLIED VALUES';
  } else if (show === 'manifest') {
    body = rel.manifest;
    label = 'MANIFEST';
  } else {
    body = rel.notes;
    label = 'NOTES';
  }
  const prefix = `${head1}${label}:\n`;
  const f = fencedWithin(body, `${src} ${label.toLowerCase()}`, ctx.budget - prefix.length - 160);
  const note = f.cut
    ? truncatedNote(
        `${body.length} characters exceed the ${ctx.budget}-character budget`,
        show === 'manifest' ? 'get-resource on the objects it names' : 'a narrower show',
      )
    : '';
  const structured: Record<string, unknown> = { ...base, truncated: f.cut };
  if (show === 'values') {
    if (!f.cut) structured.values = values;
  } else structured.text = f.kept;
  return { text: prefix + f.text + note, structured, target };
}

/** The get-helm-release answer for show: history, like `helm history` (the newest {@link MAX_HISTORY} revisions). */
async function history(
  ctx: ToolContext,
  context: string | undefined,
  revisions: Revision[],
  target: string,
): Promise<ToolOutput> {
  const kept = revisions.slice(-MAX_HISTORY);
  const rels = await mapLimit(kept, CONCURRENCY, (r) => read(ctx, context, r));
  const rows = kept.map((r, i) => {
    const rel = rels[i]!;
    if (typeof rel === 'string') return [String(r.revision), '', r.status, '', '', `<unreadable: ${rel}>`];
    return [
      String(r.revision),
      when(rel.lastDeployed),
      rel.status || r.status,
      chartOf(rel),
      rel.chart.appVersion,
      rel.description.replace(/\s+/g, ' ').trim(),
    ];
  });
  const last = kept[kept.length - 1]!;
  const lastRel = rels[rels.length - 1]!;
  const src = `helm history of ${last.namespace}/${last.release}`;
  const room = ctx.budget - fence('', src).text.length - 200;
  // The newest revisions matter most: cut from the oldest.
  const { shown } = budgetTable({ columns: HISTORY_COLUMNS, rows: [...rows].reverse() }, Math.max(0, room));
  const visible = rows.slice(rows.length - shown);
  const { text: tableText } = budgetTable({ columns: HISTORY_COLUMNS, rows: visible }, Number.MAX_SAFE_INTEGER);
  const f = fence(tableText, src);
  const omitted = revisions.length - visible.length;
  const truncated = omitted > 0;
  return {
    text:
      f.text +
      (truncated
        ? truncatedNote(
            `showing the newest ${visible.length} of ${revisions.length} revisions`,
            'show: status with revision',
          )
        : ''),
    structured: {
      name: last.release,
      namespace: last.namespace,
      revision: last.revision,
      status: typeof lastRel === 'string' ? last.status : lastRel.status || last.status,
      chart: typeof lastRel === 'string' ? '' : chartOf(lastRel),
      appVersion: typeof lastRel === 'string' ? '' : lastRel.chart.appVersion,
      updated: typeof lastRel === 'string' ? '' : lastRel.lastDeployed,
      show: 'history',
      rows: visible,
      truncated,
    },
    target,
  };
}
