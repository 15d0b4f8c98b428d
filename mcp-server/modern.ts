/**
 * The MCP 2026-07-28 leg of `kubemcp serve` (issue 18), on the official SDK v2
 * (`@modelcontextprotocol/server` 2.4.0, `createMcpHandler` with `legacy: 'reject'`, as its
 * docs/migration/support-2026-07-28.md and examples/legacy-routing serve both eras: the modern leg
 * beside a sessionful legacy one). 2025-era clients keep the sessionful leg of ./http.ts
 * (`initialize`, `Mcp-Session-Id`, `resources/subscribe`, elicitation over the session's stream);
 * a request that carries the 2026-07-28 `_meta` envelope, or `server/discover`, comes here.
 *
 * Every request is stateless (no session: any replica answers it). The SDK validates the envelope
 * and the `MCP-Protocol-Version`/`Mcp-Method`/`Mcp-Name` headers, answers `server/discover`, stamps
 * `serverInfo` and the cache fields (`ttlMs`/`cacheScope`, below) and serves `subscriptions/listen`;
 * the per-request low-level `Server` built here answers the seed's surface from the same
 * definitions the 2025 leg registers: the tools (tools/registry.ts: the same policy, validation,
 * budget, masking, metrics and audit, through {@link runToolCall}), seed 001's resources and
 * prompts (resources.ts, prompts.ts) and completion.
 *
 * - `tools/list` is the same compact listing, in the same deterministic order (tools-list.ts);
 *   a tool that needs an API group discovery does not show (top's metrics.k8s.io) is left out,
 *   and a change of that is published to `subscriptions/listen` (toolsListChanged).
 * - A destructive call's confirmation (delete, exec, drain: ToolContext.confirm) becomes an
 *   `InputRequiredResult` (SEP-2322) with one form elicitation `confirm`, when the request's
 *   client capabilities declare elicitation; the client's retry carries the answer in
 *   `inputResponses` and the `requestState` this leg minted: a SHA-256 digest of the tool and its
 *   arguments, so an answer applies only to the call it was asked for (a retry with other
 *   arguments is refused, -32602). It is not a secret and needs none: a client can always answer
 *   its own confirmation, and no replica has to remember anything between the rounds.
 *   Without the capability the call goes on, as 2025-era clients without elicitation do.
 * - Resource subscriptions: `subscriptions/listen` with `resourceSubscriptions` (the two seed URIs)
 *   holds watches on a SubscriptionHub ({@link holdResourceWatches}) for as long as it lasts: over
 *   HTTP its stream ({@link ModernServe.listen}), over stdio until cancelled or the connection ends
 *   ({@link serveModernStdio}); bounded like a session's (`--max-subscriptions`); a change is
 *   published as `notifications/resources/updated` for that URI.
 * - Cache hints: lists may be cached by the requesting client for {@link LIST_TTL_MS}
 *   (`cacheScope: private`: what a caller sees depends on who asks, behind an impersonating
 *   gateway); `resources/read` answers are live cluster state (`ttlMs: 0`).
 */
import { createHash } from 'node:crypto';
import type * as http from 'node:http';
import {
  CLIENT_CAPABILITIES_META_KEY,
  createMcpHandler,
  inputRequired,
  isLegacyRequest,
  ProtocolError,
  Server,
  type McpHttpHandler,
  type Transport,
} from '@modelcontextprotocol/server';
import { toNodeHandler, toWebRequest, type NodeMcpRequestHandler } from '@modelcontextprotocol/node';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { z } from 'zod';
import { INSTRUCTIONS, SERVER_INFO, allTools, withoutContextArgument, type ServerDeps } from './server.js';
import {
  InputNeeded,
  InputStateInvalid,
  runToolCall,
  toolConfig,
  toolListed,
  type AnyToolDef,
  type Confirmation,
  type ToolContext,
} from './tools/registry.js';
import { compactToolCached } from './tools-list.js';
import { discoveryServes, onDiscovery } from './discovery.js';
import {
  NODES_RESOURCE,
  NODES_URI,
  PODS_RESOURCE,
  PODS_TEMPLATE,
  podResources,
  podsNamespace,
  readNodes,
  readPods,
  SubscriptionHub,
  type WatchTarget,
} from './resources.js';
import { completeNamespace, PROMPT_DEFS } from './prompts.js';
import { DEFAULT_BUDGET } from './format.js';
import { errorText } from './kube.js';

