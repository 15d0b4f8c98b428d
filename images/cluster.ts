/**
 * The local cluster's containerd (the real node of cluster/), for loading images, and the one
 * call tests and the demo use: {@link ensureImagesLoaded}.
 *
 * @module
 */
import path from 'node:path';
import { CONTAINERD_SOCKET, readState } from '../cluster/index.js';
import { buildImages, type BuildOptions, type ImageSet } from './images.js';
import { loadImages, type Containerd } from './load.js';

/**
 * The running local cluster's containerd (its socket and the `ctr` built beside it), or undefined
 * when the cluster has no Ready real node (state.json's `realNode.available`).
 */
export function clusterContainerd(): Containerd | undefined {
  const node = readState()?.realNode;
  if (!node?.available || !node.nodeBinDir) return undefined;
  return { ctr: path.join(node.nodeBinDir, 'ctr'), address: CONTAINERD_SOCKET };
}

/**
 * Builds (or finds cached) the images and loads the kubemcp, pause and everything images into the running
 * cluster's containerd. A warm call takes seconds; a cold one builds (about 10 minutes on 2 cores).
 * @throws Error when the cluster has no real node, or a build or import fails.
 */
export function ensureImagesLoaded(opts: BuildOptions = {}): ImageSet {
  const cd = clusterContainerd();
  if (!cd)
    throw new Error('images: the local cluster has no Ready real node to load images into (npm run cluster:status)');
  const set = buildImages(opts);
  loadImages(cd, [set.kubemcp, set.pause, set.everything], opts.output ?? 'inherit');
  return set;
}
