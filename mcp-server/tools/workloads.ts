/**
 * Workload tools (issue 5): scale-workload (scale subresource: Deployment, StatefulSet,
 * ReplicaSet, MCPServer), restart-rollout, get-rollout-status, undo-rollout, and get-logs (by
 * pod or workload: tail by default, since, previous, container, regex filter with context lines,
 * byte cap). Rollout semantics follow kubectl's (k8s.io/kubectl/pkg/polymorphichelpers).
 */
import { z } from 'zod';
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import { KubeError, type ApiResource, type Pod, type Scale, type Workload } from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import { budgetText, truncatedNote } from '../format.js';
import { fence, FENCE_OVERHEAD } from '../fence.js';
import { contextArg, defineTool, type AnyToolDef, type ToolArgs, type ToolContext } from './registry.js';
import { nsFor, objectOutput, objectResult, resolveKind, selectorOf, splitKindName } from './common.js';
import { diffOutput, previewArg, previewResult } from './preview.js';

const nsArg = z.string().optional().describe("namespace (default: the context's namespace)");

async function workload(
  ctx: ToolContext,
  a: { kind: string; name?: string; namespace?: string; context?: string },
  allowed?: string[],
) {
  const { kind, name } = splitKindName(a.kind, a.name);
  if (!name) throw new InvalidArgumentError('name', 'a name is required (as `name`, or `kind/name`)');
  const api = await resolveKind(ctx, kind, undefined, a.context);
  if (allowed && !allowed.includes(api.kind))
    throw new InvalidArgumentError('kind', `${api.kind} is not supported here; supported kinds: ${allowed.join(', ')}`);
  const namespace = nsFor(ctx, api, a.namespace, a.context);
  return { api, name, namespace };
}

/** Rollout status of a Deployment, StatefulSet or DaemonSet, as `kubectl rollout status` computes it. */
export function rolloutStatus(obj: Workload): { done: boolean; failed: boolean; message: string } {
  const s = obj.status ?? {};
  const spec = obj.spec ?? {};
  const gen = obj.metadata?.generation ?? 0;
  const name = `${String(obj.kind).toLowerCase()} "${obj.metadata?.name}"`;
  if ((s.observedGeneration ?? 0) < gen)
    return { done: false, failed: false, message: `Waiting for ${name} spec update to be observed...` };
  if (obj.kind === 'Deployment') {
    const want = spec.replicas ?? 1;
    const prog = (s.conditions ?? []).find((c) => c.type === 'Progressing');
    if (prog?.reason === 'ProgressDeadlineExceeded')
      return { done: false, failed: true, message: `${name} exceeded its progress deadline` };
    if ((s.updatedReplicas ?? 0) < want)
      return {
        done: false,
        failed: false,
        message: `Waiting for ${name} rollout to finish: ${s.updatedReplicas ?? 0} out of ${want} new replicas have been updated...`,
      };
    if ((s.replicas ?? 0) > (s.updatedReplicas ?? 0))
      return {
        done: false,
        failed: false,
        message: `Waiting for ${name} rollout to finish: ${(s.replicas ?? 0) - (s.updatedReplicas ?? 0)} old replicas are pending termination...`,
      };
    if ((s.availableReplicas ?? 0) < (s.updatedReplicas ?? 0))
      return {
        done: false,
        failed: false,
        message: `Waiting for ${name} rollout to finish: ${s.availableReplicas ?? 0} of ${s.updatedReplicas ?? 0} updated replicas are available...`,
      };
    return { done: true, failed: false, message: `${name} successfully rolled out` };
  }
  if (obj.kind === 'StatefulSet') {
    const want = spec.replicas ?? 1;
    if ((s.readyReplicas ?? 0) < want)
      return {
        done: false,
        failed: false,
        message: `Waiting for ${want - (s.readyReplicas ?? 0)} pods to be ready...`,
      };
    if (spec.updateStrategy?.type !== 'OnDelete' && s.updateRevision !== s.currentRevision) {
      return {
        done: false,
        failed: false,
        message: `waiting for statefulset rolling update to complete ${s.updatedReplicas ?? 0} pods at revision ${s.updateRevision}...`,
      };
    }
    return {
      done: true,
      failed: false,
      message: `statefulset rolling update complete ${s.currentReplicas ?? want} pods at revision ${s.currentRevision}`,
    };
  }
  if (obj.kind === 'DaemonSet') {
    const want = s.desiredNumberScheduled ?? 0;
    if ((s.updatedNumberScheduled ?? 0) < want)
      return {
        done: false,
        failed: false,
        message: `Waiting for daemon set ${name} rollout to finish: ${s.updatedNumberScheduled ?? 0} out of ${want} new pods have been updated...`,
      };
    if ((s.numberAvailable ?? 0) < want)
      return {
        done: false,
        failed: false,
        message: `Waiting for daemon set ${name} rollout to finish: ${s.numberAvailable ?? 0} of ${want} updated pods are available...`,
      };
    return { done: true, failed: false, message: `daemon set ${name} successfully rolled out` };
  }
  throw new InvalidArgumentError(
    'kind',
    `rollout status is defined for Deployment, StatefulSet and DaemonSet, not ${obj.kind}`,
  );
}

