/**
 * The `kubemcp serve` subcommand: flags, environment fallbacks (the operator sets MCP_TRANSPORT,
 * MCP_PORT and MCP_CONFIG_FILE; PORT as in seed 001), the config file, and startup of the stdio
 * or Streamable HTTP transport. Logs go to stderr (pino), never stdout.
 *
 * Precedence: flag > environment > MCP_CONFIG_FILE > default.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { DEFAULT_BUDGET } from './budget.js';
import { defaultDiscoveryCacheDir } from './discovery.js';

/** Everything `serve` can be told, after flags, environment and config file are merged. */
export interface ServeOptions {
  transport: 'stdio' | 'http';
  port: number;
  host: string;
  readOnly: boolean;
  disableDestructive: boolean;
  allowTools: string[];
  denyTools: string[];
  namespaces: string[];
  denyKinds: string[];
  showSecrets: boolean;
  context?: string;
  allowContexts: string[];
  kubeconfig?: string;
  auditLog: string;
  token?: string;
  stateless: boolean;
  allowedHosts?: string[];
  cors?: string[];
  maxOutput: number;
  /** Most resource subscriptions per MCP session (default 16). */
  maxSubscriptions: number;
  /** Most apiserver watches of the whole server, shared across sessions (default 100). */
  maxWatches: number;
  /** Directory of the discovery disk cache (discovery.ts), or `off`. */
  discoveryCache: string;
  logLevel: string;
}

const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const bool = (v: unknown) => v === true || (typeof v === 'string' && /^(1|true|yes|on)$/i.test(v));

/**
 * Reads MCP_CONFIG_FILE (the operator's config.json: `{ server: { port, transport }, config: {...} }`).
 * `config` keys named like the flags (`read-only`, `namespaces`, `readOnly`...) set options too.
 * @throws Error naming the file when it cannot be read or parsed.
 */
export function readConfigFile(path: string | undefined): Record<string, string> {
  if (!path) return {};
  let doc: any;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`MCP_CONFIG_FILE ${path}: ${(err as Error).message}`);
  }
  const out: Record<string, string> = {};
  if (doc?.server?.port !== undefined) out.port = String(doc.server.port);
  if (doc?.server?.transport) out.transport = String(doc.server.transport);
  for (const [k, v] of Object.entries(doc?.config ?? {})) out[k.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())] = String(v);
  return out;
}

/**
 * The discovery cache directory: `off`, an absolute path, or (unset) the default
 * (discovery.ts, defaultDiscoveryCacheDir).
 * @throws Error naming --discovery-cache when the value is a relative path.
 */
function discoveryCacheOption(value: unknown, env: NodeJS.ProcessEnv): string {
  if (value === undefined || value === '') return defaultDiscoveryCacheDir(env);
  const v = String(value);
  if (v === 'off' || path.isAbsolute(v)) return v;
  throw new Error(`--discovery-cache must be an absolute directory or "off", got "${v}"`);
}

/** Merges flags, environment and config file into ServeOptions. @throws Error for invalid values. */
export function resolveServeOptions(flags: Record<string, any>, env: NodeJS.ProcessEnv = process.env): ServeOptions {
  const file = readConfigFile(flags.config ?? env.MCP_CONFIG_FILE);
  const pick = (flag: string, envName?: string) => flags[flag] ?? (envName ? env[envName] : undefined) ?? file[flag];
  const rawTransport = String(pick('transport', 'MCP_TRANSPORT') ?? 'stdio');
  const transport = rawTransport === 'stdio' ? 'stdio' : rawTransport === 'http' || rawTransport === 'streamable-http' ? 'http' : undefined;
  if (!transport) throw new Error(`unknown transport "${rawTransport}": use stdio, http or streamable-http`);
  const port = Number(flags.port ?? env.MCP_PORT ?? env.PORT ?? file.port ?? 3001);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port "${flags.port ?? env.MCP_PORT ?? env.PORT ?? file.port}"`);
  // In a pod started by the operator (MCP_TRANSPORT set, in-cluster), probes come from the node: bind all interfaces.
  const inPod = !!env.KUBERNETES_SERVICE_HOST && !!env.MCP_TRANSPORT;
  const maxOutput = Number(pick('maxOutput', 'MCP_MAX_OUTPUT') ?? DEFAULT_BUDGET);
  if (!Number.isInteger(maxOutput) || maxOutput < 1000) throw new Error('max-output must be an integer >= 1000');
  const token = pick('token', 'MCP_TOKEN');
  const count = (flag: string, envName: string, dflt: number, cli: string) => {
    const v = Number(pick(flag, envName) ?? dflt);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${cli} must be an integer >= 0`);
    return v;
  };
  return {
    transport,
    port,
    host: String(pick('host', 'MCP_HOST') ?? (inPod ? '0.0.0.0' : '127.0.0.1')),
    readOnly: bool(pick('readOnly', 'MCP_READ_ONLY')),
    disableDestructive: bool(pick('disableDestructive', 'MCP_DISABLE_DESTRUCTIVE')),
    allowTools: list(pick('allowTools', 'MCP_ALLOW_TOOLS')),
    denyTools: list(pick('denyTools', 'MCP_DENY_TOOLS')),
    namespaces: list(pick('namespaces', 'MCP_NAMESPACES')),
    denyKinds: list(pick('denyKinds', 'MCP_DENY_KINDS')),
    showSecrets: bool(pick('showSecrets', 'MCP_SHOW_SECRETS')),
    context: pick('context', 'MCP_CONTEXT'),
    allowContexts: list(pick('allowContexts', 'MCP_ALLOW_CONTEXTS')),
    kubeconfig: flags.kubeconfig,
    auditLog: String(pick('auditLog', 'MCP_AUDIT_LOG') ?? 'stderr'),
    ...(token ? { token: String(token) } : {}),
    stateless: bool(pick('stateless', 'MCP_STATELESS')),
    ...(pick('allowedHosts', 'MCP_ALLOWED_HOSTS') ? { allowedHosts: list(pick('allowedHosts', 'MCP_ALLOWED_HOSTS')) } : {}),
    ...(pick('cors', 'MCP_CORS_ORIGINS') ? { cors: list(pick('cors', 'MCP_CORS_ORIGINS')) } : {}),
    maxOutput,
    maxSubscriptions: count('maxSubscriptions', 'MCP_MAX_SUBSCRIPTIONS', 16, '--max-subscriptions'),
    maxWatches: count('maxWatches', 'MCP_MAX_WATCHES', 100, '--max-watches'),
    discoveryCache: discoveryCacheOption(pick('discoveryCache', 'MCP_DISCOVERY_CACHE'), env),
    logLevel: String(pick('logLevel', 'LOG_LEVEL') ?? 'info').toLowerCase(),
  };
}

