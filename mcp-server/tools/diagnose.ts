/**
 * `diagnose-workload` (issue 19): one call that answers "why is this not working" for a pod or a workload
 * (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, MCPServer): the object's failing
 * conditions, its owner chain, its pods' container states with their reasons (CrashLoopBackOff,
 * OOMKilled, ImagePullBackOff, Unschedulable with the scheduler's message, ...), the last log
 * lines of failing or previous containers, the related Warning events and, for an MCPServer, its
 * gateway's last refusals (401/403 audit lines). Findings come most telling first (the order of
 * {@link SEVERITY}), then the evidence, all within the response budget; cluster text (logs,
 * event messages) is fenced (fence.ts).
 */
import { z } from 'zod';
import {
  KubeError,
  type ApiResource,
  type Condition,
  type ContainerStatus,
  type Event,
  type Pod,
  type Workload,
} from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import { budgetText, truncatedNote } from '../format.js';
import { fence } from '../fence.js';
import { GATEWAY_CONTAINER } from '../../gateway/wiring.js';
import { contextArg, defineTool, type AnyToolDef, type ToolContext } from './registry.js';
import { nsFor, ownerChain, resolveKind, selectorOf, splitKindName } from './common.js';

/** One thing found wrong (or the statement that nothing is). */
export interface Finding {
  /** 0 is the most telling (see SEVERITY). */
  rank: number;
  subject: string;
  reason: string;
  message: string;
}

/**
 * How telling a reason is: a pod that cannot be scheduled or pulled explains everything after
 * it; a crash explains readiness; readiness explains a workload's Available condition.
 */
export const SEVERITY: readonly string[] = [
  'Unschedulable',
  'ErrImagePull',
  'ImagePullBackOff',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'OOMKilled',
  'CrashLoopBackOff',
  'Error',
  'ContainerCannotRun',
  'DeadlineExceeded',
  'BackoffLimitExceeded',
  'ProgressDeadlineExceeded',
  'ReplicaFailure',
  'GatewayRefusals',
  'NotReady',
  'ConditionFalse',
  'Pending',
  'Warning',
];

const rankOf = (reason: string) => {
  const i = SEVERITY.indexOf(reason);
  return i < 0 ? SEVERITY.indexOf('ConditionFalse') : i;
};

interface StateDetail {
  waiting?: { reason?: string; message?: string };
  terminated?: { reason?: string; message?: string; exitCode?: number; finishedAt?: string };
  running?: { startedAt?: string };
}

/** Conditions of a workload that are bad when False (and the ones bad when True). */
const BAD_WHEN_TRUE = new Set(['ReplicaFailure', 'Failed', 'Stalled', 'Degraded']);

/**
 * The findings of one pod (pure): scheduling, each container's state and last state, readiness.
 * Returns the containers whose logs tell why (with `previous` when the last instance ended).
 */
export function podFindings(pod: Pod): { findings: Finding[]; logs: Array<{ container: string; previous: boolean }> } {
  const name = `pod/${pod.metadata?.name}`;
  const findings: Finding[] = [];
  const logs: Array<{ container: string; previous: boolean }> = [];
  const conds = pod.status?.conditions ?? [];
  const sched = conds.find((c) => c.type === 'PodScheduled');
  if (sched?.status === 'False')
    findings.push({
      rank: rankOf(sched.reason === 'Unschedulable' ? 'Unschedulable' : 'Pending'),
      subject: name,
      reason: sched.reason ?? 'Unscheduled',
      message: sched.message ?? '',
    });
  if (pod.status?.phase === 'Failed')
    findings.push({
      rank: rankOf(pod.status.reason ?? 'Error'),
      subject: name,
      reason: pod.status.reason ?? 'Failed',
      message: pod.status.message ?? 'the pod failed',
    });
  const statuses: Array<ContainerStatus & { init?: boolean }> = [
    ...((pod.status as { initContainerStatuses?: ContainerStatus[] } | undefined)?.initContainerStatuses ?? []).map(
      (s) => ({ ...s, init: true }),
    ),
    ...(pod.status?.containerStatuses ?? []),
  ];
  for (const s of statuses) {
    const subject = `${name} container ${s.name}${s.init ? ' (init)' : ''}`;
    const state = (s.state ?? {}) as StateDetail;
    const last = (s.lastState ?? {}) as StateDetail;
    const restarts = s.restartCount ?? 0;
    let explained = false;
    if (
      state.waiting?.reason &&
      state.waiting.reason !== 'ContainerCreating' &&
      state.waiting.reason !== 'PodInitializing'
    ) {
      findings.push({
        rank: rankOf(state.waiting.reason),
        subject,
        reason: state.waiting.reason,
        message: `${state.waiting.message ?? ''}${restarts ? ` (restarted ${restarts} times)` : ''}`.trim(),
      });
      explained = true;
    }
    const ended = state.terminated ?? last.terminated;
    if (ended && (ended.exitCode ?? 0) !== 0) {
      findings.push({
        rank: rankOf(ended.reason === 'OOMKilled' ? 'OOMKilled' : 'Error'),
        subject,
        reason: ended.reason ?? 'Error',
        message: `${state.terminated ? 'exited' : 'last instance exited'} with code ${ended.exitCode}${ended.message ? `: ${ended.message}` : ''}`,
      });
      explained = true;
    }
    if (explained || (restarts > 0 && !s.ready))
      logs.push({ container: s.name, previous: !state.terminated && !!last.terminated });
    if (!explained && !s.ready && !s.init && pod.status?.phase === 'Running')
      findings.push({
        rank: rankOf('NotReady'),
        subject,
        reason: 'NotReady',
        message: 'running but not ready (readiness probe)',
      });
  }
  return { findings, logs };
}

