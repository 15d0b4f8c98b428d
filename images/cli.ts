/**
 * `npm run images`: builds (or finds cached) the local Node 20 base, the kubemcp image (from the
 * Dockerfile), the pause image and the everything image (the MCP reference stdio server) with buildah, writes their OCI archives to
 * `~/.cache/kubemcp/images/`, and loads them into the local cluster's containerd when its real
 * node runs (./cluster.ts). Prints one line per image.
 *
 *   npm run images                  build + load (when the real node runs)
 *   npm run images -- --no-load     build and write the archives only
 *   npm run images -- --force       rebuild even when the inputs did not change
 *
 * Exit code 0 on success, 1 on failure (the message names the failing step).
 */
import { Command } from 'commander';
import fs from 'node:fs';
import { clusterContainerd } from './cluster.js';
import { buildImages } from './images.js';
import { loadImages } from './load.js';

const program = new Command('images')
  .description(
    'build the kubemcp, node base, pause and everything (stdio test server) images with buildah and load them into the local cluster',
  )
  .option('--no-load', "do not load the images into the cluster's containerd")
  .option('--force', 'rebuild even when the inputs did not change', false)
  .action(async (opts: { load: boolean; force: boolean }) => {
    const t0 = Date.now();
    const set = buildImages({ force: opts.force });
    for (const img of [set.base, set.kubemcp, set.pause, set.everything]) {
      const mib = (fs.statSync(img.archive).size / 2 ** 20).toFixed(0);
      process.stdout.write(
        `${img.ref.padEnd(40)} ${img.built ? 'built ' : 'cached'} ${img.id.slice(0, 12)} ${mib.padStart(4)} MiB ${img.archive}\n`,
      );
    }
    if (opts.load) {
      const cd = clusterContainerd();
      if (!cd) {
        process.stdout.write('no real node running (npm run cluster:up starts one): images not loaded\n');
      } else {
        const imported = loadImages(cd, [set.kubemcp, set.pause, set.everything]);
        process.stdout.write(
          `containerd ${cd.address}: ${imported.length ? `imported ${imported.join(', ')}` : 'already has them'}\n`,
        );
      }
    }
    process.stdout.write(`images: done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
