/**
 * Tool definitions and their registration on an McpServer: the policy decides which tools are
 * listed (read-only, disable-destructive, allow/deny lists), every call is timed, counted,
 * audited when it mutates, and any failure (KubeError, PolicyError, bad input) comes back as an
 * MCP error result (`isError: true`) with the reason, never as a crash (issue 5).
 */
import { z } from 'zod';
import type { McpServer, RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { errorText, type KubeGateway } from '../kube.js';
import type { Policy, ToolEffect } from '../policy.js';
import type { Audit } from '../audit.js';
import type { Metrics } from '../metrics.js';
import { onDiscovery } from '../discovery.js';

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
  /**
   * Asks the user to confirm a destructive call (MCP form elicitation, 2025-06-18 "Elicitation":
   * `elicitation/create` with one required boolean `confirm`). `message` (or the function that
   * builds it, called only when the client can be asked) says what will change. Resolves
   * `unsupported` when the client declared no form elicitation or the session cannot carry a
   * server request (stateless HTTP), else the user's answer; an accept whose `confirm` is not
   * true is a `decline`, a failed or timed-out request a `cancel`. Throws only what `message()` throws.
   */
  confirm?: (message: string | (() => Promise<string>)) => Promise<Confirmation>;
}

/** The answer of {@link ToolContext.confirm}: go on only on `accept` (or `unsupported`, as before elicitation). */
export type Confirmation = 'accept' | 'decline' | 'cancel' | 'unsupported';

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
  /**
   * An API group the tool needs (`metrics.k8s.io`): listed until a discovery shows the group is
   * not served, hidden while it is not (see {@link followApiGroup}).
   */
  apiGroup?: string;
  /**
   * Kinds the tool reads to do anything at all (Helm's tools: Secrets): not listed when the
   * policy denies one of them (`--deny-kinds`), as it could only ever answer "refused".
   */
  needsKinds?: ReadonlyArray<{ group: string; resource: string; kind: string }>;
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
  requestId?: string | number;
  sessionId?: string;
  signal?: AbortSignal;
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

/** How long a confirmation waits for the user's answer (ms). */
const CONFIRM_TIMEOUT_MS = 10 * 60_000;

/**
 * The confirmation of one call, asked through the session's own server (one McpServer per stdio
 * process or HTTP session), related to the call's request so Streamable HTTP sends it on the
 * call's stream. A stateless HTTP session answers in JSON and could never deliver it: unsupported.
 */
function confirmOf(server: McpServer, extra: ToolCallExtra | undefined, log: Logger): ToolContext['confirm'] {
  return async (message) => {
    const s = server.server;
    if (!s.getClientCapabilities()?.elicitation?.form) return 'unsupported';
    if (s.transport instanceof StreamableHTTPServerTransport && extra?.sessionId === undefined) return 'unsupported';
    const text = typeof message === 'string' ? message : await message();
    try {
      const r = await s.elicitInput(
        {
          message: text,
          requestedSchema: {
            type: 'object',
            properties: { confirm: { type: 'boolean', title: 'Confirm', description: 'true to go ahead' } },
            required: ['confirm'],
          },
        },
        { relatedRequestId: extra?.requestId, signal: extra?.signal, timeout: CONFIRM_TIMEOUT_MS },
      );
      if (r.action === 'accept') return r.content?.confirm === true ? 'accept' : 'decline';
      return r.action;
    } catch (err) {
      log.debug({ err: errorText(err) }, 'confirmation request failed');
      return 'cancel';
    }
  };
}

/** Dependencies of registerTools. */
export interface RegisterDeps extends ToolContext {
  audit?: Audit;
  metrics?: Metrics;
}

/** Common argument: the kubeconfig context (required when several are allowed). */
export const contextArg = z.string().optional().describe('kubeconfig context; required when the server allows several');

/** Whether the policy lists `def` (enabled, and no kind it needs is denied). */
export function toolListed(def: AnyToolDef, policy: Policy): boolean {
  return policy.toolEnabled(def.name, def.effect) && !def.needsKinds?.some((k) => policy.kindDenied(k));
}

/**
 * A tool's listing as the SDKs register it: title, description, zod input and output shapes and
 * the MCP annotations (2025-06-18 "Tools": readOnlyHint for reads, destructiveHint for deletes and
 * exec, idempotentHint for reads and idempotent writes, never open-world). Shared by both eras.
 */
