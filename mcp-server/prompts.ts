/**
 * Seed 001's prompts, names and arguments kept exactly: `troubleshoot-pod` (podName, namespace)
 * and `optimize-resources` (namespace). Better than the seed's (issue 5): each embeds the facts
 * it needs from the cluster (pod status, container states, recent events, resource requests and
 * limits, quotas) so the model starts with facts, then the seed's step-by-step instructions.
 * A fact that cannot be read is stated as such; the prompt never fails for it.
 */
import { z } from 'zod';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { errorText, type Event, type KubeGateway, type Pod } from './kube.js';
import { renderTable, toYaml } from './format.js';
import { namespaceNames } from './resources.js';
import { eventTable } from './tools/generic.js';

async function fact<T>(what: string, f: () => Promise<T>): Promise<T | string> {
  try {
    return await f();
  } catch (err) {
    return `<${what} unavailable: ${errorText(err)}>`;
  }
}

/** The facts of troubleshoot-pod: status summary, container states, resources, events. */
export async function podFacts(kube: KubeGateway, podName: string, namespace: string): Promise<string> {
  const podApi = await kube.resolve('pods', 'v1');
  const pod = await fact('pod', () => kube.get<Pod>({ api: podApi, namespace, name: podName }));
  if (typeof pod === 'string') return `Pod ${namespace}/${podName}: ${pod}`;
  const status = {
    phase: pod.status?.phase,
    reason: pod.status?.reason,
    message: pod.status?.message,
    node: pod.spec?.nodeName,
    podIP: pod.status?.podIP,
    startTime: pod.status?.startTime,
    conditions: (pod.status?.conditions ?? []).map((c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ''}`),
    containers: (pod.status?.containerStatuses ?? []).map((c) => ({
      name: c.name,
      image: c.image,
      ready: c.ready,
      restarts: c.restartCount,
      state: c.state,
      lastState: c.lastState,
    })),
    resources: Object.fromEntries((pod.spec?.containers ?? []).map((c) => [c.name, c.resources ?? {}])),
    volumes: (pod.spec?.volumes ?? []).map((v) => v.name),
    serviceAccount: pod.spec?.serviceAccountName,
    securityContext: pod.spec?.securityContext,
  };
  const evApi = await kube.resolve('events', 'v1');
  const events = await fact('events', async () => {
    const list = await kube.list<Event>(
      { api: evApi, namespace },
      { fieldSelector: `involvedObject.uid=${pod.metadata?.uid ?? ''}` },
    );
    return renderTable(eventTable(list.items, false, 15)) || '<no events>';
  });
  return `Pod ${namespace}/${podName} (live facts, ${new Date().toISOString()}):\n${toYaml(status)}\nRecent events:\n${events}`;
}

/** The facts of optimize-resources: per-container requests/limits, gaps, quotas, limit ranges, HPAs. */
export async function namespaceFacts(kube: KubeGateway, namespace: string): Promise<string> {
  const podApi = await kube.resolve('pods', 'v1');
  const pods = await fact('pods', () => kube.list<Pod>({ api: podApi, namespace }, { limit: 200 }));
  const lines: string[] = [`Namespace ${namespace} (live facts, ${new Date().toISOString()}):`];
  if (typeof pods === 'string') lines.push(pods);
  else {
    const rows: string[][] = [];
    let noReq = 0;
    let noLim = 0;
    for (const p of pods.items) {
      for (const c of p.spec?.containers ?? []) {
        const r = c.resources ?? {};
        if (!r.requests) noReq++;
        if (!r.limits) noLim++;
        rows.push([
          p.metadata?.name ?? '',
          c.name,
          p.status?.phase ?? '',
          r.requests?.cpu ?? '-',
          r.requests?.memory ?? '-',
          r.limits?.cpu ?? '-',
          r.limits?.memory ?? '-',
        ]);
      }
    }
    lines.push(
      `${pods.items.length} pods${pods.metadata?.continue ? ' (first 200)' : ''}; containers without requests: ${noReq}, without limits: ${noLim}`,
    );
    lines.push(
      renderTable({ columns: ['POD', 'CONTAINER', 'PHASE', 'CPU REQ', 'MEM REQ', 'CPU LIM', 'MEM LIM'], rows }) ||
        '<no pods>',
    );
  }
  for (const [kind, label] of [
    ['resourcequotas', 'ResourceQuotas'],
    ['limitranges', 'LimitRanges'],
    ['horizontalpodautoscalers', 'HorizontalPodAutoscalers'],
  ] as const) {
    const v = await fact(label, async () => {
      const api = await kube.resolve(kind);
      const { items } = await kube.list({ api, namespace });
      return items.length
        ? items
            .map(
              (i) =>
                `${i.metadata?.name ?? ''}: ${JSON.stringify(i.spec ?? {})}${i.status ? ` status ${JSON.stringify(i.status)}` : ''}`,
            )
            .join('\n')
        : 'none';
    });
    lines.push(`${label}: ${v}`);
  }
  return lines.join('\n');
}

/** One argument of a prompt: a string, required or not, optionally completed from the namespaces. */
export interface PromptArg {
  description: string;
  required: boolean;
  /** Completed (completion/complete) with the namespaces the client may see. */
  namespace?: boolean;
}

/** A seed 001 prompt, independent of the SDK that serves it (both protocol eras use these). */
export interface PromptDef {
  name: string;
  title: string;
  description: string;
  args: Record<string, PromptArg>;
  /** The prompt's messages, with live facts from the cluster (never throws: facts that fail are named). */
  build: (kube: KubeGateway, args: Record<string, string | undefined>) => Promise<GetPromptResult>;
}

/** The prompts' result shape (MCP 2025-11-25 and 2026-07-28 "Prompts": prompts/get). */
export interface GetPromptResult {
  [key: string]: unknown;
  description: string;
  messages: Array<{ role: 'user'; content: { type: 'text'; text: string } }>;
}

/** Seed 001's two prompts, names and arguments kept. */
export const PROMPT_DEFS: readonly PromptDef[] = [
  {
    name: 'troubleshoot-pod',
    title: 'Troubleshoot a pod',
    description: 'Systematic approach to diagnosing pod problems, starting from the live pod status and recent events',
    args: {
      podName: { description: 'Name of the pod to troubleshoot', required: true },
      namespace: { description: 'Namespace of the pod', required: false, namespace: true },
    },
    build: async (kube, { podName = '', namespace }) => {
      const ns = namespace || 'default';
      const facts = await podFacts(kube, podName, ns).catch((err) => `<facts unavailable: ${errorText(err)}>`);
      return {
        description: `Troubleshooting guide for pod ${podName} in namespace ${ns}`,
        messages: [
          {
            role: 'user',
            content: {
              type: 'text',
              text:
                `Please help me troubleshoot the Kubernetes pod "${podName}" in namespace "${ns}".\n\n${facts}\n\n` +
                'Follow this systematic approach:\n1. Check pod status and phase\n2. Examine recent events\n3. Review container logs (get-pod-logs)\n4. Verify resource requests/limits\n5. Check network connectivity\n6. Validate persistent volume claims\n7. Review security contexts and RBAC\n\n' +
                'Use the facts above first; call the kubemcp tools (describe-resource, get-pod-logs, list-events) for more. Provide a step-by-step diagnosis and concrete fixes.',
            },
          },
        ],
      };
    },
  },
  {
    name: 'optimize-resources',
    title: 'Optimize resources',
    description:
      'Analyze and optimize resource usage of a namespace, starting from its live requests, limits and quotas',
    args: { namespace: { description: 'Namespace to analyze', required: false, namespace: true } },
    build: async (kube, { namespace }) => {
      const ns = namespace || 'default';
      const facts = await namespaceFacts(kube, ns).catch((err) => `<facts unavailable: ${errorText(err)}>`);
      return {
        description: `Resource optimization analysis for namespace ${ns}`,
        messages: [
          {
            role: 'user',
            content: {
              type: 'text',
              text:
                `Please analyze the resource usage in Kubernetes namespace "${ns}" and provide optimization recommendations.\n\n${facts}\n\n` +
                'Please examine:\n1. CPU and memory requests vs limits vs actual usage\n2. Pod resource efficiency and right-sizing opportunities\n3. Horizontal Pod Autoscaler configuration\n4. Resource quotas and limits\n5. Node resource allocation and capacity planning\n\nProvide specific recommendations with YAML examples for improvements.',
            },
          },
        ],
      };
    },
  },
];

/** Completions of a namespace prefix: the namespaces the client may see, at most 100. */
export async function completeNamespace(kube: KubeGateway, value: string | undefined): Promise<string[]> {
  return (await namespaceNames(kube).catch(() => [])).filter((n) => n.startsWith(value ?? '')).slice(0, 100);
}

/** Registers the two prompts on a 2025-era McpServer; call before connect(). */
export function registerPrompts(server: McpServer, deps: { kube: KubeGateway }): void {
  const nsComplete = (value: string | undefined) => completeNamespace(deps.kube, value);
  for (const def of PROMPT_DEFS) {
    const argsSchema: Record<string, z.ZodType<string | undefined>> = {};
    for (const [name, a] of Object.entries(def.args)) {
      const base = a.required
        ? z.string().min(1).describe(a.description)
        : z.string().optional().describe(a.description);
      argsSchema[name] = a.namespace ? completable(base, nsComplete) : base;
    }
    server.registerPrompt(def.name, { title: def.title, description: def.description, argsSchema }, async (args) =>
      def.build(deps.kube, args as Record<string, string | undefined>),
    );
  }
}
