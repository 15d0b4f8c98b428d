/**
 * Node 22 for the test tools that need it (the MCP conformance suite, MCP Inspector 2.x) while the
 * project's Node stays 20: npm's `node` package, installed once into ~/.cache/kubemcp/node22.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The cache directory of test tools (XDG_CACHE_HOME or ~/.cache, then kubemcp). */
export const TEST_CACHE = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'kubemcp');

/** npm's `node` package version that provides Node 22, and where it is installed. */
const NODE22_VERSION = '22.23.3';
const NODE22_PREFIX = path.join(TEST_CACHE, 'node22');
const NODE22 = path.join(NODE22_PREFIX, 'node_modules/node/bin/node');

/**
 * Installs Node 22 once (npm's `node@22.23.3` package, whose binary lands in
 * node_modules/node/bin/node) into ~/.cache/kubemcp/node22, unless that binary already answers
 * v22.23.3. Nothing is put on PATH: npm scripts keep the project's Node 20.
 * @returns the absolute path of the node 22 binary.
 * @throws when npm fails (no registry) or the installed binary is not v22.23.3.
 */
export async function ensureNode22(): Promise<string> {
  const version = async () =>
    (await run(NODE22, ['--version'], { timeout: 10_000 })
      .then((r) => r.stdout.trim())
      .catch(() => '')) as string;
  if ((await version()) === `v${NODE22_VERSION}`) return NODE22;
  await run('npm', ['install', '--prefix', NODE22_PREFIX, '--no-audit', '--no-fund', `node@${NODE22_VERSION}`], {
    cwd: os.tmpdir(),
    timeout: 300_000,
  });
  const got = await version();
  if (got !== `v${NODE22_VERSION}`) throw new Error(`${NODE22} answers ${JSON.stringify(got)}, not v${NODE22_VERSION}`);
  return NODE22;
}