/** What the log tools read from: a pod, or a workload's pods (`kind` and `name`). */
type LogTarget = LogArgs & { pod?: string; kind?: string; name?: string; namespace?: string; context?: string };

/** Pods of a pod name or workload, at most `max`. */
async function podsOf(ctx: ToolContext, a: LogTarget, max: number): Promise<{ namespace: string; pods: Pod[] }> {
  const podApi = await ctx.kube.resolve('pods', 'v1', a.context);
  if (a.pod) {
    const namespace = a.namespace || ctx.kube.defaultNamespace(a.context);
    return { namespace, pods: [await ctx.kube.get<Pod>({ context: a.context, api: podApi, namespace, name: a.pod })] };
  }
  if (!a.kind) throw new InvalidArgumentError('pod', 'give `pod`, or `kind` and `name` of a workload');
  if (!a.name && !a.kind.includes('/'))
    throw new InvalidArgumentError('name', 'give the `name` of the workload (or `kind/name`), or `pod`');
  const { api, name, namespace } = await workload(ctx, {
    kind: a.kind,
    name: a.name,
    namespace: a.namespace,
    context: a.context,
  });
  const obj = await ctx.kube.get<Workload>({ context: a.context, api, namespace, name });
  const list = await ctx.kube.list<Pod>(
    { context: a.context, api: podApi, namespace },
    { labelSelector: selectorOf(obj), limit: max },
  );
  if (!list.items.length) throw new KubeError(404, 'NotFound', `${api.kind} ${name} has no pods`);
  return { namespace: namespace ?? ctx.kube.defaultNamespace(a.context), pods: list.items };
}

/** re2js, loaded on the first filter (its 260 KB are not paid at startup). */
let re2: typeof RE2JS | undefined;
function loadRe2(): typeof RE2JS {
  re2 ??= (createRequire(import.meta.url)('re2js') as { RE2JS: typeof RE2JS }).RE2JS;
  return re2;
}

/** Longest `filter` pattern accepted, in characters. */
export const MAX_FILTER_LENGTH = 1000;

/**
 * Applies a regex filter with `context` lines around each match (grep -C). The pattern runs on
 * RE2 semantics (re2js, a pure-JS port of RE2): matching time is linear in the input whatever
 * the pattern, so no filter can stall the server (issue 9, item 4). RE2 syntax is Perl-like but
 * has no lookaround (`(?=`, `(?!`, `(?<=`) and no backreferences (`\1`).
 * @throws InvalidArgumentError naming `filter` for an invalid, unsupported or too long pattern.
 */