/** The findings of a workload's own status (pure): conditions bad by their polarity, replica counts. */
export function objectFindings(obj: Workload): Finding[] {
  const subject = `${String(obj.kind).toLowerCase()}/${obj.metadata?.name}`;
  const out: Finding[] = [];
  for (const c of (obj.status?.conditions ?? []) as Condition[]) {
    const bad = BAD_WHEN_TRUE.has(c.type) ? c.status === 'True' : c.status === 'False';
    if (!bad) continue;
    const reason =
      c.reason === 'ProgressDeadlineExceeded' || c.type === 'ReplicaFailure' ? (c.reason ?? c.type) : 'ConditionFalse';
    out.push({
      rank: rankOf(c.type === 'ReplicaFailure' ? 'ReplicaFailure' : reason),
      subject,
      reason: `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ''}`,
      message: c.message ?? '',
    });
  }
  return out;
}

/** Pods read per diagnosis, and log lines per failing container. */
const MAX_PODS = 20;
const LOG_LINES = 20;
const MAX_LOGS = 4;

/** The gateway's last refusals in an MCPServer pod: its audit lines with status 401 or 403. */
async function gatewayRefusals(ctx: ToolContext, podsApi: ApiResource, pod: Pod, context?: string): Promise<string[]> {
  if (!(pod.spec?.containers ?? []).some((c) => c.name === GATEWAY_CONTAINER)) return [];
  const { text } = await ctx.kube.logs(
    { context, api: podsApi, namespace: pod.metadata?.namespace, name: pod.metadata!.name! },
    { container: GATEWAY_CONTAINER, tailLines: 500, maxBytes: 256 * 1024 },
  );
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const a = JSON.parse(line) as {
        audit?: string;
        status?: number;
        user?: string;
        method?: string;
        tool?: string;
        time?: string;
      };
      if (a.audit === 'mcp' && (a.status === 401 || a.status === 403))
        out.push(
          `${a.time ?? ''} ${a.status} ${a.user ?? '(no identity)'} ${a.method ?? ''}${a.tool ? ` ${a.tool}` : ''}`.trim(),
        );
    } catch {
      // not an audit line
    }
  }
  return out.slice(-5);
}

async function warningEvents(
  ctx: ToolContext,
  namespace: string,
  names: Set<string>,
  context?: string,
): Promise<Event[]> {
  const api = await ctx.kube.resolve('events', 'v1', context);
  const list = await ctx.kube.list<Event>({ context, api, namespace }, { fieldSelector: 'type=Warning', limit: 500 });
  const when = (e: Event) => String(e.lastTimestamp || e.eventTime || e.firstTimestamp || '');
  return list.items
    .filter((e) => names.has(`${e.involvedObject?.kind}/${e.involvedObject?.name}`))
    .sort((a, b) => when(b).localeCompare(when(a)))
    .slice(0, 10);
}