/** A pino logger writing to stderr only (stdout carries JSON-RPC in stdio mode). */
export async function stderrLogger(level = 'info'): Promise<Logger> {
  // pino is CommonJS: its default export (module.exports) is the pino function, both when Node
  // loads it and inside the esbuild bundle (build.ts), where a chunk has no named CJS exports.
  const { default: pino } = await import('pino');
  return pino({ level, base: { name: 'kubemcp' } }, pino.destination(2));
}

/** Runs the server with resolved options until it is stopped (stdio: stdin closes; HTTP: SIGINT/SIGTERM). */
export async function runServe(o: ServeOptions): Promise<void> {
  // Loaded here, not at the top: `kubemcp render` and `--help` do not pay for the MCP SDK and client-node.
  // The transport not used is not loaded at all: HTTP (hono, prom-client, Node's fetch) costs a stdio
  // start about a tenth of its time (README, "Speed and memory").
  const [{ Policy }, { KubeGateway }, { DiscoveryDiskCache }] = await Promise.all([import('./policy.js'), import('./kube.js'), import('./discovery.js')]);
  const log = await stderrLogger(o.logLevel);
  const policy = new Policy({
    readOnly: o.readOnly,
    disableDestructive: o.disableDestructive,
    allowTools: o.allowTools,
    denyTools: o.denyTools,
    namespaces: o.namespaces,
    denyKinds: o.denyKinds,
    showSecrets: o.showSecrets,
  });
  const discoveryCache = o.discoveryCache === 'off' ? undefined : new DiscoveryDiskCache(o.discoveryCache, (message) => log.debug({ message }, 'discovery cache not used'));
  const gatewayOptions = { policy, kubeconfig: o.kubeconfig, context: o.context, allowContexts: o.allowContexts, maxWatches: o.maxWatches, discoveryCache };
  const hubOptions = { maxPerSession: o.maxSubscriptions, maxWatches: o.maxWatches };
  // Tools list `context` when --allow-contexts is given (known without the kubeconfig).
  const contextArgument = o.allowContexts.length > 0;
  if (o.transport === 'stdio') {
    // The gateway (and with it the kubeconfig client, a large part of the start) is
    // created on first use: serveStdio answers initialize and tools/list first, then warms it up.
    // With --deny-kinds it is created now: every entry is resolved through discovery at start, and
    // an unknown one stops the start (issue 9, item 9).
    let gateway: InstanceType<typeof KubeGateway> | undefined;
    if (o.denyKinds.length) {
      gateway = new KubeGateway(gatewayOptions);
      await gateway.resolveDenyKinds();
    }
    const [{ serveStdio }, { StartAnswers }, { BUNDLED_START_SNAPSHOT }] = await Promise.all([
      import('./stdio.js'),
      import('./start-answers.js'),
      import('./start-snapshot-data.js'),
    ]);
    await serveStdio({
      log,
      // In the bundle, initialize and tools/list are answered from its snapshot before the SDK loads.
      ...(BUNDLED_START_SNAPSHOT ? { startAnswers: new StartAnswers(BUNDLED_START_SNAPSHOT, policy, contextArgument) } : {}),
      deps: async () => {
        const { Audit } = await import('./audit.js');
        return {
          get kube() {
            return (gateway ??= new KubeGateway(gatewayOptions));
          },
          policy,
          contextArgument,
          log,
          audit: new Audit(o.auditLog),
          budget: o.maxOutput,
          hubOptions,
        };
      },
      // The gateway now; in the background the default context's API discovery (live or from
      // the disk cache) and one GET /version, which opens the keep-alive TLS connection and runs
      // the request path once, so the first call finds all of it ready. A failure is only
      // logged: the first call retries and reports it.
      warmUp: (deps) => {
        const kube = deps.kube;
        void kube
          .resources()
          .then(() => kube.request({ path: '/version', timeoutMs: 10_000 }))
          .catch((err: unknown) => log.debug({ err: (err as Error).message }, 'background warm-up request failed'));
      },
    });
    gateway?.close();
    return;
  }
  // zod without its JIT: compiling a parser per object schema (the SDK's protocol schemas, the
  // tools') costs more CPU at start than it saves on the few messages a session parses.
  (await import('zod')).config({ jitless: true });
  const { Audit } = await import('./audit.js');
  const audit = new Audit(o.auditLog);
  const kube = new KubeGateway(gatewayOptions);
  // Every --deny-kinds entry is resolved through discovery now; an unknown one stops the start.
  await kube.resolveDenyKinds();
  const deps = { kube, contextArgument, log, audit, budget: o.maxOutput, hubOptions };
  const [{ Metrics }, { startHttp }] = await Promise.all([import('./metrics.js'), import('./http.js')]);
  const running = await startHttp(
    { ...deps, metrics: new Metrics() },
    { host: o.host, port: o.port, token: o.token, stateless: o.stateless, allowedHosts: o.allowedHosts, corsOrigins: o.cors },
  );
  process.stderr.write(`kubemcp serve listening on ${running.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await running.close();
  kube.close();
}

/** Registers `kubemcp serve` on the program (cli.ts). */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the Kubernetes MCP server (stdio by default, or Streamable HTTP at /mcp)')
    .option('-t, --transport <transport>', 'stdio | http | streamable-http (env MCP_TRANSPORT; default stdio)')
    .option('-p, --port <port>', 'HTTP port (env MCP_PORT, PORT; default 3001)')
    .option('--host <host>', 'HTTP bind address (env MCP_HOST; default 127.0.0.1, 0.0.0.0 in an operator pod)')
    .option('--read-only', 'only read tools: mutating tools are neither listed nor callable (env MCP_READ_ONLY)')
    .option('--disable-destructive', 'no delete tools or DELETE requests (env MCP_DISABLE_DESTRUCTIVE)')
    .option('--allow-tools <names>', 'comma-separated tools to expose; others are hidden (env MCP_ALLOW_TOOLS)')
    .option('--deny-tools <names>', 'comma-separated tools to hide (env MCP_DENY_TOOLS)')
    .option('--namespaces <names>', 'comma-separated namespace allow-list (env MCP_NAMESPACES)')
    .option('--deny-kinds <kinds>', 'comma-separated kinds/resources refused, e.g. Secret,roles.rbac.authorization.k8s.io (env MCP_DENY_KINDS)')
    .option('--show-secrets', 'do not mask Secret values (env MCP_SHOW_SECRETS)')
    .option('--context <name>', 'kubeconfig context (default: current; env MCP_CONTEXT)')
    .option('--allow-contexts <names>', 'further contexts tools may use via `context`; * for all (env MCP_ALLOW_CONTEXTS)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--audit-log <sink>', 'audit sink for mutating calls: stderr | <file> | off (env MCP_AUDIT_LOG; default stderr)')
    .option('--token <token>', 'require this bearer token on /mcp and /metrics (env MCP_TOKEN)')
    .option('--stateless', 'HTTP without sessions, for many replicas (env MCP_STATELESS)')
    .option('--allowed-hosts <hosts>', 'Host header names accepted (env MCP_ALLOWED_HOSTS; default loopback names on a loopback bind)')
    .option('--cors <origins>', 'CORS origins allowed, * for any (env MCP_CORS_ORIGINS)')
    .option('--max-output <chars>', `response budget in characters (env MCP_MAX_OUTPUT; default ${DEFAULT_BUDGET})`)
    .option('--max-subscriptions <n>', 'resource subscriptions per MCP session (env MCP_MAX_SUBSCRIPTIONS; default 16)')
    .option('--max-watches <n>', 'apiserver watches of the whole server, shared by all sessions (env MCP_MAX_WATCHES; default 100)')
    .option('--discovery-cache <dir>', 'API discovery cache shared by processes, an absolute directory or off (env MCP_DISCOVERY_CACHE; default ~/.cache/kubemcp/discovery)')
    .option('--config <file>', 'config file (env MCP_CONFIG_FILE), the operator\'s config.json')
    .option('--log-level <level>', 'pino level (env LOG_LEVEL; default info)')
    .action(async (flags: Record<string, any>) => {
      try {
        await runServe(resolveServeOptions(flags));
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
