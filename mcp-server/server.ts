/**
 * Builds one McpServer (one per stdio process, one per Streamable HTTP session): the tools the
 * policy enables, seed 001's resources and prompts, resource subscriptions. Everything is
 * registered before connect(), as the SDK requires.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Logger } from 'pino';
import type { KubeGateway } from './kube.js';
import type { Policy } from './policy.js';
import type { Audit } from './audit.js';
import type { Metrics } from './metrics.js';
import { registerTools, type AnyToolDef } from './tools/registry.js';
import { seedTools } from './tools/seed.js';
import { genericTools } from './tools/generic.js';
import { workloadTools } from './tools/workloads.js';
import { clusterTools } from './tools/cluster.js';
import { mcpServerTools } from './tools/mcpserver.js';
import { apiTools } from './tools/api.js';
import { diagnoseTools } from './tools/diagnose.js';
import { execTools } from './tools/exec.js';
import { topTools } from './tools/top.js';
import { nodeTools } from './tools/nodes.js';
import { helmTools } from './tools/helm.js';
import { registerResources, SubscriptionHub, Subscriptions, type HubOptions } from './resources.js';
import { registerPrompts } from './prompts.js';
import { serveCompactToolList } from './tools-list.js';
import { DEFAULT_BUDGET } from './format.js';

/** Name and version reported in `initialize`. */
export const SERVER_INFO = { name: 'kubemcp', version: '0.1.0' };

/** The server's instructions (`initialize` and `server/discover`). */
export const INSTRUCTIONS =
  'Kubernetes through kubemcp. Lists are compact tables; narrow big answers with namespace, labelSelector, fieldSelector or limit. ' +
  'Use describe-resource for one object with its events and pods. Secret values are masked.';

/** Every tool definition, in listing order: the seed's three first. */
export function allTools(): AnyToolDef[] {
  return [
    ...seedTools(),
    ...genericTools(),
    ...workloadTools(),
    ...clusterTools(),
    ...mcpServerTools(),
    ...apiTools(),
    ...diagnoseTools(),
    ...execTools(),
    ...topTools(),
    ...nodeTools(),
    ...helmTools(),
  ];
}

/** A tool without its `context` argument (the gateway then uses the default context). */
export function withoutContextArgument(def: AnyToolDef): AnyToolDef {
  if (!('context' in def.input)) return def;
  const { context: _context, ...input } = def.input;
  return { ...def, input };
}

/**
 * What buildServer needs; one gateway, audit and metrics are shared by all sessions.
 * `kube` is read only when a tool, resource, prompt or subscription runs, never while building,
 * so it may be a getter that creates the gateway on first use (stdio start, command.ts); then
 * `policy` must be given too.
 */
export interface ServerDeps {
  kube: KubeGateway;
  /** The policy deciding which tools are listed (default: `kube.policy`). */
  policy?: Policy;
  /**
   * Whether tools take the `context` argument (default: the gateway allows several contexts).
   * With one context allowed the argument could only name the default, so it is not listed.
   */
  contextArgument?: boolean;
  log: Logger;
  audit?: Audit;
  metrics?: Metrics;
  /** Response budget in characters (default DEFAULT_BUDGET). */
  budget?: number;
  /** The subscription hub shared by all sessions (HTTP); default: one owned by this server. */
  hub?: SubscriptionHub;
  /** Limits of a hub this server creates itself. */
  hubOptions?: HubOptions;
  /** Offer resource subscriptions (default true; stateless HTTP has none: no session to notify). */
  subscriptions?: boolean;
}

/** One MCP server and how to release what it holds (its watches). */
export interface BuiltServer {
  server: McpServer;
  tools: string[];
  /** Undefined when subscriptions are off (stateless HTTP). */
  subscriptions?: Subscriptions;
  close: () => Promise<void>;
}

/** Creates a fully registered McpServer, ready for connect(). */
export function buildServer(deps: ServerDeps): BuiltServer {
  const subscribe = deps.subscriptions !== false;
  const server = new McpServer(SERVER_INFO, {
    capabilities: {
      // get-resource-usage is hidden, and listed again, as discovery shows metrics.k8s.io (registry.ts followApiGroup).
      tools: { listChanged: true },
      resources: { subscribe, listChanged: false },
      prompts: { listChanged: false },
      completions: {},
      logging: {},
    },
    instructions: INSTRUCTIONS,
  });
  const multi = deps.contextArgument ?? deps.kube.allowedContexts.length > 1;
  const defs = multi ? allTools() : allTools().map(withoutContextArgument);
  const tools = serveCompactToolList(server, () =>
    registerTools(server, defs, {
      // A getter: the gateway is not touched (nor created) until a tool runs.
      get kube() {
        return deps.kube;
      },
      policy: deps.policy ?? deps.kube.policy,
      budget: deps.budget ?? DEFAULT_BUDGET,
      log: deps.log,
      audit: deps.audit,
      metrics: deps.metrics,
    }),
  );
  registerResources(server, deps);
  registerPrompts(server, deps);
  const ownHub = subscribe && !deps.hub ? new SubscriptionHub(deps, deps.hubOptions) : undefined;
  const hub = deps.hub ?? ownHub;
  const subscriptions = subscribe && hub ? new Subscriptions(server, deps, hub) : undefined;
  const release = () => {
    subscriptions?.close();
    ownHub?.close();
  };
  const prev = server.server.onclose;
  server.server.onclose = () => {
    release();
    prev?.();
  };
  return {
    server,
    tools,
    ...(subscriptions ? { subscriptions } : {}),
    close: async () => {
      release();
      await server.close();
    },
  };
}