export function filterLines(text: string, pattern: string, around: number): { text: string; matches: number } {
  if (pattern.length > MAX_FILTER_LENGTH)
    throw new InvalidArgumentError(
      'filter',
      `the pattern is ${pattern.length} characters long; at most ${MAX_FILTER_LENGTH}`,
    );
  let re: RE2JS;
  try {
    re = loadRe2().compile(pattern);
  } catch (err) {
    throw new InvalidArgumentError(
      'filter',
      `not a valid RE2 regular expression (no lookaround, no backreferences): ${(err as Error).message}`,
    );
  }
  const lines = text.split('\n');
  const keep = new Set<number>();
  let matches = 0;
  lines.forEach((l, i) => {
    if (re.matcher(l).find()) {
      matches++;
      for (let j = Math.max(0, i - around); j <= Math.min(lines.length - 1, i + around); j++) keep.add(j);
    }
  });
  const out: string[] = [];
  let last = -2;
  for (const i of [...keep].sort((x, y) => x - y)) {
    if (last >= 0 && i > last + 1) out.push('--');
    out.push(lines[i]!);
    last = i;
  }
  return { text: out.join('\n'), matches };
}

/** Input shape of the log tools (get-logs; get-pod-logs adds the seed's `name`). */
export const logArgs = {
  container: z.string().optional().describe('container name (default: the only or first container)'),
  tailLines: z.number().int().min(1).max(100000).optional().describe('last N lines per container (default 100)'),
  sinceSeconds: z.number().int().min(1).optional().describe('only lines newer than this many seconds'),
  previous: z.boolean().optional().describe('logs of the previous (crashed) container instance'),
  filter: z.string().optional().describe('regular expression; only matching lines (with context) are returned'),
  contextLines: z
    .number()
    .int()
    .min(0)
    .max(20)
    .optional()
    .describe('lines of context around each filter match (default 0)'),
  maxBytes: z
    .number()
    .int()
    .min(256)
    .max(4_000_000)
    .optional()
    .describe('byte cap read from the apiserver per container (default 256 KiB)'),
};

/** The log arguments, typed from {@link logArgs}. */
export type LogArgs = ToolArgs<typeof logArgs>;

/** Output schema of the log tools. */
export const logOutput = {
  namespace: z.string(),
  pods: z.array(
    z.object({
      pod: z.string(),
      container: z.string(),
      bytes: z.number().int(),
      lines: z.number().int(),
      cut: z.boolean(),
    }),
  ),
  matches: z.number().int().optional(),
  truncated: z.boolean(),
};

/** Reads logs for the pods of a pod/workload; shared by get-logs and the seed's get-pod-logs. */
export async function readLogs(
  ctx: ToolContext,
  a: LogTarget,
): Promise<{ text: string; structured: Record<string, unknown> }> {
  const { namespace, pods } = await podsOf(ctx, a, 10);
  const podApi = await ctx.kube.resolve('pods', 'v1', a.context);
  const parts: string[] = [];
  const meta: Array<{ pod: string; container: string; bytes: number; lines: number; cut: boolean }> = [];
  let matches = 0;
  for (const pod of pods) {
    const podName = pod.metadata?.name ?? '';
    const containers = (pod.spec?.containers ?? []).map((c) => c.name);
    const container = a.container ?? containers[0];
    if (!container) continue;
    if (a.container && !containers.includes(a.container))
      throw new InvalidArgumentError(
        'container',
        `pod ${podName} has no container ${a.container}; containers: ${containers.join(', ')}`,
      );
    const maxBytes = a.maxBytes ?? 256 * 1024;
    const { text, cut } = await ctx.kube.logs(
      { context: a.context, api: podApi, namespace, name: podName },
      { container, tailLines: a.tailLines ?? 100, sinceSeconds: a.sinceSeconds, previous: a.previous, maxBytes },
    );
    let body = text;
    if (a.filter) {
      const f = filterLines(text, a.filter, a.contextLines ?? 0);
      body = f.text;
      matches += f.matches;
    }
    meta.push({
      pod: podName,
      container,
      bytes: Buffer.byteLength(text),
      lines: text ? text.split('\n').filter(Boolean).length : 0,
      cut,
    });
    parts.push(
      (pods.length > 1 || containers.length > 1 ? `==> ${podName}/${container} <==\n` : '') +
        (body || '<no log lines>'),
    );
  }
  // Logs keep their most recent lines when cut; they are untrusted text, fenced (fence.ts), and
  // the fence's header and footer count against the budget.
  const source =
    pods.length === 1
      ? `logs of pod ${namespace}/${pods[0]?.metadata?.name ?? ''}`
      : `logs of ${pods.length} pods in ${namespace}`;
  const { text, cut } = budgetText(parts.join('\n'), Math.max(0, ctx.budget - FENCE_OVERHEAD), true);
  const fenced = fence(text, source).text;
  return {
    text: cut
      ? truncatedNote('older lines cut to fit the budget', 'tailLines, sinceSeconds, filter or container').slice(1) +
        '\n' +
        fenced
      : fenced,
    structured: { namespace, pods: meta, ...(a.filter ? { matches } : {}), truncated: cut || meta.some((m) => m.cut) },
  };
}

