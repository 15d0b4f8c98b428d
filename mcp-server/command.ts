/**
 * The `kubemcp serve` subcommand: flags, their environment variables (commander's
 * `Option.env`; the operator sets MCP_TRANSPORT, MCP_PORT and MCP_CONFIG_FILE; PORT as in
 * seed 001), the config file, and startup of the stdio or Streamable HTTP transport. Logs go to
 * stderr (pino), never stdout.
 *
 * Precedence: flag > environment > MCP_CONFIG_FILE > default. Commander applies the first two
 * (an environment variable never overrides a flag given on the command line); the config file
 * and the defaults fill what neither set (resolveServeOptions).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { DEFAULT_BUDGET } from './budget.js';
import { defaultDiscoveryCacheDir } from './discovery.js';
import { DEFAULT_DRAIN_SECONDS, DRAIN_SECONDS_ENV, parseDrainSeconds } from '../lib/http-drain.js';

/** Everything `serve` can be told, after flags, environment and config file are merged. */
export interface ServeOptions {
  transport: 'stdio' | 'http';
  port: number;
  host: string;
  readOnly: boolean;
  disableDestructive: boolean;
  /** With disableDestructive, still allow exec-pod (PolicyOptions.allowExec). */
  allowExec: boolean;
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
  /** HTTP: serve 2025-era clients only (no MCP 2026-07-28 leg; a gateway in front translates). */
  legacyOnly: boolean;
  /**
   * `gateway`: act as the caller the pod's gateway verified (issue 17): HTTP only; identity taken
   * only from loopback peers' `X-Remote-User`/`X-Remote-Group`, sent as `Impersonate-*`.
   */
  impersonate?: 'gateway';
  allowedHosts?: string[];
  cors?: string[];
  maxOutput: number;
  /** Most resource subscriptions per MCP session (default 16). */
  maxSubscriptions: number;
  /** Most apiserver watches of the whole server, shared across sessions (default 100). */
  maxWatches: number;
  /** Directory of the discovery disk cache (discovery.ts), or `off`. */
  discoveryCache: string;
  /**
   * HTTP: the drain deadline on SIGTERM in seconds (../lib/http-drain.ts, default
   * {@link DEFAULT_DRAIN_SECONDS}); see {@link runServe} for the order in a pod behind the gateway.
   */
  drainSeconds: number;
  logLevel: string;
}

/**
 * What commander hands the action: each flag given on the command line or by its environment
 * variable (strings, booleans for the on/off flags), undefined otherwise.
 */
export interface ServeFlags {
  transport?: string;
  port?: string;
  host?: string;
  readOnly?: boolean;
  disableDestructive?: boolean;
  allowExec?: boolean;
  allowTools?: string;
  denyTools?: string;
  namespaces?: string;
  denyKinds?: string;
  showSecrets?: boolean;
  context?: string;
  allowContexts?: string;
  kubeconfig?: string;
  auditLog?: string;
  token?: string;
  stateless?: boolean;
  legacyOnly?: boolean;
  impersonate?: string;
  allowedHosts?: string;
  cors?: string;
  maxOutput?: string;
  maxSubscriptions?: string;
  maxWatches?: string;
  discoveryCache?: string;
  drainSeconds?: string;
  config?: string;
  logLevel?: string;
}

