/**
 * Tool definitions and their registration on an McpServer: the policy decides which tools are
 * listed (read-only, disable-destructive, allow/deny lists), every call is timed, counted,
 * audited when it mutates, and any failure (KubeError, PolicyError, bad input) comes back as an
 * MCP error result (`isError: true`) with the reason, never as a crash (issue 5).
 */
import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { errorText, type KubeGateway } from '../kube.js';
import type { Policy, ToolEffect } from '../policy.js';
import type { Audit } from '../audit.js';
import type { Metrics } from '../metrics.js';

/** What a tool needs at run time. */
export interface ToolContext {
  kube: KubeGateway;
  policy: Policy;
  /** Response budget in characters of text. */
  budget: number;
  log: Logger;
  /**
   * Reports progress of a long call (MCP `notifications/progress`, 2025-11-25 "Progress"): sent
   * only when the request carried a `progressToken`; `progress` must increase. Never throws.
   */
  progress?: (progress: number, total: number | undefined, message: string) => Promise<void>;
}

/** What a tool returns: the text for the model, the structured content, the audited target. */
export interface ToolOutput {
  text: string;
  structured: Record<string, unknown>;
  /** For the audit line, e.g. `pods/default/web`. */
  target?: string;
}

/** The arguments of a tool whose input schema is the zod shape `I`, as the SDK hands them over after validation. */
export type ToolArgs<I extends z.ZodRawShape> = z.infer<z.ZodObject<I>>;

/**
 * One tool: name (kebab-case verb-noun, as the seed's create-pod), schemas and behaviour.
 * `run` gets the arguments typed from `input` (build definitions with {@link defineTool}).
 */
export interface ToolDef<I extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  effect: ToolEffect;
  /** The tool may be repeated with the same effect (MCP idempotentHint). */
  idempotent?: boolean;
  input: I;
  output: z.ZodRawShape;
  run: (args: ToolArgs<I>, ctx: ToolContext) => Promise<ToolOutput>;
}

/** A tool definition whose argument type is erased, for lists of tools with different inputs. */
export interface AnyToolDef extends Omit<ToolDef, 'run'> {
  /** `args` must satisfy `input`: registerTools only calls it with what the SDK validated against it. */
  run: (args: Record<string, unknown>, ctx: ToolContext) => Promise<ToolOutput>;
}

/**
 * Types a tool's handler from its zod input shape (`z.infer`) and erases the type for the tool
 * list. The SDK parses every tools/call's arguments with `input` before the handler runs
 * (McpServer's validateToolInput; a failure is an error result naming the argument), which is
 * what makes the narrowing below sound.
 */
export function defineTool<I extends z.ZodRawShape>(def: ToolDef<I>): AnyToolDef {
  return { ...def, run: (args, ctx) => def.run(args as ToolArgs<I>, ctx) };
}

/** The part of the SDK's per-request `extra` (RequestHandlerExtra) a tool call uses. */
export interface ToolCallExtra {
  _meta?: { progressToken?: string | number };
  sendNotification?: (n: {
    method: 'notifications/progress';
    params: { progressToken: string | number; progress: number; total?: number; message?: string };
  }) => Promise<void>;
}

/** The progress reporter of one call: a no-op unless the client asked for progress. */
function progressOf(extra: ToolCallExtra | undefined): ToolContext['progress'] {
  const token = extra?._meta?.progressToken;
  const send = extra?.sendNotification;
  if (token === undefined || !send) return undefined;
  return async (progress, total, message) => {
    await send({
      method: 'notifications/progress',
      params: { progressToken: token, progress, ...(total !== undefined ? { total } : {}), message },
    }).catch(() => undefined);
  };
}

/** Dependencies of registerTools. */
export interface RegisterDeps extends ToolContext {
  audit?: Audit;
  metrics?: Metrics;
}

/** Common argument: the kubeconfig context (required when several are allowed). */
export const contextArg = z.string().optional().describe('kubeconfig context; required when the server allows several');

/**
 * Registers every enabled tool of `defs` on `server` (call before connect()).
 * Returns the names registered.
 */
export function registerTools(server: McpServer, defs: AnyToolDef[], deps: RegisterDeps): string[] {
  const names: string[] = [];
  for (const def of defs) {
    if (!deps.policy.toolEnabled(def.name, def.effect)) continue;
    names.push(def.name);
    server.registerTool(
      def.name,
      {
        title: def.title,
        description: def.description,
        inputSchema: def.input,
        outputSchema: def.output,
        annotations: {
          title: def.title,
          readOnlyHint: def.effect === 'read',
          destructiveHint: def.effect === 'delete',
          idempotentHint: def.effect === 'read' || !!def.idempotent,
          openWorldHint: false,
        },
      },
      async (args: Record<string, unknown>, extra?: ToolCallExtra): Promise<CallToolResult> => {
        const started = performance.now();
        // Defence in depth: a tool the policy disables is never registered, and refuses anyway.
        if (!deps.policy.toolEnabled(def.name, def.effect)) {
          return { content: [{ type: 'text', text: `tool ${def.name} is disabled by policy` }], isError: true };
        }
        try {
          const out = await def.run(args ?? {}, { ...deps, progress: progressOf(extra) });
          deps.metrics?.observe(def.name, 'ok', performance.now() - started);
          if (def.effect !== 'read') deps.audit?.record({ tool: def.name, args, target: out.target, result: 'ok' });
          return { content: [{ type: 'text', text: out.text }], structuredContent: out.structured };
        } catch (err) {
          const reason = errorText(err);
          deps.metrics?.observe(def.name, 'error', performance.now() - started);
          if (def.effect !== 'read') deps.audit?.record({ tool: def.name, args, result: 'error', error: reason });
          deps.log.debug({ tool: def.name, err: reason }, 'tool call failed');
          return { content: [{ type: 'text', text: `${def.name} failed: ${reason}` }], isError: true };
        }
      },
    );
  }
  return names;
}
