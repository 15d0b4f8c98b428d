/**
 * The `kubemcp bridge` and `kubemcp bridge-init` subcommands (the sidecar and the init container
 * of a bridged stdio MCPServer; gateway/wiring.ts shows the whole path). Runtime
 * modules load only when a subcommand runs. Logs are JSON lines on stderr (pino).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { BRIDGE_DIR } from './wiring.js';

/** Parsed options of `kubemcp bridge`. */
export interface BridgeCommandOptions {
  dir: string;
  port: number;
  host: string;
  maxMessageBytes: number;
  initTimeout: number;
  readyWait: number;
  maxSessions: number;
  logLevel: string;
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
 * serves Streamable HTTP.
 * @throws when the port cannot be bound.
 */
export async function runBridge(o: BridgeCommandOptions): Promise<void> {
  // pino's default export, not `{ pino }`: the bundle's CommonJS interop has no named exports (build.ts);
  // `{ pino }` is undefined there and the bridge died at start in the image.
  const [{ default: pino }, { StdioBridge }, { startBridgeHttp }, { bridgePaths }] = await Promise.all([
    import('pino'),
    import('./bridge.js'),
    import('./http.js'),
    import('./wiring.js'),
  ]);
  const log = pino({ level: o.logLevel, base: { name: 'kubemcp-bridge' } }, pino.destination(2));
  const bridge = new StdioBridge({
    paths: bridgePaths(o.dir),
    log,
    maxMessageBytes: o.maxMessageBytes,
    initTimeoutMs: o.initTimeout * 1000,
    readyWaitMs: o.readyWait * 1000,
  });
  bridge.start();
  const http = await startBridgeHttp(bridge, log, { host: o.host, port: o.port, maxSessions: o.maxSessions });
  process.stderr.write(`kubemcp bridge listening on ${http.url} (FIFOs in ${o.dir})\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await http.close();
  await bridge.close();
}

/** Registers `kubemcp bridge` and `kubemcp bridge-init` on the program (cli.ts). */
export function registerBridge(program: Command): void {
  program
    .command('bridge')
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