const list = (v: string | boolean | undefined) =>
  (typeof v === 'string' ? v : '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const TRUE = /^(1|true|yes|on)$/i;
const FALSE = /^(0|false|no|off|)$/i;
const bool = (v: string | boolean | undefined) => v === true || (typeof v === 'string' && TRUE.test(v.trim()));

/**
 * Parses the value of an on/off flag (`--read-only false`, `MCP_READ_ONLY=0`): 1/true/yes/on or
 * 0/false/no/off (any case), empty is off.
 * @throws commander's InvalidArgumentError for anything else (commander names the flag or variable).
 */
export function parseBool(v: string): boolean {
  if (TRUE.test(v.trim())) return true;
  if (FALSE.test(v.trim())) return false;
  throw new InvalidArgumentError('expected true/false, yes/no, on/off or 1/0.');
}

/**
 * Reads MCP_CONFIG_FILE (the operator's config.json: `{ server: { port, transport }, config: {...} }`).
 * `config` keys named like the flags (`read-only`, `namespaces`, `readOnly`...) set options too.
 * @throws Error naming the file when it cannot be read or parsed.
 */
export function readConfigFile(path: string | undefined): Record<string, string> {
  if (!path) return {};
  let doc: { server?: { port?: unknown; transport?: unknown }; config?: unknown } | null;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8')) as typeof doc;
  } catch (err) {
    throw new Error(`MCP_CONFIG_FILE ${path}: ${(err as Error).message}`);
  }
  const out: Record<string, string> = {};
  if (doc?.server?.port !== undefined) out.port = String(doc.server.port);
  if (doc?.server?.transport) out.transport = String(doc.server.transport);
  const config = doc?.config && typeof doc.config === 'object' ? doc.config : {};
  for (const [k, v] of Object.entries(config))
    out[k.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())] = String(v);
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

/** `--drain-seconds` (MCP_DRAIN_SECONDS, config `drain-seconds`). @throws Error naming the flag for a bad value. */
function drainSecondsOption(value: unknown): number {
  if (value === undefined || value === '') return DEFAULT_DRAIN_SECONDS;
  try {
    return parseDrainSeconds(String(value));
  } catch (err) {
    throw new Error(`--drain-seconds: ${(err as Error).message}`);
  }
}

/**
 * Merges the flags (command line, then environment, as commander resolved them), the config
 * file and the defaults into ServeOptions. `env` is read only for what no flag carries: PORT
 * (seed 001's fallback after MCP_PORT: commander takes one variable per option) and the
 * operator-pod signal (KUBERNETES_SERVICE_HOST with MCP_TRANSPORT).
 * @throws Error naming the flag for invalid values, or the config file when it cannot be read.
 */
export function resolveServeOptions(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServeOptions {
  const file = readConfigFile(flags.config);
  const pick = <K extends keyof ServeFlags>(flag: K): ServeFlags[K] | string | undefined => flags[flag] ?? file[flag];
  const rawTransport = String(pick('transport') ?? 'stdio');
  const transport =
    rawTransport === 'stdio'
      ? 'stdio'
      : rawTransport === 'http' || rawTransport === 'streamable-http'
        ? 'http'
        : undefined;
  if (!transport) throw new Error(`unknown transport "${rawTransport}": use stdio, http or streamable-http`);
  const rawPort = flags.port ?? env.PORT ?? file.port;
  const port = Number(rawPort ?? 3001);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port "${rawPort}"`);
  // In a pod started by the operator (MCP_TRANSPORT set, in-cluster), probes come from the node: bind all interfaces.
  const inPod = !!env.KUBERNETES_SERVICE_HOST && !!env.MCP_TRANSPORT;
  const maxOutput = Number(pick('maxOutput') ?? DEFAULT_BUDGET);
  if (!Number.isInteger(maxOutput) || maxOutput < 1000) throw new Error('--max-output must be an integer >= 1000');
  const token = pick('token');
  const count = (flag: 'maxSubscriptions' | 'maxWatches', dflt: number, cli: string) => {
    const v = Number(pick(flag) ?? dflt);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${cli} must be an integer >= 0`);
    return v;
  };
  const context = pick('context');
  const allowedHosts = pick('allowedHosts');
  const cors = pick('cors');
  const impersonate = String(pick('impersonate') ?? 'off');
  if (impersonate !== 'off' && impersonate !== 'gateway')
    throw new Error(`--impersonate must be "gateway" or "off", got "${impersonate}"`);
  if (impersonate === 'gateway' && transport !== 'http')
    throw new Error(
      '--impersonate gateway needs the HTTP transport (-t http): over stdio the server acts with its kubeconfig identity',
    );
  if (impersonate === 'gateway' && token)
    throw new Error('--impersonate gateway and --token exclude each other: the gateway authenticates callers');
  return {
    transport,
    port,
    host: String(pick('host') ?? (inPod ? '0.0.0.0' : '127.0.0.1')),
    readOnly: bool(pick('readOnly')),
    disableDestructive: bool(pick('disableDestructive')),
    allowExec: bool(pick('allowExec')),
    allowTools: list(pick('allowTools')),
    denyTools: list(pick('denyTools')),
    namespaces: list(pick('namespaces')),
    denyKinds: list(pick('denyKinds')),
    showSecrets: bool(pick('showSecrets')),
    ...(context ? { context: String(context) } : {}),
    allowContexts: list(pick('allowContexts')),
    ...(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {}),
    auditLog: String(pick('auditLog') ?? 'stderr'),
    ...(token ? { token: String(token) } : {}),
    stateless: bool(pick('stateless')),
    legacyOnly: bool(pick('legacyOnly')),
    ...(impersonate === 'gateway' ? { impersonate: 'gateway' as const } : {}),
    ...(allowedHosts ? { allowedHosts: list(allowedHosts) } : {}),
    ...(cors ? { cors: list(cors) } : {}),
    maxOutput,
    maxSubscriptions: count('maxSubscriptions', 16, '--max-subscriptions'),
    maxWatches: count('maxWatches', 100, '--max-watches'),
    discoveryCache: discoveryCacheOption(pick('discoveryCache'), env),
    drainSeconds: drainSecondsOption(pick('drainSeconds')),
    logLevel: String(pick('logLevel') ?? 'info').toLowerCase(),
  };
}

