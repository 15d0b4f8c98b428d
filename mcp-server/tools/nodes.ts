/**
 * Node tools (issue 19): `cordon-node` / `uncordon-node` (spec.unschedulable, as kubectl cordon),
 * `drain-node` (cordon, then evict every pod through the Eviction API so PodDisruptionBudgets
 * hold, as kubectl drain: k8s.io/kubectl/pkg/drain), and `get-node-logs` (the kubelet's log
 * handler through the node proxy: /api/v1/nodes/NODE/proxy/logs/, with NodeLogQuery's `query`).
 */
import { z } from 'zod';
import { KubeError, type ApiResource, type KubernetesObject, type Pod } from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import { budgetText, truncatedNote } from '../format.js';
import { fence, FENCE_OVERHEAD } from '../fence.js';
import { filterLines } from './workloads.js';
import { contextArg, defineTool, type AnyToolDef, type ToolContext } from './registry.js';

/** Annotation of a static pod's mirror pod (k8s.io/kubernetes/pkg/kubelet/types: ConfigMirrorAnnotationKey). */
export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

/** How long drain waits between evictions a PodDisruptionBudget refused (kubectl drain: 5 s). */
const EVICTION_RETRY_MS = 5_000;
/** How often drain checks that an evicted pod is gone. */
const GONE_POLL_MS = 1_000;

type DrainPod = Pod & {
  metadata?: KubernetesObject['metadata'] & {
    ownerReferences?: Array<{ kind?: string; name?: string; controller?: boolean }>;
    annotations?: Record<string, string>;
    uid?: string;
  };
};

/** What drain does with one pod (kubectl drain's filters, in its order). */
export type PodVerdict =
  { action: 'skip'; reason: string } | { action: 'block'; reason: string } | { action: 'evict'; reason?: string };

/**
 * kubectl drain's pod filters (k8s.io/kubectl/pkg/drain/filters.go): mirror pods are skipped
 * (the kubelet owns them), DaemonSet pods are skipped (the DaemonSet controller ignores
 * unschedulable and would recreate them), finished pods are evicted, pods without a controller
 * need `force`, pods with emptyDir volumes need `deleteEmptyDirData`.
 */
export function podVerdict(p: DrainPod, o: { force?: boolean; deleteEmptyDirData?: boolean }): PodVerdict {
  if (p.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined) return { action: 'skip', reason: 'mirror pod' };
  const ctl = (p.metadata?.ownerReferences ?? []).find((r) => r.controller);
  if (ctl?.kind === 'DaemonSet') return { action: 'skip', reason: `DaemonSet-managed (${ctl.name})` };
  const finished = p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
  if (finished) return { action: 'evict', reason: `finished (${p.status?.phase})` };
  if (!ctl && !o.force) return { action: 'block', reason: 'not managed by a controller (force: true deletes it)' };
  if ((p.spec?.volumes ?? []).some((v) => v.emptyDir !== undefined) && !o.deleteEmptyDirData)
    return { action: 'block', reason: 'uses emptyDir data (deleteEmptyDirData: true deletes it)' };
  return { action: 'evict', reason: ctl ? undefined : 'not managed by a controller, forced' };
}

const nodeName = z.string().describe('node name');

async function nodesApi(ctx: ToolContext, context?: string): Promise<ApiResource> {
  return ctx.kube.resolve('nodes', 'v1', context);
}

async function setUnschedulable(
  ctx: ToolContext,
  name: string,
  value: boolean,
  context?: string,
  dryRun = false,
): Promise<{ changed: boolean }> {
  const api = await nodesApi(ctx, context);
  const node = await ctx.kube.get<KubernetesObject & { spec?: { unschedulable?: boolean } }>({ context, api, name });
  if (!!node.spec?.unschedulable === value) return { changed: false };
  await ctx.kube.patch({ context, api, name }, 'strategic', { spec: { unschedulable: value } }, { dryRun });
  return { changed: true };
}

const cordonOutput = { name: z.string(), unschedulable: z.boolean(), changed: z.boolean(), dryRun: z.boolean() };