/** The diagnose tool. */
export function diagnoseTools(): AnyToolDef[] {
  return [
    defineTool({
      name: 'diagnose-workload',
      title: 'Diagnose a workload',
      description:
        'Why a pod or workload (incl. MCPServer) is not working: failing conditions, container states, last logs of failing containers, warning events; most telling first.',
      effect: 'read',
      input: {
        kind: z.string().describe('pod, deployment, statefulset, daemonset, job, mcpserver...; `kind/name` also works'),
        name: z.string().optional(),
        namespace: z.string().optional(),
        context: contextArg,
      },
      output: {
        kind: z.string(),
        name: z.string(),
        namespace: z.string(),
        healthy: z.boolean(),
        findings: z.array(z.object({ subject: z.string(), reason: z.string(), message: z.string() })),
        owners: z.array(z.object({ kind: z.string(), name: z.string() })),
        truncated: z.boolean(),
      },
      run: async (a, ctx) => {
        const { kind, name } = splitKindName(a.kind, a.name);
        if (!name) throw new InvalidArgumentError('name', 'a name is required (as `name`, or `kind/name`)');
        const api = await resolveKind(ctx, kind, undefined, a.context);
        if (!api.namespaced)
          throw new InvalidArgumentError('kind', `${api.kind} is cluster-scoped; diagnose takes pods and workloads`);
        const namespace = nsFor(ctx, api, a.namespace, a.context)!;
        const obj = await ctx.kube.get<Workload>({ context: a.context, api, namespace, name });
        const podsApi = await ctx.kube.resolve('pods', 'v1', a.context);
        let pods: Pod[];
        let podsNote = '';
        if (api.kind === 'Pod') pods = [obj as Pod];
        else {
          let selector: string;
          try {
            selector = selectorOf(obj);
          } catch {
            throw new InvalidArgumentError('kind', `${api.kind} is not a workload (it selects no pods)`);
          }
          const list = await ctx.kube.list<Pod>(
            { context: a.context, api: podsApi, namespace },
            { labelSelector: selector, limit: MAX_PODS },
          );
          pods = list.items;
          if (list.metadata?.continue) podsNote = ` (the first ${MAX_PODS} pods)`;
        }
        const findings: Finding[] = api.kind === 'Pod' ? [] : objectFindings(obj);
        const owners = await ownerChain(ctx, obj, a.context);
        const wantLogs: Array<{ pod: Pod; container: string; previous: boolean }> = [];
        for (const p of pods) {
          const f = podFindings(p);
          findings.push(...f.findings);
          for (const l of f.logs) wantLogs.push({ pod: p, ...l });
        }
        if (api.kind !== 'Pod' && pods.length === 0)
          findings.push({
            rank: rankOf('Pending'),
            subject: `${api.kind.toLowerCase()}/${name}`,
            reason: 'NoPods',
            message: 'the workload has no pods',
          });
        const refusals: string[] = [];
        if (api.kind === 'MCPServer')
          for (const p of pods.slice(0, 3))
            refusals.push(...(await gatewayRefusals(ctx, podsApi, p, a.context).catch(() => [])));
        if (refusals.length)
          findings.push({
            rank: rankOf('GatewayRefusals'),
            subject: `mcpserver/${name}`,
            reason: 'GatewayRefusals',
            message: `the gateway refused ${refusals.length} recent request(s) (401/403); see below`,
          });
        const names = new Set([`${api.kind}/${name}`, ...pods.map((p) => `Pod/${p.metadata?.name}`)]);
        const events = await warningEvents(ctx, namespace, names, a.context).catch((err: unknown) => {
          if (err instanceof KubeError) return [] as Event[];
          throw err;
        });
        findings.sort((x, y) => x.rank - y.rank);
        const healthy = findings.length === 0;

        const out: string[] = [];
        const subject = `${api.kind} ${namespace}/${name}`;
        out.push(
          healthy
            ? `${subject}: no problem found (${pods.length} pod(s)${podsNote}, all containers ready).`
            : `${subject}: ${findings.length} problem(s), most telling first${podsNote}:`,
        );
        for (const f of findings) out.push(`- ${f.subject}: ${f.reason}${f.message ? `: ${f.message}` : ''}`);
        if (owners.length) out.push(`Owner chain: ${owners.map((o) => `${o.kind}/${o.name}`).join(' <- ')}`);
        if (pods.length && api.kind !== 'Pod') {
          out.push('Pods:');
          for (const p of pods) {
            const cs = p.status?.containerStatuses ?? [];
            const ready = cs.filter((c) => c.ready).length;
            const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
            out.push(
              `  ${p.metadata?.name}  ${p.status?.phase ?? ''}  ready ${ready}/${cs.length || (p.spec?.containers ?? []).length}  restarts ${restarts}  ${p.spec?.nodeName ?? '<unscheduled>'}`,
            );
          }
        }
        for (const l of wantLogs.slice(0, MAX_LOGS)) {
          const pn = l.pod.metadata!.name!;
          const got = await ctx.kube
            .logs(
              { context: a.context, api: podsApi, namespace, name: pn },
              { container: l.container, tailLines: LOG_LINES, previous: l.previous, maxBytes: 16 * 1024 },
            )
            .then((r) => r.text.trimEnd())
            .catch((err: unknown) => `<logs unavailable: ${err instanceof Error ? err.message : String(err)}>`);
          out.push(
            `Last ${LOG_LINES} log lines of pod/${pn} container ${l.container}${l.previous ? ' (previous instance)' : ''}:`,
            fence(got, `logs of pod ${namespace}/${pn} container ${l.container}`).text,
          );
        }
        if (refusals.length)
          out.push(
            'Gateway refusals (time, status, caller, method):',
            fence(refusals.join('\n'), `gateway audit of ${namespace}/${name}`).text,
          );
        if (events.length) {
          const lines = events.map(
            (e) =>
              `${e.reason ?? ''} ${String(e.involvedObject?.kind ?? '').toLowerCase()}/${e.involvedObject?.name ?? ''} x${e.count ?? e.series?.count ?? 1}: ${String(
                e.message ?? '',
              )
                .replace(/\s+/g, ' ')
                .trim()}`,
          );
          out.push('Warning events, newest first:', fence(lines.join('\n'), `events in ${namespace}`).text);
        }
        const all = out.join('\n');
        const { text, cut } = budgetText(all, ctx.budget);
        return {
          text: cut
            ? text +
              truncatedNote(`${all.length} characters exceed the budget`, 'describe-resource, get-logs or list-events')
            : text,
          structured: {
            kind: api.kind,
            name,
            namespace,
            healthy,
            findings: findings.map(({ subject: s, reason, message }) => ({ subject: s, reason, message })),
            owners,
            truncated: cut,
          },
        };
      },
    }),
  ];
}
