/**
 * Bundles the `kubemcp` command (cli.ts) with esbuild into dist/cli/: `kubemcp.js` (the bin),
 * lazily loaded ESM chunks and `kubeconfig.cjs`, with tree-shaking and minified syntax, so
 * `kubemcp serve` starts without resolving and compiling hundreds of node_modules files.
 * `npm run build` runs it after `tsc -p tsconfig.build.json` (the library in dist/js, with its
 * declarations); `npm pack` runs `npm run build` on `prepack`.
 *
 * Choices, measured (docs/serve.md, "Speed and memory"; `npm run bench`):
 * - mcp-server/'s `@kubernetes/client-node` imports resolve to build/client-node-lite.ts, whose
 *   `KubeConfig` loads `kubeconfig.cjs` on first use: the package's `dist/config.js` bundled as
 *   CommonJS with only what it needs. The package index pulls in the whole generated API client
 *   (13 of the 14.5 MB the full package bundles to), which the server never uses (it speaks HTTP
 *   itself, mcp-server/kube.ts); and loading it on first use lets the stdio server answer
 *   `initialize` and `tools/list` before it (mcp-server/stdio.ts).
 * - `whatwg-url` is replaced by build/whatwg-url.cjs (Node's own URL; see there).
 * - cdk8s, cdk8s-plus-33 and constructs (`kubemcp render` and `kubemcp controller`) are bundled
 *   into the chunks those commands load, minified: loaded from node_modules instead, their
 *   sources (cdk8s-plus-33's `lib/imports/k8s.js` alone 3.4 MB, plus a 2.7 MB inline source map
 *   that V8 keeps as part of the source) cost the controller ~10 MiB RSS (docs/benchmarks.md, "The controller
 *   at scale"). Their output is unchanged (the render tests compare it with the library's).
 *   The full `@kubernetes/client-node` for the controller is bundled separately into
 *   {@link CLIENT_NODE_BUNDLE}, a file of its own that the controller's chunks import (bundling it
 *   with them would put it all in a chunk the server shares, as esbuild assigns whole files to
 *   chunks). The bin needs nothing from node_modules at run time.
 * - The stdio server's `initialize` and `tools/list` answers are taken from the real server at
 *   build time and embedded (mcp-server/start-snapshot-data.ts, start-answers.ts): the bin answers
 *   them before loading the MCP SDK, zod and the tools.
 * - `mcp-server/budget.ts` keeps the flags (command.ts) from loading format.ts and `yaml` at start.
 * - Any warning fails the build: an `import * as k8s` member missing from the lite module would
 *   otherwise become `undefined` at run time.
 *
 * Usage: `tsx build.ts [--outdir dist/cli] [--metafile]` (the metafile, <outdir>/meta.json, shows
 * what each chunk holds). Exits 1 on any error or warning.
 */
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.dirname(fileURLToPath(import.meta.url));

/**
 * mcp-server/start-snapshot-data.ts becomes the start snapshot (mcp-server/start-snapshot.ts,
 * taken from the real server now), so the bundled stdio server answers `initialize` and
 * `tools/list` before it loads the MCP SDK (mcp-server/stdio.ts).
 */
function startSnapshot(snapshot: unknown): esbuild.Plugin {
  return {
    name: 'start-snapshot',
    setup(b) {
      b.onLoad({ filter: /[\\/]mcp-server[\\/]start-snapshot-data\.ts$/ }, () => ({
        // JSON.parse of a string literal: parsed faster than the same object as a JS literal.
        contents: `export const BUNDLED_START_SNAPSHOT = JSON.parse(${JSON.stringify(JSON.stringify(snapshot))});`,
        loader: 'js',
      }));
    },
  };
}

/**
 * The full `@kubernetes/client-node` as one minified ESM file in the output directory, which the
 * controller's chunks import (every import of the package outside mcp-server/). Loaded as the
 * package's ~1,000 files it costs the controller ~59 MiB RSS (module records, sources kept for
 * lazy compilation); as this bundle ~19 MiB (docs/benchmarks.md, "The controller at scale"). A file of its own,
 * loaded only by `kubemcp controller`, so the server's chunks never share it.
 */