const ROLLOUT_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'];
const REVISION = 'deployment.kubernetes.io/revision';

/** The workload tools. */
export function workloadTools(): AnyToolDef[] {
  const target = {
    kind: z.string().min(1).describe('kind (Deployment, StatefulSet, DaemonSet, ...); `kind/name` also works'),
    name: z.string().min(1).optional(),
    namespace: nsArg,
    context: contextArg,
  };
  return [
    defineTool({
      name: 'scale-workload',
      title: 'Scale a workload',
      description:
        'Set the replicas of any kind with a scale subresource: Deployment, StatefulSet, ReplicaSet, MCPServer.',
      effect: 'write',
      idempotent: true,
      input: { ...target, replicas: z.number().int().min(0).max(10000), preview: previewArg },
      output: {
        kind: z.string(),
        name: z.string(),
        namespace: z.string().optional(),
        replicas: z.number().int(),
        previous: z.number().int().optional(),
        diff: diffOutput,
      },
      run: async (a, ctx) => {
        const { api, name, namespace } = await workload(ctx, a);
        const ref = { context: a.context, api, namespace, name };
        const before = await ctx.kube.getScale(ref);
        if (a.preview) {
          // The same merge patch of the scale subresource kube.scale() sends, as a dry run.
          const out = await ctx.kube.patch<Scale>(
            { ...ref, subresource: 'scale' },
            'merge',
            {
              spec: { replicas: a.replicas },
            },
            { dryRun: true },
          );
          const label = `${api.kind.toLowerCase()}/${namespace ? namespace + '/' : ''}${name}/scale`;
          const p = previewResult(ctx, [{ api, label, live: before, stored: out }]);
          return {
            text: p.text,
            structured: {
              kind: api.kind,
              name,
              ...(namespace ? { namespace } : {}),
              replicas: out.spec?.replicas ?? a.replicas,
              previous: before.spec?.replicas ?? 0,
              diff: p.diff,
            },
            target: `${api.resource}/${namespace}/${name}`,
          };
        }
        const out = await ctx.kube.scale(ref, a.replicas);
        return {
          text: `${api.kind.toLowerCase()}/${name} scaled from ${before.spec?.replicas ?? 0} to ${out.spec?.replicas} replicas`,
          structured: {
            kind: api.kind,
            name,
            ...(namespace ? { namespace } : {}),
            replicas: out.spec?.replicas ?? a.replicas,
            previous: before.spec?.replicas ?? 0,
          },
          target: `${api.resource}/${namespace}/${name}`,
        };
      },
    }),
    defineTool({
      name: 'restart-rollout',
      title: 'Restart a rollout',
      description:
        'Restart the pods of a Deployment, StatefulSet or DaemonSet, as `kubectl rollout restart` does (a restartedAt annotation on the pod template).',
      effect: 'write',
      input: target,
      output: objectOutput,
      run: async (a, ctx) => {
        const { api, name, namespace } = await workload(ctx, a, ROLLOUT_KINDS);
        const restartedAt = {
          spec: {
            template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } },
          },
        };
        const out = await ctx.kube.patch({ context: a.context, api, namespace, name }, 'strategic', restartedAt);
        const r = objectResult(ctx, out, `# ${api.kind.toLowerCase()}/${name} restarted\n`);
        return {
          ...r,
          text: `${api.kind.toLowerCase()}/${name} restarted (generation ${out.metadata?.generation})`,
          structured: { ...r.structured, object: undefined },
        };
      },
    }),
    defineTool({
      name: 'get-rollout-status',
      title: 'Rollout status',
      description:
        'Rollout status of a Deployment, StatefulSet or DaemonSet (kubectl rollout status). waitSeconds > 0 waits (at most 300 s) until done or failed.',
      effect: 'read',
      input: { ...target, waitSeconds: z.number().int().min(0).max(300).optional() },
      output: { kind: z.string(), name: z.string(), done: z.boolean(), failed: z.boolean(), message: z.string() },
      run: async (a, ctx) => {
        const { api, name, namespace } = await workload(ctx, a, ROLLOUT_KINDS);
        const deadline = Date.now() + (a.waitSeconds ?? 0) * 1000;
        let st: ReturnType<typeof rolloutStatus>;
        for (let i = 0; ; i++) {
          st = rolloutStatus(await ctx.kube.get<Workload>({ context: a.context, api, namespace, name }));
          if (st.done || st.failed || Date.now() >= deadline || i >= 600) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        return { text: st.message, structured: { kind: api.kind, name, ...st } };
      },
    }),
    defineTool({
      name: 'undo-rollout',
      title: 'Undo a rollout',
      description: 'Roll a Deployment back to a revision (default: the previous one), as `kubectl rollout undo` does.',
      effect: 'write',
      input: { ...target, toRevision: z.number().int().min(1).optional() },
      output: { kind: z.string(), name: z.string(), fromRevision: z.number().int(), toRevision: z.number().int() },
      run: async (a, ctx) => {
        const { api, name, namespace } = await workload(ctx, a, ['Deployment']);
        const dep = await ctx.kube.get<Workload>({ context: a.context, api, namespace, name });
        const rsApi = await ctx.kube.resolve('replicasets', 'apps/v1', a.context);
        const list = await ctx.kube.list<Workload>(
          { context: a.context, api: rsApi, namespace },
          { labelSelector: selectorOf(dep) },
        );
        const owned = list.items
          .filter((rs) => (rs.metadata?.ownerReferences ?? []).some((o) => o.uid === dep.metadata?.uid))
          .map((rs) => ({ rs, rev: Number(rs.metadata?.annotations?.[REVISION] ?? 0) }))
          .sort((x, y) => x.rev - y.rev);
        const current = Number(dep.metadata?.annotations?.[REVISION] ?? owned.at(-1)?.rev ?? 0);
        const to = a.toRevision ?? owned.filter((o) => o.rev < current).at(-1)?.rev;
        const pick = owned.find((o) => o.rev === to);
        const revisions = owned.map((o) => o.rev).join(', ') || 'none';
        if (a.toRevision !== undefined && !pick)
          throw new InvalidArgumentError(
            'toRevision',
            `deployment ${name} has no revision ${a.toRevision}; revisions: ${revisions}`,
          );
        if (!to || !pick)
          throw new KubeError(
            404,
            'NotFound',
            `no revision before ${current} of deployment ${name}; revisions: ${revisions}`,
          );
        const template = structuredClone(pick.rs.spec?.template ?? {});
        if (template.metadata?.labels) delete template.metadata.labels['pod-template-hash'];
        await ctx.kube.patch({ context: a.context, api, namespace, name }, 'json', [
          { op: 'replace', path: '/spec/template', value: template },
        ]);
        return {
          text: `deployment/${name} rolled back from revision ${current} to revision ${to}`,
          structured: { kind: 'Deployment', name, fromRevision: current, toRevision: to },
          target: `deployments/${namespace}/${name}`,
        };
      },
    }),
    defineTool({
      name: 'get-logs',
      title: 'Logs of a pod or workload',
      description:
        'Logs of a pod, or of the pods (up to 10) of a workload (kind+name: Deployment, StatefulSet, Job, Service, MCPServer...), last 100 lines by default, with an optional regex filter; fenced as cluster data.',
      effect: 'read',
      input: {
        pod: z.string().optional().describe('pod name (or give kind and name of a workload)'),
        kind: z.string().optional(),
        name: z.string().optional(),
        namespace: nsArg,
        ...logArgs,
        context: contextArg,
      },
      output: logOutput,
      run: async (a, ctx) => readLogs(ctx, a),
    }),
  ];
}

export type { ApiResource };