/** How long a client may cache a list answer (ms); the tool list changes only with discovery. */
export const LIST_TTL_MS = 60_000;

/** The input key of a destructive call's confirmation (one form elicitation, boolean `confirm`). */
export const CONFIRM_KEY = 'confirm';

const CONFIRM_SCHEMA = {
  type: 'object' as const,
  properties: { confirm: { type: 'boolean' as const, title: 'Confirm', description: 'true to go ahead' } },
  required: ['confirm'],
};

/** The requestState of a confirmation: which call it was asked for (see the module comment). */
export function confirmState(tool: string, args: unknown): string {
  return `confirm.${createHash('sha256')
    .update(JSON.stringify([tool, args]))
    .digest('base64url')}`;
}

/** The per-request context of the SDK's handlers, as far as this leg reads it. */
interface Ctx {
  mcpReq: {
    signal: AbortSignal;
    requestState: () => unknown;
    inputResponses?: Record<string, unknown>;
    envelope?: Record<string, unknown>;
    notify: (n: { method: 'notifications/progress'; params: Record<string, unknown> }) => Promise<void>;
  };
}

type Params = Record<string, unknown> & { _meta?: { progressToken?: string | number } };

/** A 2025-era McpError (the v1 SDK's class: matched by code) as the v2 server's ProtocolError. */
function asProtocolError(err: unknown): Error {
  const e = err as { code?: unknown; message?: unknown; data?: unknown };
  if (err instanceof ProtocolError) return err;
  if (typeof e?.code === 'number' && Number.isInteger(e.code) && e.code < 0)
    return new ProtocolError(e.code, String(e.message ?? 'error').replace(/^MCP error -?\d+: /, ''), e.data);
  return new ProtocolError(-32603, errorText(err));
}

/** The issues of a failed zod parse as one line naming each argument. */
function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(arguments)'}: ${i.message}`).join('; ');
}

/**
 * What a 2026-07-28 client of `kubemcp serve` sees, independent of the transport: the tools the
 * policy enables, seed 001's resources and prompts, completion (see the module comment). Both the
 * HTTP leg ({@link ModernServe}, one `Server` per request) and stdio ({@link serveModernStdio},
 * one per connection) build their servers here.
 */
export class ModernSurface {
  private readonly tools: AnyToolDef[];

  /**
   * @param deps the same dependencies the 2025 leg's servers are built with (./server.ts buildServer).
   * @param subscriptions whether `resources.subscribe` is offered (a transport that holds the
   *   watches of `subscriptions/listen`'s resourceSubscriptions).
   */
  constructor(
    private readonly deps: ServerDeps,
    private readonly subscriptions: boolean,
  ) {
    const multi = deps.contextArgument ?? deps.kube.allowedContexts.length > 1;
    const policy = deps.policy ?? deps.kube.policy;
    const defs = allTools().map((d) => (multi ? d : withoutContextArgument(d)));
    this.tools = defs.filter((d) => toolListed(d, policy));
  }

  /**
   * Calls `changed` whenever discovery shows or hides a tool that needs an API group (top's
   * metrics.k8s.io), so listeners re-list. Returns the function that stops following.
   */
  followTools(changed: () => void): () => void {
    const followed = this.tools.filter((d) => d.apiGroup && !('context' in d.input)).map((d) => d.apiGroup!);
    let served = followed.map((g) => discoveryServes(g)).join();
    return onDiscovery(() => {
      const now = followed.map((g) => discoveryServes(g)).join();
      if (now !== served) changed();
      served = now;
    });
  }

  /** The tools listed now: enabled by the policy, and their API group served (when they need one). */
  listed(): AnyToolDef[] {
    return this.tools.filter((d) => !d.apiGroup || 'context' in d.input || discoveryServes(d.apiGroup));
  }