export function toolConfig(def: AnyToolDef) {
  return {
    title: def.title,
    description: def.description,
    inputSchema: def.input,
    outputSchema: def.output,
    annotations: {
      title: def.title,
      readOnlyHint: def.effect === 'read',
      destructiveHint: def.effect === 'delete' || def.effect === 'exec',
      idempotentHint: def.effect === 'read' || !!def.idempotent,
      openWorldHint: false,
    },
  };
}

/**
 * Thrown through a tool by a confirmation that must be asked in a later round (MCP 2026-07-28
 * multi round-trip requests: the answer comes with the client's retry). The caller of
 * {@link runToolCall} turns it into an InputRequiredResult; it is never an error result.
 */
export class InputNeeded extends Error {
  constructor(readonly prompt: string) {
    super('input required');
  }
}

/**
 * Thrown through a tool by a confirmation whose retry carries a `requestState` minted for another
 * call (2026-07-28 only); the caller of {@link runToolCall} answers Invalid Params (-32602).
 */
export class InputStateInvalid extends Error {}

/**
 * One tools/call of `def` with validated `args`, the same in both eras: the policy checked again,
 * the call timed and counted, audited when it mutates, and any failure turned into an MCP error
 * result naming the reason (issue 5). `extras` carries the era's progress and confirmation.
 * @throws InputNeeded when the confirmation must be asked in another round, InputStateInvalid
 *   when the retry's state belongs to another call (2026-07-28 only).
 */
export async function runToolCall(
  def: AnyToolDef,
  args: Record<string, unknown>,
  deps: RegisterDeps,
  extras: Pick<ToolContext, 'progress' | 'confirm'>,
): Promise<CallToolResult> {
  const started = performance.now();
  // Defence in depth: a tool the policy disables is never registered, and refuses anyway.
  if (!deps.policy.toolEnabled(def.name, def.effect)) {
    return { content: [{ type: 'text', text: `tool ${def.name} is disabled by policy` }], isError: true };
  }
  try {
    const out = await def.run(args ?? {}, { ...deps, ...extras });
    deps.metrics?.observe(def.name, 'ok', performance.now() - started);
    if (def.effect !== 'read') deps.audit?.record({ tool: def.name, args, target: out.target, result: 'ok' });
    return { content: [{ type: 'text', text: out.text }], structuredContent: out.structured };
  } catch (err) {
    if (err instanceof InputNeeded || err instanceof InputStateInvalid) throw err;
    const reason = errorText(err);
    deps.metrics?.observe(def.name, 'error', performance.now() - started);
    if (def.effect !== 'read') deps.audit?.record({ tool: def.name, args, result: 'error', error: reason });
    deps.log.debug({ tool: def.name, err: reason }, 'tool call failed');
    return { content: [{ type: 'text', text: `${def.name} failed: ${reason}` }], isError: true };
  }
}

/**
 * Registers every enabled tool of `defs` on `server` (call before connect()).
 * Returns the names registered.
 */
export function registerTools(server: McpServer, defs: AnyToolDef[], deps: RegisterDeps): string[] {
  const names: string[] = [];
  for (const def of defs) {
    if (!toolListed(def, deps.policy)) continue;
    names.push(def.name);
    const registered = server.registerTool(
      def.name,
      toolConfig(def),
      async (args: Record<string, unknown>, extra?: ToolCallExtra): Promise<CallToolResult> =>
        runToolCall(def, args, deps, { progress: progressOf(extra), confirm: confirmOf(server, extra, deps.log) }),
    );
    // With several contexts, one context's discovery says nothing of another's: always listed.
    if (def.apiGroup && !('context' in def.input)) followApiGroup(server, registered, def.apiGroup);
  }
  return names;
}

/**
 * Lists `tool` only while discovery serves `group`: it stays listed until a discovery result of
 * this process (discovery.ts onDiscovery: live, or from the disk cache, never requested here, so
 * listing needs no cluster) lacks the group; it is then disabled (hidden from tools/list; the
 * SDK refuses calls to it), and enabled again by a result that has it (after the gateway's
 * discovery TTL, or a fresh discovery for an unknown kind). Each change sends
 * notifications/tools/list_changed (the SDK declares `tools.listChanged`). Stops following
 * when the server closes.
 */
function followApiGroup(server: McpServer, tool: RegisteredTool, group: string): void {
  const stop = onDiscovery((resources) => {
    const served = resources.some((r) => r.group === group);
    if (served === tool.enabled) return;
    tool.enabled = served; // not enable()/disable(): their notification's rejection would go unhandled
    if (server.isConnected()) server.server.sendToolListChanged().catch(() => undefined);
  });
  const prev = server.server.onclose;
  server.server.onclose = () => {
    stop();
    prev?.();
  };
}
