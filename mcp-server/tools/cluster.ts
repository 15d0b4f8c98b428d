/**
 * Cluster tools (issue 5): list-events (by namespace or by object), list-namespaces,
 * list-nodes, list-contexts.
 */
import { z } from 'zod';
import type { Event } from '../kube.js';
import { checkName, InvalidArgumentError } from '../names.js';
import { contextArg, defineTool, type AnyToolDef } from './registry.js';
import { listTable, resolveKind, splitKindName, tableOutput, tableResult } from './common.js';
import { eventTable } from './generic.js';

/** The cluster tools. */
export function clusterTools(): AnyToolDef[] {
  return [
    defineTool({
      name: 'list-events',
      title: 'List events',
      description:
        'Recent events of a namespace, all namespaces, or one object (kind+name), oldest first; `type: Warning` shows only warnings. Messages are fenced cluster data.',
      effect: 'read',
      input: {
        namespace: z.string().optional(),
        allNamespaces: z.boolean().optional(),
        kind: z
          .string()
          .optional()
          .describe('kind of the object the events are about (with name); `kind/name` also works'),
        name: z.string().optional(),
        type: z.enum(['Normal', 'Warning']).optional(),
        limit: z.number().int().min(1).max(1000).optional().describe('most recent N events (default 50)'),
        context: contextArg,
      },
      output: tableOutput,
      run: async (a, ctx) => {
        const api = await ctx.kube.resolve('events', 'v1', a.context);
        const sel: string[] = [];
        if (a.kind) {
          const { kind, name } = splitKindName(a.kind, a.name);
          if (!name) throw new InvalidArgumentError('name', 'events of an object need its name');
          const target = await resolveKind(ctx, kind, undefined, a.context);
          checkName(name, target.group, target.resource);
          sel.push(`involvedObject.kind=${target.kind}`, `involvedObject.name=${name}`);
        } else if (a.name) throw new InvalidArgumentError('kind', 'give kind with name');
        if (a.type) sel.push(`type=${a.type}`);
        const all = !!a.allNamespaces;
        const namespaces = all
          ? ctx.policy.allowedNamespaces.length
            ? ctx.policy.allowedNamespaces
            : [undefined]
          : [a.namespace || ctx.kube.defaultNamespace(a.context)];
        const items: Event[] = [];
        let unread = 0;
        for (const ns of namespaces) {
          const list = await ctx.kube.list<Event>(
            { context: a.context, api, namespace: ns },
            { fieldSelector: sel.join(',') || undefined, limit: 2000 },
          );
          items.push(...list.items);
          // More than 2000 events in a namespace: the oldest pages are not read, and that is a cut too.
          if (list.metadata?.continue) unread += Number(list.metadata.remainingItemCount ?? 1);
        }
        const max = a.limit ?? 50;
        const omitted = Math.max(0, items.length - max) + unread;
        const note = `showing ${Math.min(max, items.length)} of ${items.length + unread}${unread ? '+' : ''} events${items.length > max ? ` (the ${max} most recent)` : ''}${unread ? '; more than 2000 in a namespace were not read' : ''}`;
        return tableResult(
          ctx,
          'Event',
          eventTable(items, all, max),
          { omitted, omittedNote: note },
          'namespace, kind+name, type=Warning or a larger limit',
          `events ${all ? 'in all namespaces' : `in ${namespaces[0]}`}`,
        );
      },
    }),
    defineTool({
      name: 'list-namespaces',
      title: 'List namespaces',
      description: 'Namespaces with status and age (only allowed ones under a namespace allow-list).',
      effect: 'read',
      input: { labelSelector: z.string().optional(), context: contextArg },
      output: tableOutput,
      run: async (a, ctx) => {
        const api = await ctx.kube.resolve('namespaces', 'v1', a.context);
        const r = await listTable(ctx, api, a);
        const allowed = ctx.policy.allowedNamespaces;
        if (allowed.length) r.table.rows = r.table.rows.filter((row) => allowed.includes(row[0]!));
        return tableResult(ctx, 'Namespace', r.table, r);
      },
    }),
    defineTool({
      name: 'list-nodes',
      title: 'List nodes',
      description: 'Nodes with status, roles, age and version.',
      effect: 'read',
      input: { labelSelector: z.string().optional(), context: contextArg },
      output: tableOutput,
      run: async (a, ctx) => {
        const api = await ctx.kube.resolve('nodes', 'v1', a.context);
        const r = await listTable(ctx, api, a);
        return tableResult(ctx, 'Node', r.table, r);
      },
    }),
    defineTool({
      name: 'list-contexts',
      title: 'List kubeconfig contexts',
      description:
        'The kubeconfig contexts, which one is the default and which the server allows (pass one as `context` to other tools).',
      effect: 'read',
      input: {},
      output: tableOutput,
      run: async (_a, ctx) => {
        const rows = ctx.kube
          .contexts()
          .map((c) => [c.default ? '*' : '', c.name, c.cluster, c.user, c.namespace ?? '', c.allowed ? 'yes' : 'no']);
        return tableResult(ctx, 'Context', {
          columns: ['CURRENT', 'NAME', 'CLUSTER', 'AUTHINFO', 'NAMESPACE', 'ALLOWED'],
          rows,
        });
      },
    }),
  ];
}