  /** A server answering 2026-07-28 requests (the factory of `createMcpHandler` and of the SDK's `serveStdio`). */
  server(): Server {
    const deps = this.deps;
    const kube = deps.kube;
    const hint = { ttlMs: LIST_TTL_MS, cacheScope: 'private' as const };
    const server = new Server(SERVER_INFO, {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: this.subscriptions, listChanged: false },
        prompts: { listChanged: false },
        completions: {},
      },
      instructions: INSTRUCTIONS,
      cacheHints: {
        'tools/list': hint,
        'prompts/list': hint,
        'resources/list': hint,
        'resources/templates/list': hint,
        'resources/read': { ttlMs: 0, cacheScope: 'private' },
      },
    });
    const on = (method: string, fn: (params: Params, ctx: Ctx) => Promise<Record<string, unknown>>) =>
      server.setRequestHandler(
        method as 'tools/list',
        (async (request: { params?: Params }, ctx: Ctx) => {
          try {
            return await fn(request.params ?? {}, ctx);
          } catch (err) {
            throw asProtocolError(err);
          }
        }) as never,
      );

    on('tools/list', async () => ({
      tools: this.listed().map((d) => compactToolCached(d.name, toolConfig(d))),
    }));
    on('tools/call', async (params, ctx) => {
      const name = String(params.name ?? '');
      const def = this.listed().find((d) => d.name === name);
      if (!def) throw new ProtocolError(-32602, `Tool ${name} not found`);
      const parsed = z.object(def.input).safeParse(params.arguments ?? {});
      if (!parsed.success)
        return {
          content: [
            {
              type: 'text',
              text: `Input validation error: Invalid arguments for tool ${name}: ${issuesText(parsed.error)}`,
            },
          ],
          isError: true,
        };
      const args = parsed.data as Record<string, unknown>;
      try {
        return (await runToolCall(
          def,
          args,
          {
            kube,
            policy: deps.policy ?? kube.policy,
            budget: deps.budget ?? DEFAULT_BUDGET,
            log: deps.log,
            audit: deps.audit,
            metrics: deps.metrics,
          },
          { progress: progressOf(params, ctx), confirm: confirmOf(name, args, ctx) },
        )) as Record<string, unknown>;
      } catch (err) {
        if (err instanceof InputStateInvalid) throw new ProtocolError(-32602, err.message);
        if (!(err instanceof InputNeeded)) throw err;
        return inputRequired({
          inputRequests: {
            [CONFIRM_KEY]: inputRequired.elicit({ message: err.prompt, requestedSchema: CONFIRM_SCHEMA }),
          },
          requestState: confirmState(name, args),
        }) as unknown as Record<string, unknown>;
      }
    });

    on('resources/list', async () => ({
      resources: [{ uri: NODES_URI, ...NODES_RESOURCE }, ...(await podResources(kube))],
    }));
    on('resources/templates/list', async () => ({
      resourceTemplates: [{ uriTemplate: PODS_TEMPLATE, ...PODS_RESOURCE }],
    }));
    on('resources/read', async (params) => {
      const uri = String(params.uri ?? '');
      if (uri === NODES_URI) return readNodes(kube, uri);
      const ns = podsNamespace(uri);
      if (ns) return readPods(kube, ns, uri);
      // SEP-2164: an unknown resource is Invalid Params naming the URI.
      throw new ProtocolError(-32602, `Resource ${uri} not found`, { uri });
    });

    on('prompts/list', async () => ({
      prompts: PROMPT_DEFS.map((p) => ({
        name: p.name,
        title: p.title,
        description: p.description,
        arguments: Object.entries(p.args).map(([n, a]) => ({
          name: n,
          description: a.description,
          required: a.required,
        })),
      })),
    }));
    on('prompts/get', async (params) => {
      const name = String(params.name ?? '');
      const def = PROMPT_DEFS.find((p) => p.name === name);
      if (!def) throw new ProtocolError(-32602, `Prompt ${name} not found`);
      const given = (params.arguments ?? {}) as Record<string, unknown>;
      const args: Record<string, string | undefined> = {};
      for (const [n, a] of Object.entries(def.args)) {
        const v = given[n];
        if (v !== undefined && typeof v !== 'string')
          throw new ProtocolError(-32602, `Invalid arguments for prompt ${name}: ${n} must be a string`);
        if (a.required && !v) throw new ProtocolError(-32602, `Invalid arguments for prompt ${name}: ${n} is required`);
        args[n] = v;
      }
      return def.build(kube, args);
    });

    on('completion/complete', async (params) => {
      const ref = (params.ref ?? {}) as { type?: unknown; name?: unknown; uri?: unknown };
      const arg = (params.argument ?? {}) as { name?: unknown; value?: unknown };
      const value = typeof arg.value === 'string' ? arg.value : '';
      const prompt = ref.type === 'ref/prompt' ? PROMPT_DEFS.find((p) => p.name === ref.name) : undefined;
      const completes =
        (prompt && typeof arg.name === 'string' && prompt.args[arg.name]?.namespace) ||
        (ref.type === 'ref/resource' && ref.uri === PODS_TEMPLATE && arg.name === 'namespace');
      const values = completes ? await completeNamespace(kube, value) : [];
      return { completion: { values, total: values.length, hasMore: false } };
    });
    return server;
  }
}