/** A pino logger writing to stderr only (stdout carries JSON-RPC in stdio mode). */
export async function stderrLogger(level = 'info'): Promise<Logger> {
  // pino is CommonJS: its default export (module.exports) is the pino function, both when Node
  // loads it and inside the esbuild bundle (build.ts), where a chunk has no named CJS exports.
  const { default: pino } = await import('pino');
  return pino({ level, base: { name: 'kubemcp' } }, pino.destination(2));
}

/**
 * Runs the server with resolved options until it is stopped (stdio: stdin closes; HTTP: SIGINT/SIGTERM).
 *
 * HTTP and SIGTERM (issue 18, "Rollouts drain"; ../lib/http-drain.ts): the server drains, `/ready`
 * 503 at once, a new session's `initialize` 503 + Retry-After, in-flight requests and existing
 * sessions served until none is in flight (at least 2 s, the endpoint propagation) or
 * `drainSeconds`, then exit 0. SIGINT closes at once.
 *
 * Order in an MCPServer pod behind the gateway (charts/mcpserver.ts): every container gets SIGTERM
 * after its own preStop hook. The gateway has none and drains at once; this server container's
 * preStop hook is an HTTP GET on the gateway's `/.kubemcp/drained`, which answers only when the
 * gateway's drain has ended, so this process gets SIGTERM only once the gateway forwards nothing
 * more: it keeps serving every request the gateway still passes during the gateway's drain, and its
 * own drain then finds nothing in flight. Standalone (no gateway) its own drain does the same job.
 */
