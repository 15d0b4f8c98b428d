#!/usr/bin/env node
/**
 * The `kubemcp` command: `render` (offline GitOps rendering of MCPServer manifests),
 * `controller` (the in-cluster MCPServer controller), `serve` (the MCP server for Kubernetes), and
 * `bridge` / `bridge-init` (the sidecar and init container of a bridged stdio MCPServer).
 * Each subcommand loads its runtime only when it runs.
 * Exit codes: 0 success, 1 invalid input or failure (message on stderr).
 */
import { Command } from 'commander';
import { registerServe } from './mcp-server/command.js';
import { registerController } from './controller/command.js';
import { registerBridge } from './gateway/command.js';

const program = new Command()
  .name('kubemcp')
  .description('MCP servers as first-class Kubernetes citizens')
  .version('0.1.0')
  .showHelpAfterError();

program
  .command('render')
  .description('print the Deployment, Service and ConfigMap of MCPServer manifests as YAML, offline')
  .requiredOption('-f, --filename <file...>', 'MCPServer manifest file(s); - reads standard input')
  .option('-n, --namespace <namespace>', "namespace to stamp on the rendered objects (default: each manifest's)")
  .option(
    '--bridge-image <image>',
    'image of the bridge of stdio MCPServers with command (default: the kubemcp image, as the operator chart)',
  )
  .action(async (opts: { filename: string[]; namespace?: string; bridgeImage?: string }) => {
    try {
      // Loaded on use: cdk8s is heavy, and `serve` / `controller` start faster without it.
      const { readSources, renderSources } = await import('./charts/render-cli.js');
      process.stdout.write(
        renderSources(readSources(opts.filename), opts.namespace, { bridgeImage: opts.bridgeImage }),
      );
    } catch (err) {
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  });

registerController(program);
registerServe(program);
registerBridge(program);

await program.parseAsync(process.argv);