/** The 2026-07-28 leg of one `kubemcp serve` HTTP server; see the module comment. */
export class ModernServe {
  private readonly handler: McpHttpHandler;
  private readonly node: NodeMcpRequestHandler;
  private readonly stopDiscovery: () => void;
  private readonly listening = new Set<() => void>();

  /**
   * @param deps the same dependencies the 2025 leg's servers are built with (./server.ts
   *   buildServer); `hub` is the process's SubscriptionHub (none: no resource subscriptions).
   */
  constructor(private readonly deps: ServerDeps) {
    const surface = new ModernSurface(deps, !!deps.hub);
    const onerror = (err: Error) => deps.log.warn({ err: err.message }, '2026-07-28 request failed');
    this.handler = createMcpHandler(() => surface.server(), { legacy: 'reject', onerror });
    this.node = toNodeHandler(this.handler, { onerror });
    this.stopDiscovery = surface.followTools(() => this.handler.notify.toolsChanged());
  }

  /**
   * Whether a request belongs to this leg: a POST whose JSON body is a 2026-07-28 request (the
   * SDK's `isLegacyRequest` is false: it carries the `_meta` envelope, or is `server/discover`).
   * A batch, a GET or DELETE, and any 2025-era message belong to the sessionful leg.
   */
  async wants(req: http.IncomingMessage, body: unknown): Promise<boolean> {
    if (req.method !== 'POST' || !body || typeof body !== 'object' || Array.isArray(body)) return false;
    return !(await isLegacyRequest(await toWebRequest(req as never, body), body));
  }

  /**
   * Answers one request {@link wants} accepted, on `res` (JSON, or an SSE stream for
   * `subscriptions/listen` and for calls that report progress). Never throws: failures are
   * JSON-RPC errors in the answer.
   */
  async serve(req: http.IncomingMessage, res: http.ServerResponse, body: unknown): Promise<void> {
    const m = body as { method?: unknown; params?: { notifications?: { resourceSubscriptions?: unknown } } };
    if (m.method === 'subscriptions/listen') {
      const refused = await this.listen(res, m.params?.notifications?.resourceSubscriptions);
      if (refused) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: (body as { id?: unknown }).id ?? null, error: refused }));
        return;
      }
    }
    await this.node(req as never, res as never, body);
  }

  /**
   * Holds a watch for each URI a `subscriptions/listen` request subscribes to, until `res` closes;
   * each change of one publishes `notifications/resources/updated` for it (debounced 200 ms).
   * @returns undefined when every URI is watched (or none was asked), else the JSON-RPC error
   *   to answer instead (-32602 naming a URI that is not a seed resource or cannot be watched;
   *   -32600 over `--max-subscriptions`), with nothing held.
   */
  async listen(res: http.ServerResponse, uris: unknown): Promise<{ code: number; message: string } | undefined> {
    if (!Array.isArray(uris) || !uris.length) return undefined;
    if (!this.deps.hub)
      return { code: -32602, message: 'resource subscriptions are off on this server (stateless mode)' };
    let closed = false;
    const held = await holdResourceWatches(this.deps.hub, uris, (uri) => {
      if (!closed) this.handler.notify.resourceUpdated(uri);
    });
    if ('code' in held) return held;
    const release = () => {
      closed = true;
      held.release();
      this.listening.delete(release);
    };
    this.listening.add(release);
    res.once('close', release);
    if (res.destroyed) release();
    return undefined;
  }

  /** Ends every open `subscriptions/listen` stream and releases what this leg holds. */
  async close(): Promise<void> {
    this.stopDiscovery();
    for (const r of [...this.listening]) r();
    await this.handler.close();
  }
}

