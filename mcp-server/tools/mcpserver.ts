/**
 * MCPServer tools (issue 5, "MCPServer tools"): list-mcpservers (with status columns from the
 * CRD's printer columns), get-mcpserver, apply-mcpserver (validated client-side against the one
 * schema in charts/api/schema.ts, then server-side applied), delete-mcpserver. An AI client can
 * deploy MCP servers through the kubemcp operator.
 */
import { z } from 'zod';
import { API_VERSION, KIND, PLURAL } from '../../charts/api/schema.js';
import { MCPServerValidationError, parseMCPServer } from '../../charts/api/validate.js';
import { KubeError } from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import { contextArg, defineTool, type AnyToolDef, type ToolContext } from './registry.js';
import { listTable, objectOutput, objectResult, tableOutput, tableResult } from './common.js';
import { deleteObject, deleteOutput } from './generic.js';
import { previewArg } from './preview.js';

async function mcpApi(ctx: ToolContext, context?: string) {
  try {
    return await ctx.kube.resolve(PLURAL, API_VERSION, context);
  } catch (err) {
    if (err instanceof KubeError && err.code === 404)
      throw new KubeError(
        404,
        'NotFound',
        `the ${KIND} CRD (${API_VERSION}) is not installed in this cluster: install the kubemcp operator first`,
      );
    throw err;
  }
}

const nsArg = z.string().optional().describe("namespace (default: the context's namespace)");

/** The MCPServer tools. */
export function mcpServerTools(): AnyToolDef[] {
  return [
    defineTool({
      name: 'list-mcpservers',
      title: 'List MCP servers',
      description: 'MCPServer objects with phase, ready replicas, transport and endpoint.',
      effect: 'read',
      input: {
        namespace: nsArg,
        allNamespaces: z.boolean().optional(),
        labelSelector: z.string().optional(),
        context: contextArg,
      },
      output: tableOutput,
      run: async (a, ctx) => {
        const api = await mcpApi(ctx, a.context);
        const r = await listTable(ctx, api, a);
        return tableResult(ctx, KIND, r.table, r);
      },
    }),
    defineTool({
      name: 'get-mcpserver',
      title: 'Get an MCP server',
      description: 'One MCPServer object: spec and status (phase, conditions, endpoint).',
      effect: 'read',
      input: { name: z.string().min(1), namespace: nsArg, context: contextArg },
      output: objectOutput,
      run: async (a, ctx) => {
        const api = await mcpApi(ctx, a.context);
        return objectResult(
          ctx,
          await ctx.kube.get({
            context: a.context,
            api,
            namespace: a.namespace || ctx.kube.defaultNamespace(a.context),
            name: a.name,
          }),
        );
      },
    }),
    defineTool({
      name: 'apply-mcpserver',
      title: 'Create or update an MCP server',
      description:
        'Create or update an MCPServer (server-side apply): the operator then runs it as a Deployment and Service. spec: image (required), transport (stdio|http|streamable-http), port, replicas, config, resources, env, securityContext, serviceAccount.',
      effect: 'write',
      idempotent: true,
      input: {
        name: z.string().min(1),
        namespace: nsArg,
        spec: z.record(z.string(), z.unknown()).describe('MCPServer spec; see the description'),
        labels: z.record(z.string(), z.string()).optional(),
        dryRun: z.boolean().optional(),
        context: contextArg,
      },
      output: objectOutput,
      run: async (a, ctx) => {
        const api = await mcpApi(ctx, a.context);
        const namespace = a.namespace || ctx.kube.defaultNamespace(a.context);
        const obj = {
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name: a.name, namespace, ...(a.labels ? { labels: a.labels } : {}) },
          spec: a.spec,
        };
        try {
          parseMCPServer(obj);
        } catch (err) {
          if (err instanceof MCPServerValidationError) throw new InvalidArgumentError('spec', err.message);
          throw err;
        }
        const out = await ctx.kube.apply({ context: a.context, api, namespace, name: a.name }, obj, {
          dryRun: a.dryRun,
        });
        return objectResult(
          ctx,
          out,
          a.dryRun ? '# server dry run: not persisted\n' : `# mcpserver/${a.name} applied\n`,
        );
      },
    }),
    defineTool({
      name: 'delete-mcpserver',
      title: 'Delete an MCP server',
      description: 'Delete an MCPServer; the operator removes its Deployment, Service and ConfigMap.',
      effect: 'delete',
      input: {
        name: z.string().min(1),
        namespace: nsArg,
        dryRun: z.boolean().optional(),
        preview: previewArg,
        context: contextArg,
      },
      output: deleteOutput,
      run: async (a, ctx) => {
        const api = await mcpApi(ctx, a.context);
        return deleteObject(ctx, api, a.name, a.namespace || ctx.kube.defaultNamespace(a.context), a);
      },
    }),
  ];
}