function cordonTool(cordon: boolean): AnyToolDef {
  const verb = cordon ? 'cordon' : 'uncordon';
  return defineTool({
    name: `${verb}-node`,
    title: cordon ? 'Cordon a node' : 'Uncordon a node',
    description: cordon
      ? 'Marks a node unschedulable (kubectl cordon); running pods stay.'
      : 'Marks a node schedulable again (kubectl uncordon).',
    effect: 'write',
    idempotent: true,
    input: { name: nodeName, dryRun: z.boolean().optional(), context: contextArg },
    output: cordonOutput,
    run: async (a, ctx) => {
      const r = await setUnschedulable(ctx, a.name, cordon, a.context, !!a.dryRun);
      const done = r.changed
        ? `${cordon ? 'cordoned' : 'uncordoned'}`
        : `already ${cordon ? 'cordoned' : 'uncordoned'}`;
      return {
        text: `node/${a.name} ${done}${a.dryRun && r.changed ? ' (server dry run)' : ''}`,
        structured: { name: a.name, unschedulable: cordon, changed: r.changed, dryRun: !!a.dryRun },
        target: `node/${a.name}`,
      };
    },
  });
}

/** One pod's outcome in a drain. */
interface PodOutcome {
  pod: string;
  result: 'evicted' | 'would evict' | 'skipped' | 'blocked' | 'failed';
  reason?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Evicts one pod (POST pods/NAME/eviction, policy/v1 Eviction), retrying every 5 s while a
 * PodDisruptionBudget refuses it (429 TooManyRequests) until `deadline`, then waits until the pod
 * is gone (404, or a new pod with the same name: another UID). Kubernetes docs, "API-initiated
 * eviction".
 */
async function evict(
  ctx: ToolContext,
  podsApi: ApiResource,
  p: DrainPod,
  o: { context?: string; gracePeriodSeconds?: number; dryRun: boolean; deadline: number },
): Promise<PodOutcome> {
  const ns = p.metadata!.namespace!;
  const name = p.metadata!.name!;
  const pod = `${ns}/${name}`;
  let lastRefusal = '';
  for (;;) {
    try {
      await ctx.kube.request({
        context: o.context,
        method: 'POST',
        api: podsApi,
        namespace: ns,
        name,
        subresource: 'eviction',
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name, namespace: ns },
          deleteOptions: {
            ...(o.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: o.gracePeriodSeconds } : {}),
            ...(o.dryRun ? { dryRun: ['All'] } : {}),
          },
        },
      });
      break;
    } catch (err) {
      if (err instanceof KubeError && err.code === 404) return { pod, result: 'evicted', reason: 'already gone' };
      if (err instanceof KubeError && err.code === 429) {
        lastRefusal = err.message;
        if (Date.now() + EVICTION_RETRY_MS > o.deadline)
          return { pod, result: 'blocked', reason: `PodDisruptionBudget: ${lastRefusal}` };
        await sleep(EVICTION_RETRY_MS);
        continue;
      }
      return { pod, result: 'failed', reason: err instanceof Error ? err.message : String(err) };
    }
  }
  if (o.dryRun) return { pod, result: 'would evict', ...(lastRefusal ? { reason: 'after a PDB wait' } : {}) };
  while (Date.now() < o.deadline) {
    try {
      const now = await ctx.kube.get<DrainPod>({ context: o.context, api: podsApi, namespace: ns, name });
      if (now.metadata?.uid !== p.metadata?.uid) break;
    } catch (err) {
      if (err instanceof KubeError && err.code === 404) break;
      throw err;
    }
    await sleep(GONE_POLL_MS);
  }
  if (Date.now() >= o.deadline)
    return { pod, result: 'blocked', reason: 'evicted but still terminating at the timeout' };
  return { pod, result: 'evicted', ...(lastRefusal ? { reason: 'after waiting for its PodDisruptionBudget' } : {}) };
}