/**
 * Serves one stdio connection whose opening request was a 2026-07-28 one (./stdio.ts decides by
 * the first request it reads) with the SDK v2's `serveStdio` (`legacy: 'reject'`: the era is
 * pinned per connection) over `transport`, kubemcp's stdio framing (SafeStdioServerTransport:
 * oversized and malformed lines answered, never fatal). The servers come from a
 * {@link ModernSurface}; a tool list change is sent to each (the SDK's stdio listen router
 * delivers it to the `subscriptions/listen` requests that asked for it).
 *
 * Resource subscriptions: a `subscriptions/listen` whose `resourceSubscriptions` names the seed's
 * resources holds their watches ({@link holdResourceWatches}, on a hub of this connection's own,
 * bounded by `--max-subscriptions`) until the client cancels that request
 * (`notifications/cancelled`) or the connection ends; a change is sent as
 * `notifications/resources/updated`, which the SDK's router stamps for each listen that asked for
 * that URI. A listen naming a URI that cannot be watched is answered with the error and reaches
 * nothing. Messages are handed to the SDK in the order they arrived.
 * @returns how to end the connection (closes the transport, releases every watch).
 */
export function serveModernStdio(deps: ServerDeps, transport: Transport): { close: () => Promise<void> } {
  const hub = new SubscriptionHub(deps, deps.hubOptions);
  const surface = new ModernSurface(deps, true);
  const servers = new Set<Server>();
  // The listens holding watches, by the JSON-RPC id of their request (as the SDK's router keys them).
  // A connection is one session: its listens together hold at most --max-subscriptions URIs.
  const listens = new Map<string | number, { release: () => void; count: number }>();
  const held = () => [...listens.values()].reduce((n, l) => n + l.count, 0);
  const drop = (id: string | number) => {
    listens.get(id)?.release();
    listens.delete(id);
  };
  const releaseAll = () => {
    for (const l of listens.values()) l.release();
    listens.clear();
  };
  const updated = (uri: string) => {
    for (const s of servers) s.sendResourceUpdated({ uri }).catch(() => undefined);
  };
  let order: Promise<void> = Promise.resolve();
  // Between the SDK's handler and the transport, installed when the SDK starts the transport (which
  // hands over the lines queued before it, the opening request among them).
  const intercept = () => {
    const deliver = transport.onmessage!.bind(transport);
    transport.onmessage = (message, extra) => {
      const m = message as {
        id?: string | number;
        method?: string;
        params?: { requestId?: string | number; notifications?: { resourceSubscriptions?: unknown } };
      };
      order = order.then(async () => {
        if (m.method === 'notifications/cancelled' && m.params?.requestId !== undefined) drop(m.params.requestId);
        else if (m.method === 'subscriptions/listen' && m.id !== undefined) {
          const uris = m.params?.notifications?.resourceSubscriptions;
          if (Array.isArray(uris) && uris.length) {
            drop(m.id); // a reused id replaces its listen, as the SDK's router does
            const watches = await holdResourceWatches(hub, uris, updated, held());
            if ('code' in watches)
              return transport.send({ jsonrpc: '2.0', id: m.id, error: watches }).catch(() => undefined);
            listens.set(m.id, watches);
          }
        }
        deliver(message, extra);
      });
    };
  };
  const start = transport.start.bind(transport);
  transport.start = async () => {
    intercept();
    await start();
  };
  const handle = serveStdio(
    () => {
      const server = surface.server();
      servers.add(server);
      server.onclose = () => servers.delete(server);
      return server;
    },
    {
      legacy: 'reject',
      transport,
      onerror: (err) => deps.log.warn({ err: err.message }, '2026-07-28 stdio message failed'),
    },
  );
  const prevClose = transport.onclose;
  transport.onclose = () => {
    releaseAll();
    prevClose?.();
  };
  const stop = surface.followTools(() => {
    for (const s of servers) s.sendToolListChanged().catch(() => undefined);
  });
  return {
    close: async () => {
      stop();
      releaseAll();
      hub.close();
      await handle.close();
    },
  };
}

/**
 * Holds a watch on the shared SubscriptionHub for each URI a `subscriptions/listen` request's
 * `resourceSubscriptions` names; each change of one calls `onChange(uri)`, debounced 200 ms per URI.
 * Shared by the HTTP leg ({@link ModernServe.listen}) and the stdio one ({@link serveModernStdio}).
 * @param uris the request's `notifications.resourceSubscriptions` (client input: non-strings are
 *   ignored, duplicates counted once).
 * @param held URIs the caller's session already holds in other listens (stdio: the connection's);
 *   they and these together stay within the hub's `--max-subscriptions`.
 * @returns what releases every watch (idempotent) and how many URIs it holds, or the JSON-RPC
 *   error to answer instead, with nothing held: -32602 naming a URI that is not a seed resource or
 *   cannot be watched (RBAC, a missing namespace), -32600 over the hub's `--max-subscriptions`.
 */