export async function runServe(o: ServeOptions): Promise<void> {
  // Loaded here, not at the top: `kubemcp render` and `--help` do not pay for the MCP SDK and client-node.
  // The transport not used is not loaded at all: HTTP (hono, prom-client, Node's fetch) costs a stdio
  // start about a tenth of its time (docs/serve.md, "Speed and memory").
  const [{ Policy }, { KubeGateway }, { DiscoveryDiskCache }] = await Promise.all([
    import('./policy.js'),
    import('./kube.js'),
    import('./discovery.js'),
  ]);
  const log = await stderrLogger(o.logLevel);
  const policy = new Policy({
    readOnly: o.readOnly,
    disableDestructive: o.disableDestructive,
    allowExec: o.allowExec,
    allowTools: o.allowTools,
    denyTools: o.denyTools,
    namespaces: o.namespaces,
    denyKinds: o.denyKinds,
    showSecrets: o.showSecrets,
  });
  const discoveryCache =
    o.discoveryCache === 'off'
      ? undefined
      : new DiscoveryDiskCache(o.discoveryCache, (message) => log.debug({ message }, 'discovery cache not used'));
  const gatewayOptions = {
    policy,
    kubeconfig: o.kubeconfig,
    context: o.context,
    allowContexts: o.allowContexts,
    maxWatches: o.maxWatches,
    discoveryCache,
  };
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
      ...(BUNDLED_START_SNAPSHOT
        ? { startAnswers: new StartAnswers(BUNDLED_START_SNAPSHOT, policy, contextArgument) }
        : {}),
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
          .then(() => kube.request({ path: '/version', timeoutMs: 10_000, asServer: true }))
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
  const kube = new KubeGateway({ ...gatewayOptions, impersonate: o.impersonate === 'gateway' });
  // Every --deny-kinds entry is resolved through discovery now; an unknown one stops the start.
  await kube.resolveDenyKinds();
  const deps = { kube, contextArgument, log, audit, budget: o.maxOutput, hubOptions };
  const [{ Metrics }, { startHttp }] = await Promise.all([import('./metrics.js'), import('./http.js')]);
  const running = await startHttp(
    { ...deps, metrics: new Metrics() },
    {
      host: o.host,
      port: o.port,
      token: o.token,
      stateless: o.stateless,
      legacyOnly: o.legacyOnly,
      ...(o.impersonate ? { impersonate: o.impersonate } : {}),
      allowedHosts: o.allowedHosts,
      corsOrigins: o.cors,
      drain: { deadlineMs: o.drainSeconds * 1000 },
    },
  );
  process.stderr.write(`kubemcp serve listening on ${running.url}\n`);
  const { untilSignal } = await import('../lib/http-drain.js');
  await untilSignal(running.drain);
  await running.close();
  kube.close();
  log.info('kubemcp serve: exiting');
}

/**
 * Adds the `serve` flags to `cmd`, each with its environment variable (commander's `Option.env`:
 * a flag on the command line wins over its variable). On/off flags take an optional value
 * (`--read-only`, `--read-only false`) so that their variables are read by value
 * (`MCP_READ_ONLY=false` is off): commander turns a plain boolean flag on whenever its variable
 * is set, whatever the value, which for MCP_SHOW_SECRETS=false would be the opposite of meant.
 * No defaults are set here: what neither sets comes from the config file, then the defaults
 * (resolveServeOptions), and the help names both.
 */
