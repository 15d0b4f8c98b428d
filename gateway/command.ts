/**
 * The gateway's subcommands: `kubemcp bridge` and `kubemcp bridge-init` (its stdio mode: the
 * sidecar and the init container of a bridged stdio MCPServer; gateway/wiring.ts shows the whole
 * path) and `kubemcp gateway` (its reverse-proxy mode in front of an HTTP MCP server container,
 * ./proxy.ts). Both serving modes take the same access options (./setup.ts). Runtime modules load
 * only when a subcommand runs. Logs are JSON lines on stderr (pino); audit lines, one per MCP
 * request, are JSON lines on stdout.
 *
 * SIGTERM (a pod terminating, e.g. in a rollout) drains (issue 18, ../lib/http-drain.ts): not
 * ready, no new sessions, in-flight requests finish within `--drain-seconds` (MCP_DRAIN_SECONDS,
 * which charts/mcpserver.ts sets under the pod's terminationGracePeriodSeconds), then exit 0.
 * SIGINT (a terminal's Ctrl-C) closes at once.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { setFlagsFromString } from 'node:v8';
import { BRIDGE_DIR, GATEWAY_V8_FLAGS, SESSION_KEYS_DIR } from './wiring.js';
import { DEFAULT_DRAIN_SECONDS, DRAIN_SECONDS_ENV, untilSignal } from '../lib/http-drain.js';
import { ToolPolicy } from './tools.js';
import type { AccessCliOptions } from './setup.js';

/** Parsed options of `kubemcp bridge`. */
export interface BridgeCommandOptions extends AccessCliOptions {
  dir: string;
  port: number;
  host: string;
  maxMessageBytes: number;
  initTimeout: number;
  readyWait: number;
  maxSessions: number;
  /** Drain deadline on SIGTERM, seconds (../lib/http-drain.ts). */
  drainSeconds: number;
  logLevel: string;
}

/** Sets {@link GATEWAY_V8_FLAGS} on this process (a serving mode's first step). */
function tuneHeap(): void {
  for (const flag of GATEWAY_V8_FLAGS) setFlagsFromString(flag);
}

function intOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got "${v}"`);
    return n;
  };
}

/**
 * Runs the bridge until SIGINT/SIGTERM: connects to the process through the FIFOs in `dir` and
 * serves Streamable HTTP. SIGTERM drains first ({@link untilSignal}); the bridge then closes.
 * @throws when the port cannot be bound.
 */
export async function runBridge(o: BridgeCommandOptions): Promise<void> {
  tuneHeap();
  // pino's default export, not `{ pino }`: the bundle's CommonJS interop has no named exports (build.ts);
  // `{ pino }` is undefined there and the bridge died at start in the image.
  const [
    { default: pino },
    { StdioBridge },
    { startBridgeHttp },
    { bridgePaths },
    { accessFromOptions, gatewayCredentials, gatewayRegistry, sessionRouterFromOptions },
  ] = await Promise.all([
    import('pino'),
    import('./bridge.js'),
    import('./http.js'),
    import('./wiring.js'),
    import('./setup.js'),
  ]);
  const log = pino({ level: o.logLevel, base: { name: 'kubemcp-bridge' } }, pino.destination(2));
  const registry = gatewayRegistry();
  const access = accessFromOptions(
    o,
    auditLogger(pino),
    registry,
    o.auth === 'none' ? undefined : await gatewayCredentials(),
  );
  const bridge = new StdioBridge({
    registry,
    paths: bridgePaths(o.dir),
    log,
    maxMessageBytes: o.maxMessageBytes,
    initTimeoutMs: o.initTimeout * 1000,
    readyWaitMs: o.readyWait * 1000,
  });
  bridge.start();
  const http = await startBridgeHttp(bridge, log, {
    host: o.host,
    port: o.port,
    maxSessions: o.maxSessions,
    access,
    tools: o.toolPolicy === undefined ? undefined : ToolPolicy.parse(o.toolPolicy),
    drain: { deadlineMs: o.drainSeconds * 1000 },
    sessions: sessionRouterFromOptions(o, o.port, false, log, registry),
  });
  process.stderr.write(`kubemcp bridge listening on ${http.url} (FIFOs in ${o.dir}; auth ${access.mode})\n`);
  await untilSignal(http.drain);
  await http.close();
  await bridge.close();
  log.info('kubemcp bridge: exiting');
}

/** The audit log: JSON lines on stdout, no pid/hostname, ISO time (./access.ts writes them). */
function auditLogger(pino: typeof import('pino').default) {
  return pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' }, pino.destination(1));
}

/** Parsed options of `kubemcp gateway`. */
export interface GatewayCommandOptions extends AccessCliOptions {
  upstream: string;
  port: number;
  host: string;
  maxBodyBytes: number;
  /** Drain deadline on SIGTERM, seconds (../lib/http-drain.ts). */
  drainSeconds: number;
  logLevel: string;
}

/**
 * Runs the reverse-proxy gateway until SIGINT/SIGTERM (./proxy.ts); SIGTERM drains first
 * ({@link untilSignal}).
 * @throws when the access options are invalid or the port cannot be bound.
 */
export async function runGateway(o: GatewayCommandOptions): Promise<void> {
  tuneHeap();
  const [
    { default: pino },
    { startGatewayProxy },
    { accessFromOptions, gatewayCredentials, gatewayRegistry, sessionRouterFromOptions },
  ] = await Promise.all([import('pino'), import('./proxy.js'), import('./setup.js')]);
  const log = pino({ level: o.logLevel, base: { name: 'kubemcp-gateway' } }, pino.destination(2));
  const registry = gatewayRegistry();
  const access = accessFromOptions(
    o,
    auditLogger(pino),
    registry,
    o.auth === 'none' ? undefined : await gatewayCredentials(),
  );
  const gw = await startGatewayProxy({
    upstream: o.upstream,
    host: o.host,
    port: o.port,
    access,
    registry,
    log,
    maxBodyBytes: o.maxBodyBytes,
    tools: o.toolPolicy === undefined ? undefined : ToolPolicy.parse(o.toolPolicy),
    drain: { deadlineMs: o.drainSeconds * 1000 },
    sessions: sessionRouterFromOptions(o, o.port, true, log, registry),
  });
  process.stderr.write(`kubemcp gateway listening on ${gw.url} -> ${o.upstream} (auth ${access.mode})\n`);
  await untilSignal(gw.drain);
  await gw.close();
  log.info('kubemcp gateway: exiting');
}

/** `--drain-seconds` with its variable {@link DRAIN_SECONDS_ENV} (a flag on the command line wins). */
function drainOption(): Option {
  return new Option(
    '--drain-seconds <seconds>',
    'on SIGTERM: not ready, no new sessions, and this long for in-flight requests to finish before exit',
  )
    .env(DRAIN_SECONDS_ENV)
    .argParser(intOption('--drain-seconds', 0, 3600))
    .default(DEFAULT_DRAIN_SECONDS);
}

/** Adds the access options of both serving modes to `cmd`. */
function accessOptions(cmd: Command): Command {
  return cmd
    .option(
      '--auth <mode>',
      'who may call: kubernetes (a Kubernetes token for --audience, then RBAC create mcpservers/proxy), oidc (a JWT of --oidc-issuer for --audience, or a Kubernetes token, then the same RBAC) or none (anyone)',
      'kubernetes',
    )
    .option('--oidc-issuer <url>', 'mode oidc: the issuer URL, as tokens carry it in iss')
    .option('--oidc-jwks-uri <url>', "mode oidc: the JWKS URL (default: the issuer's openid-configuration jwks_uri)")
    .option('--oidc-username-claim <claim>', 'mode oidc: the claim naming the user', 'sub')
    .option('--oidc-username-prefix <prefix>', 'mode oidc: prepended to the username for RBAC', 'oidc:')
    .option('--oidc-groups-claim <claim>', 'mode oidc: the claim listing the groups', 'groups')
    .option('--oidc-groups-prefix <prefix>', 'mode oidc: prepended to each group for RBAC', 'oidc:')
    .option(
      '--tool-policy <json>',
      'per-tool access: a JSON list of {names, users?, groups?, serviceAccounts?} (spec.auth.tools); unset: every tool',
    )
    .option(
      '--peers <fqdn>',
      "sealed sessions across replicas: the MCPServer's headless Service (<name>-peers.<ns>.svc.cluster.local), whose A records are its current pods, or a comma-separated list of IP addresses; needs POD_IP and POD_NAME",
    )
    .option(
      '--session-keys <dir>',
      'sealed sessions: the directory with the session keys current and previous (the mounted Secret)',
      SESSION_KEYS_DIR,
    )
    .option('--mcpserver <namespace/name>', 'the MCPServer this gateway stands in front of (RBAC, audit, metrics)')
    .option(
      '--audience <url>',
      'an audience the caller token must be bound to (repeatable; the MCPServer status.url first)',
      (v: string, prev: string[] = []) => [...prev, v],
    );
}

/** Registers `kubemcp bridge`, `kubemcp bridge-init` and `kubemcp gateway` on the program (cli.ts). */
export function registerBridge(program: Command): void {
  accessOptions(
    program
      .command('gateway')
      .description(
        'stand in front of an HTTP MCP server: authenticate, authorize and audit each request, then pass it to --upstream (the gateway of an HTTP MCPServer)',
      )
      .requiredOption('--upstream <url>', 'the MCP server container, e.g. http://127.0.0.1:3001'),
  )
    .option('-p, --port <port>', 'HTTP port (0 picks a free one)', intOption('--port', 0, 65535), 18080)
    .option('--host <host>', 'bind address (the operator passes 0.0.0.0)', '127.0.0.1')
    .option(
      '--max-body-bytes <n>',
      'largest request body in bytes',
      intOption('--max-body-bytes', 1024, 256 * 1024 * 1024),
      4 * 1024 * 1024,
    )
    .addOption(drainOption())
    .option('--log-level <level>', 'pino level (env LOG_LEVEL)', process.env.LOG_LEVEL ?? 'info')
    .action(async (o: GatewayCommandOptions) => {
      try {
        await runGateway(o);
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });

  accessOptions(program.command('bridge'))
    .description(
      'serve a stdio MCP server, connected through FIFOs, as Streamable HTTP at /mcp (the sidecar of a bridged stdio MCPServer)',
    )
    .option('--dir <dir>', 'directory with the FIFOs stdin and stdout (the shared emptyDir)', BRIDGE_DIR)
    .option('-p, --port <port>', 'HTTP port (0 picks a free one)', intOption('--port', 0, 65535), 8080)
    .option('--host <host>', 'bind address (the operator passes 0.0.0.0)', '127.0.0.1')
    .option(
      '--max-message-bytes <n>',
      'largest JSON-RPC message in bytes, either direction',
      intOption('--max-message-bytes', 1024, 256 * 1024 * 1024),
      4 * 1024 * 1024,
    )
    .option(
      '--init-timeout <seconds>',
      'after this long without an answer to initialize, /ready reports it',
      intOption('--init-timeout', 1, 3600),
      30,
    )
    .option(
      '--ready-wait <seconds>',
      'how long a request waits for a (re)starting process before an error',
      intOption('--ready-wait', 0, 600),
      10,
    )
    .option('--max-sessions <n>', 'most concurrent HTTP sessions', intOption('--max-sessions', 1, 100_000), 200)
    .addOption(drainOption())
    .option('--log-level <level>', 'pino level (env LOG_LEVEL)', process.env.LOG_LEVEL ?? 'info')
    .action(async (o: BridgeCommandOptions) => {
      try {
        await runBridge(o);
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });

  program
    .command('bridge-init')
    .description(
      'install the static launcher and create the FIFOs in the shared directory (the init container of a bridged stdio MCPServer)',
    )
    .option('--dir <dir>', 'the shared directory (emptyDir mount)', BRIDGE_DIR)
    .option('--launcher-source <file>', 'the static busybox to copy (default: /bin/busybox.static or /bin/busybox)')
    .action(async (o: { dir: string; launcherSource?: string }) => {
      try {
        const { bridgeInit } = await import('./init.js');
        const p = bridgeInit({ dir: o.dir, launcherSource: o.launcherSource });
        process.stderr.write(`kubemcp bridge-init: launcher ${p.launcher}, FIFOs ${p.stdin} and ${p.stdout}\n`);
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
