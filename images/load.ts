/**
 * Loading built images into the real node's containerd, in the `k8s.io` namespace the CRI plugin
 * (and so the kubelet) uses: `ctr -a <socket> -n k8s.io images import <oci archive>` (issue 8,
 * "Images without a daemon"). An image already there with the same manifest digest is not
 * imported again. Pods then use it with `imagePullPolicy: IfNotPresent` or `Never`.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { archiveDigest, run, type Output } from './buildah.js';
import type { BuiltImage } from './images.js';

/** How to reach the node's containerd. */
export interface Containerd {
  /** Path of the `ctr` binary (built with containerd by cluster/build.sh). */
  ctr: string;
  /** containerd's gRPC socket (`ctr -a`). */
  address: string;
}

/** The manifest digest containerd has for `ref` in namespace k8s.io, or undefined. */
export function containerdDigest(cd: Containerd, ref: string): string | undefined {
  const r = spawnSync(cd.ctr, ['-a', cd.address, '-n', 'k8s.io', 'images', 'ls', `name==${ref}`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`ctr images ls: ${(r.stderr || r.error?.message || '').trim()}`);
  // REF TYPE DIGEST SIZE PLATFORMS LABELS
  const line = r.stdout
    .split('\n')
    .slice(1)
    .find((l) => l.startsWith(`${ref} `));
  return line?.split(/\s+/)[2];
}

/**
 * Imports each image's OCI archive into containerd unless it already holds that manifest.
 * @returns the references that were imported (empty when all were there).
 * @throws Error when ctr fails or the image is not listed under its reference afterwards.
 */
export function loadImages(cd: Containerd, images: BuiltImage[], output: Output = 'inherit'): string[] {
  const imported: string[] = [];
  for (const img of images) {
    const want = archiveDigest(img.archive);
    if (containerdDigest(cd, img.ref) === want) continue;
    run(cd.ctr, ['-a', cd.address, '-n', 'k8s.io', 'images', 'import', img.archive], {
      output,
      timeoutMs: 10 * 60_000,
    });
    const got = containerdDigest(cd, img.ref);
    if (got !== want)
      throw new Error(
        `ctr images import ${img.archive}: containerd has ${img.ref} as ${got ?? 'nothing'}, expected ${want}`,
      );
    imported.push(img.ref);
  }
  return imported;
}
