/**
 * Seed 001's three tools, names and arguments kept exactly (`name`, `image`, `namespace`
 * defaulting to "default"): create-pod (with the seed's `created-by: mcp-server` label, requests
 * 100m/128Mi and limits 500m/512Mi), get-pod-logs, delete-pod. They go through the same gateway
 * and policy as every other tool.
 */
import { z } from 'zod';
import type { Pod } from '../kube.js';
import { contextArg, defineTool, type AnyToolDef } from './registry.js';
import { objectOutput, objectResult } from './common.js';
import { deleteObject, deleteOutput } from './generic.js';
import { previewArg } from './preview.js';
import { logArgs, logOutput, readLogs } from './workloads.js';

/** Labels and resources of seed 001's create-pod. */
export const SEED_POD = {
  labels: { 'created-by': 'mcp-server' },
  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
};

/** The seed's tools. */
export function seedTools(): AnyToolDef[] {
  const ns = z.string().optional().describe('Target namespace (default "default")');
  return [
    defineTool({
      name: 'create-pod',
      title: 'Create a pod',
      description:
        'Create a simple pod with specified image and name (label created-by=mcp-server, requests 100m CPU/128Mi, limits 500m/512Mi).',
      effect: 'write',
      input: {
        name: z.string().min(1).describe('Pod name'),
        image: z.string().min(1).describe('Container image'),
        namespace: ns,
        labels: z.record(z.string(), z.string()).optional().describe('extra labels'),
        context: contextArg,
      },
      output: objectOutput,
      run: async (a, ctx) => {
        const api = await ctx.kube.resolve('pods', 'v1', a.context);
        const namespace = a.namespace || 'default';
        const body = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: a.name, namespace, labels: { ...(a.labels ?? {}), ...SEED_POD.labels } },
          spec: { containers: [{ name: a.name, image: a.image, resources: SEED_POD.resources }] },
        };
        const out = await ctx.kube.create<Pod>({ context: a.context, api, namespace }, body);
        const r = objectResult(ctx, out);
        return {
          ...r,
          text: `Created pod "${a.name}" in namespace "${namespace}"\nImage: ${a.image}\nUID: ${out.metadata?.uid}`,
          target: `pods/${namespace}/${a.name}`,
        };
      },
    }),
    defineTool({
      name: 'get-pod-logs',
      title: 'Get pod logs',
      description: 'Retrieve logs from a specific pod (last 100 lines by default), fenced as cluster data.',
      effect: 'read',
      input: {
        name: z.string().min(1).describe('Pod name'),
        namespace: z.string().optional().describe('Pod namespace (default "default")'),
        ...logArgs,
        context: contextArg,
      },
      output: logOutput,
      run: async (a, ctx) => readLogs(ctx, { ...a, pod: a.name, name: undefined, namespace: a.namespace || 'default' }),
    }),
    defineTool({
      name: 'delete-pod',
      title: 'Delete a pod',
      description: 'Delete a specific pod.',
      effect: 'delete',
      input: {
        name: z.string().min(1).describe('Pod name'),
        namespace: z.string().optional().describe('Pod namespace (default "default")'),
        gracePeriodSeconds: z.number().int().min(0).optional(),
        preview: previewArg,
        context: contextArg,
      },
      output: deleteOutput,
      run: async (a, ctx) => {
        const api = await ctx.kube.resolve('pods', 'v1', a.context);
        return deleteObject(ctx, api, a.name, a.namespace || 'default', a);
      },
    }),
  ];
}