export async function holdResourceWatches(
  hub: SubscriptionHub,
  uris: readonly unknown[],
  onChange: (uri: string) => void,
  held = 0,
): Promise<{ release: () => void; count: number } | { code: number; message: string }> {
  const wanted = [...new Set(uris.filter((u): u is string => typeof u === 'string'))];
  if (held + wanted.length > hub.maxPerSession)
    return {
      code: -32600,
      message: held
        ? `cannot subscribe to ${wanted.length} more resources: this connection holds ${held} of at most ${hub.maxPerSession} (--max-subscriptions)`
        : `cannot subscribe to ${wanted.length} resources: at most ${hub.maxPerSession} per subscription (--max-subscriptions)`,
    };
  const releases: Array<() => void> = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const release = () => {
    closed = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const r of releases.splice(0)) r();
  };
  for (const uri of wanted) {
    const target = watchTarget(uri);
    if (!target) {
      release();
      return {
        code: -32602,
        message: `cannot subscribe to ${uri}: subscribable resources are ${NODES_URI} and ${PODS_TEMPLATE}`,
      };
    }
    let pending: NodeJS.Timeout | undefined;
    const listener = () => {
      if (closed || pending) return;
      pending = setTimeout(() => {
        timers.delete(pending!);
        pending = undefined;
        if (!closed) onChange(uri);
      }, 200);
      timers.add(pending);
    };
    try {
      releases.push(await hub.acquire(uri, target, listener));
    } catch (err) {
      release();
      return { code: -32602, message: `cannot subscribe to ${uri}: ${errorText(err)}` };
    }
  }
  return { release, count: wanted.length };
}

/** What a subscribable URI watches, or undefined when it is not one of the seed's resources. */
function watchTarget(uri: string): WatchTarget | undefined {
  if (uri === NODES_URI) return { kind: 'nodes' };
  const ns = podsNamespace(uri);
  return ns ? { kind: 'pods', namespace: ns } : undefined;
}

/** The progress reporter of a call: notifications/progress with the client's token, or none. */
function progressOf(params: Params, ctx: Ctx): ToolContext['progress'] {
  const token = params._meta?.progressToken;
  if (token === undefined) return undefined;
  return async (progress, total, message) => {
    await ctx.mcpReq
      .notify({
        method: 'notifications/progress',
        params: { progressToken: token, progress, ...(total !== undefined ? { total } : {}), message },
      })
      .catch(() => undefined);
  };
}

/**
 * The confirmation of a 2026-07-28 call (see the module comment): the answer the retry carries
 * for this call, else {@link InputNeeded} with the question; `unsupported` when the request's
 * client capabilities have no elicitation.
 * @throws InputStateInvalid when the retry's requestState was minted for another call.
 */
function confirmOf(tool: string, args: Record<string, unknown>, ctx: Ctx): ToolContext['confirm'] {
  return async (message): Promise<Confirmation> => {
    const caps = (ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? {}) as { elicitation?: unknown };
    const e = caps.elicitation as { form?: unknown; url?: unknown } | undefined;
    const form = !!e && typeof e === 'object' && (e.form !== undefined || e.url === undefined);
    if (!form) return 'unsupported';
    const state = ctx.mcpReq.requestState();
    const answer = ctx.mcpReq.inputResponses?.[CONFIRM_KEY] as
      { action?: unknown; content?: { confirm?: unknown } } | undefined;
    if (state !== undefined) {
      if (state !== confirmState(tool, args))
        throw new InputStateInvalid('Invalid requestState: it was issued for another call (tool or arguments differ)');
      if (answer && typeof answer === 'object') {
        if (answer.action === 'accept') return answer.content?.confirm === true ? 'accept' : 'decline';
        if (answer.action === 'decline') return 'decline';
        if (answer.action === 'cancel') return 'cancel';
      }
    }
    throw new InputNeeded(typeof message === 'string' ? message : await message());
  };
}