export const CLIENT_NODE_BUNDLE = 'client-node.js';

/** mcp-server/'s `@kubernetes/client-node` imports resolve to the lite module; the others to {@link CLIENT_NODE_BUNDLE}. */
const clientNodeLite: esbuild.Plugin = {
  name: 'client-node-lite',
  setup(b) {
    b.onResolve({ filter: /^@kubernetes\/client-node$/ }, (args) => {
      const from = path.relative(ROOT, args.importer);
      if (from.startsWith(`mcp-server${path.sep}`)) return { path: path.join(ROOT, 'build', 'client-node-lite.ts') };
      // The controller's full client: its own minified bundle beside the chunks (CLIENT_NODE_BUNDLE).
      return { path: `./${CLIENT_NODE_BUNDLE}`, external: true };
    });
  },
};

const common: esbuild.BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  treeShaking: true,
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'silent',
  alias: { 'whatwg-url': './build/whatwg-url.cjs' },
};

async function failOnWarnings(result: esbuild.BuildResult): Promise<void> {
  if (!result.warnings.length) return;
  const text = await esbuild.formatMessages(result.warnings, { kind: 'warning' });
  throw new Error(`esbuild warnings (treated as errors):\n${text.join('\n')}`);
}

/**
 * Builds the bin bundle into `outdir` (emptied first).
 * @returns esbuild's metafile (inputs and outputs with byte counts).
 * @throws Error when esbuild reports an error or a warning.
 */
export async function buildBundle(outdir = path.join(ROOT, 'dist', 'cli')): Promise<esbuild.Metafile> {
  rmSync(outdir, { recursive: true, force: true });
  const { computeStartSnapshot } = await import('./mcp-server/start-snapshot.js');
  const snapshot = await computeStartSnapshot();
  const result = await esbuild.build({
    ...common,
    entryPoints: { kubemcp: 'cli.ts' },
    outdir,
    splitting: true,
    format: 'esm',
    plugins: [clientNodeLite, startSnapshot(snapshot)],
    // CommonJS packages inside an ESM bundle call require() for Node built-ins.
    banner: {
      js: "import{createRequire as __kubemcpRequire}from'node:module';const require=__kubemcpRequire(import.meta.url);",
    },
  });
  await failOnWarnings(result);
  const kubeconfig = await esbuild.build({
    ...common,
    entryPoints: ['build/kubeconfig-entry.ts'],
    outfile: path.join(outdir, 'kubeconfig.cjs'),
    format: 'cjs',
  });
  await failOnWarnings(kubeconfig);
  const clientNode = await esbuild.build({
    ...common,
    entryPoints: [path.join(ROOT, 'node_modules', '@kubernetes', 'client-node', 'dist', 'index.js')],
    outfile: path.join(outdir, CLIENT_NODE_BUNDLE),
    format: 'esm',
    banner: {
      js: "import{createRequire as __kubemcpRequire}from'node:module';const require=__kubemcpRequire(import.meta.url);",
    },
  });
  await failOnWarnings(clientNode);
  const bin = path.join(outdir, 'kubemcp.js');
  chmodSync(bin, 0o755);
  const a = result.metafile!;
  const b = kubeconfig.metafile!;
  const c = clientNode.metafile!;
  return { inputs: { ...a.inputs, ...b.inputs, ...c.inputs }, outputs: { ...a.outputs, ...b.outputs, ...c.outputs } };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--outdir');
  const outdir = path.resolve(at >= 0 ? process.argv[at + 1]! : path.join(ROOT, 'dist', 'cli'));
  try {
    const meta = await buildBundle(outdir);
    if (process.argv.includes('--metafile')) writeFileSync(path.join(outdir, 'meta.json'), JSON.stringify(meta));
    const total = Object.values(meta.outputs).reduce((n, o) => n + o.bytes, 0);
    process.stdout.write(
      `bundled cli.ts into ${path.relative(ROOT, outdir)}/kubemcp.js: ${Object.keys(meta.outputs).length} files, ${(total / 1024).toFixed(0)} KiB\n`,
    );
  } catch (err) {
    process.stderr.write(`build failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