/** The node tools, in listing order. */
export function nodeTools(): AnyToolDef[] {
  return [
    cordonTool(true),
    cordonTool(false),
    defineTool({
      name: 'drain-node',
      title: 'Drain a node',
      description:
        'Cordons a node and evicts its pods through the Eviction API (PodDisruptionBudgets hold; DaemonSet and mirror pods skipped), as kubectl drain.',
      effect: 'delete',
      input: {
        name: nodeName,
        gracePeriodSeconds: z.number().int().min(0).max(3600).optional(),
        timeoutSeconds: z.number().int().min(1).max(1800).optional().describe('default 120'),
        force: z.boolean().optional().describe('also pods without a controller'),
        deleteEmptyDirData: z.boolean().optional(),
        dryRun: z.boolean().optional(),
        context: contextArg,
      },
      output: {
        name: z.string(),
        dryRun: z.boolean(),
        done: z.boolean(),
        pods: z.array(z.object({ pod: z.string(), result: z.string(), reason: z.string().optional() })),
      },
      run: async (a, ctx) => {
        const dryRun = !!a.dryRun;
        const deadline = Date.now() + (a.timeoutSeconds ?? 120) * 1000;
        const api = await nodesApi(ctx, a.context);
        await ctx.kube.get({ context: a.context, api, name: a.name });
        const podsApi = await ctx.kube.resolve('pods', 'v1', a.context);
        const list = await ctx.kube.list<DrainPod>(
          { context: a.context, api: podsApi },
          { fieldSelector: `spec.nodeName=${a.name}`, limit: 5000 },
        );
        const verdicts = list.items.map((p) => ({ p, v: podVerdict(p, a) }));
        const pods: PodOutcome[] = [];
        const id = (p: DrainPod) => `${p.metadata?.namespace}/${p.metadata?.name}`;
        const blocked = verdicts.filter((x) => x.v.action === 'block');
        if (blocked.length) {
          // kubectl drain refuses the whole drain before evicting anything; so does this (not even cordoned).
          const lines = blocked.map((x) => `  ${id(x.p)}: ${x.v.reason}`);
          return {
            text: `node/${a.name} not drained: ${blocked.length} pod(s) cannot be evicted; nothing was changed:\n${lines.join('\n')}`,
            structured: {
              name: a.name,
              dryRun,
              done: false,
              pods: blocked.map((x) => ({ pod: id(x.p), result: 'blocked', reason: x.v.reason })),
            },
            target: `node/${a.name}`,
          };
        }
        const toGo = verdicts.filter((x) => x.v.action === 'evict').map((x) => id(x.p));
        // Draining disrupts every workload on the node: the user confirms first when the client
        // can be asked (elicitation); a declined or cancelled confirmation changes nothing.
        const answer = dryRun
          ? undefined
          : await ctx.confirm?.(
              `Drain node ${a.name}: cordon it and evict ${toGo.length} pod(s)${toGo.length ? `:\n${toGo.slice(0, 50).join('\n')}${toGo.length > 50 ? `\n... and ${toGo.length - 50} more` : ''}` : ''}`,
            );
        if (answer === 'decline' || answer === 'cancel')
          return {
            text: `node/${a.name} not drained: the user ${answer === 'decline' ? 'declined' : 'cancelled'} the confirmation; nothing was changed`,
            structured: { name: a.name, dryRun, done: false, pods: [] },
            target: `node/${a.name}`,
          };
        await setUnschedulable(ctx, a.name, true, a.context, dryRun);
        for (const x of verdicts)
          if (x.v.action === 'skip') pods.push({ pod: id(x.p), result: 'skipped', reason: x.v.reason });
        const toEvict = verdicts.filter((x) => x.v.action === 'evict');
        let finished = 0;
        await ctx.progress?.(0, toEvict.length, `cordoned node/${a.name}; evicting ${toEvict.length} pod(s)`);
        // Every pod is evicted concurrently, each waiting for its own budget (kubectl drain does the same).
        const outcomes = await Promise.all(
          toEvict.map(async (x) => {
            const o = await evict(ctx, podsApi, x.p, {
              context: a.context,
              gracePeriodSeconds: a.gracePeriodSeconds,
              dryRun,
              deadline,
            });
            finished++;
            await ctx.progress?.(finished, toEvict.length, `${o.pod}: ${o.result}`);
            return o;
          }),
        );
        pods.push(...outcomes);
        const done = pods.every((p) => p.result !== 'blocked' && p.result !== 'failed');
        const lines = pods.map((p) => `  ${p.pod}: ${p.result}${p.reason ? ` (${p.reason})` : ''}`);
        const head = dryRun
          ? `node/${a.name} drain (server dry run): nothing was changed`
          : done
            ? `node/${a.name} drained`
            : `node/${a.name} cordoned but not drained: ${pods.filter((p) => p.result === 'blocked' || p.result === 'failed').length} pod(s) remain`;
        const { text, cut } = budgetText(`${head}\n${lines.join('\n')}`, ctx.budget);
        return {
          text: cut ? text + truncatedNote('the pod list exceeds the budget', 'structured content') : text,
          structured: { name: a.name, dryRun, done, pods },
          target: `node/${a.name}`,
        };
      },
    }),
    defineTool({
      name: 'get-node-logs',
      title: 'Get node logs',
      description:
        "A node's logs through the kubelet (node proxy): `query` names a service (kubelet, containerd) or a file under /var/log (NodeLogQuery).",
      effect: 'read',
      input: {
        name: nodeName,
        query: z.string().optional().describe('service or /var/log file name (default kubelet)'),
        sinceTime: z.string().optional().describe('RFC 3339'),
        tailLines: z.number().int().min(1).max(100000).optional().describe('default 100'),
        filter: z.string().optional().describe('regular expression (RE2); only matching lines'),
        context: contextArg,
      },
      output: {
        name: z.string(),
        query: z.string(),
        lines: z.number().int(),
        truncated: z.boolean(),
        text: z.string(),
      },
      run: async (a, ctx) => {
        const query = a.query ?? 'kubelet';
        if (!/^[A-Za-z0-9_][A-Za-z0-9._@/-]{0,252}$/.test(query) || query.includes('..'))
          throw new InvalidArgumentError('query', 'a service name or a file name under /var/log');
        if (a.sinceTime !== undefined && Number.isNaN(Date.parse(a.sinceTime)))
          throw new InvalidArgumentError('sinceTime', 'not an RFC 3339 time');
        // A bad filter is refused before anything is sent (filterLines throws naming `filter`).
        if (a.filter !== undefined) filterLines('', a.filter, 0);
        const api = await nodesApi(ctx, a.context);
        const tail = a.tailLines ?? 100;
        const read = (options: boolean) =>
          ctx.kube
            .requestText(
              {
                context: a.context,
                api,
                name: a.name,
                subresource: 'proxy',
                subpath: 'logs/',
                // The kubelet's handler (go-restful) answers 406 to an Accept without text.
                accept: 'text/plain, */*',
                query: {
                  query,
                  // NodeLogQuery's own tail and time filter (k8s.io/kubernetes/pkg/kubelet/kubelet_server_journal.go).
                  tailLines: options && !a.filter ? tail : undefined,
                  sinceTime: options ? a.sinceTime : undefined,
                },
              },
              8 * 1024 * 1024,
            )
            .catch((err: unknown) => {
              if (err instanceof KubeError && (err.code === 404 || err.code === 400))
                throw new KubeError(
                  err.code,
                  err.reason,
                  `${err.message} (the kubelet serves log queries only with the NodeLogQuery feature gate and enableSystemLogQuery)`,
                );
              throw err;
            });
        let { text: raw, cut: capped } = await read(true);
        // A query that resolves to files under /var/log takes no options (the kubelet says so):
        // read the file whole (within the cap) and tail it here; sinceTime cannot apply to a file.
        let sinceIgnored = false;
        if (/options present and query resolved to log files/.test(raw.slice(0, 2000))) {
          ({ text: raw, cut: capped } = await read(false));
          sinceIgnored = a.sinceTime !== undefined;
        }
        // A kubelet without log queries ignores `query` and serves its /var/log directory listing.
        if (/^<!doctype html>\s*<meta[^>]*>\s*<pre>/i.test(raw))
          throw new KubeError(
            501,
            'NotImplemented',
            `the kubelet of node ${a.name} does not answer log queries (enableSystemLogQuery is off): it served its /var/log listing`,
          );
        if (/^\s*log not found for /.test(raw) && raw.trim().split('\n').length === 1)
          throw new KubeError(
            404,
            'NotFound',
            `the kubelet of node ${a.name} found no log for ${JSON.stringify(query)} (no journal unit and no /var/log file of that name)`,
          );
        let lines = raw.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        if (a.filter)
          lines = filterLines(lines.join('\n'), a.filter, 0)
            .text.split('\n')
            .filter((l) => l !== '' && l !== '--'); // filterLines' group separators, with no context lines
        const omitted = Math.max(0, lines.length - tail);
        lines = lines.slice(-tail);
        const body = lines.join('\n');
        // Cut the lines (newest kept) before fencing, so the fence itself is never cut.
        const { text: kept, cut } = budgetText(body, Math.max(0, ctx.budget - FENCE_OVERHEAD - 200), true);
        const fenced = fence(kept, `logs of node ${a.name} (${query})`).text;
        const truncated = cut || capped || omitted > 0;
        const notes = [
          ...(cut
            ? [truncatedNote('the logs exceed the budget; showing the end', 'tailLines, sinceTime or filter').slice(1)]
            : []),
          ...(capped ? [`[the log is larger than 8 MiB: these are the last lines of its first 8 MiB]`] : []),
          ...(sinceIgnored ? ['[sinceTime does not apply to a file under /var/log: the file is tailed whole]'] : []),
        ];
        return {
          text: [...notes, fenced].join('\n'),
          structured: { name: a.name, query, lines: lines.length, truncated, text: body },
        };
      },
    }),
  ];
}