export function addServeOptions(cmd: Command): Command {
  // Commander's help shows each variable after the description: "(env: MCP_PORT)".
  const flag = (flags: string, description: string, env?: string) => {
    const o = new Option(flags, description);
    return env ? o.env(env) : o;
  };
  const onOff = (name: string, description: string, env: string) =>
    flag(`--${name} [bool]`, description, env).argParser(parseBool);
  return cmd
    .addOption(flag('-t, --transport <transport>', 'stdio | http | streamable-http (default stdio)', 'MCP_TRANSPORT'))
    .addOption(
      flag('-p, --port <port>', 'HTTP port (default 3001; PORT, as in seed 001, when MCP_PORT is not set)', 'MCP_PORT'),
    )
    .addOption(flag('--host <host>', 'HTTP bind address (default 127.0.0.1, 0.0.0.0 in an operator pod)', 'MCP_HOST'))
    .addOption(onOff('read-only', 'only read tools: mutating tools are neither listed nor callable', 'MCP_READ_ONLY'))
    .addOption(onOff('disable-destructive', 'no delete tools or DELETE requests', 'MCP_DISABLE_DESTRUCTIVE'))
    .addOption(
      onOff(
        'allow-exec',
        'with --disable-destructive, still allow exec-pod (commands in containers)',
        'MCP_ALLOW_EXEC',
      ),
    )
    .addOption(flag('--allow-tools <names>', 'comma-separated tools to expose; others are hidden', 'MCP_ALLOW_TOOLS'))
    .addOption(flag('--deny-tools <names>', 'comma-separated tools to hide', 'MCP_DENY_TOOLS'))
    .addOption(flag('--namespaces <names>', 'comma-separated namespace allow-list', 'MCP_NAMESPACES'))
    .addOption(
      flag(
        '--deny-kinds <kinds>',
        'comma-separated kinds/resources refused, e.g. Secret,roles.rbac.authorization.k8s.io',
        'MCP_DENY_KINDS',
      ),
    )
    .addOption(onOff('show-secrets', 'do not mask Secret values', 'MCP_SHOW_SECRETS'))
    .addOption(flag('--context <name>', 'kubeconfig context (default: current)', 'MCP_CONTEXT'))
    .addOption(
      flag('--allow-contexts <names>', 'further contexts tools may use via `context`; * for all', 'MCP_ALLOW_CONTEXTS'),
    )
    .addOption(flag('--kubeconfig <file>', 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)'))
    .addOption(
      flag(
        '--audit-log <sink>',
        'audit sink for mutating calls: stderr | <file> | off (default stderr)',
        'MCP_AUDIT_LOG',
      ),
    )
    .addOption(flag('--token <token>', 'require this bearer token on /mcp and /metrics', 'MCP_TOKEN'))
    .addOption(onOff('stateless', 'HTTP without sessions, for many replicas', 'MCP_STATELESS'))
    .addOption(
      onOff(
        'legacy-only',
        'HTTP: answer MCP 2025-era clients only (initialize, sessions); no 2026-07-28 leg',
        'MCP_LEGACY_ONLY',
      ),
    )
    .addOption(
      flag(
        '--impersonate <from>',
        "gateway: act as the caller the pod's gateway verified (Impersonate-User/-Group on every request); off (default)",
        'MCP_IMPERSONATE',
      ),
    )
    .addOption(
      flag(
        '--allowed-hosts <hosts>',
        'Host header names accepted (default loopback names on a loopback bind)',
        'MCP_ALLOWED_HOSTS',
      ),
    )
    .addOption(flag('--cors <origins>', 'CORS origins allowed, * for any', 'MCP_CORS_ORIGINS'))
    .addOption(
      flag('--max-output <chars>', `response budget in characters (default ${DEFAULT_BUDGET})`, 'MCP_MAX_OUTPUT'),
    )
    .addOption(
      flag('--max-subscriptions <n>', 'resource subscriptions per MCP session (default 16)', 'MCP_MAX_SUBSCRIPTIONS'),
    )
    .addOption(
      flag(
        '--max-watches <n>',
        'apiserver watches of the whole server, shared by all sessions (default 100)',
        'MCP_MAX_WATCHES',
      ),
    )
    .addOption(
      flag(
        '--discovery-cache <dir>',
        'API discovery cache shared by processes, an absolute directory or off (default ~/.cache/kubemcp/discovery)',
        'MCP_DISCOVERY_CACHE',
      ),
    )
    .addOption(
      flag(
        '--drain-seconds <seconds>',
        `HTTP, on SIGTERM: not ready, no new sessions, and this long for in-flight requests to finish before exit (default ${DEFAULT_DRAIN_SECONDS})`,
        DRAIN_SECONDS_ENV,
      ),
    )
    .addOption(flag('--config <file>', "config file, the operator's config.json", 'MCP_CONFIG_FILE'))
    .addOption(flag('--log-level <level>', 'pino level (default info)', 'LOG_LEVEL'));
}

/** Registers `kubemcp serve` on the program (cli.ts). */
export function registerServe(program: Command): void {
  addServeOptions(
    program
      .command('serve')
      .description('run the Kubernetes MCP server (stdio by default, or Streamable HTTP at /mcp)'),
  ).action(async (flags: ServeFlags) => {
    try {
      await runServe(resolveServeOptions(flags));
    } catch (err) {
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  });
}
