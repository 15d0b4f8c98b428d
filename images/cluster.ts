/**
 * Where the local cluster's containerd is (the real node of cluster/), for loading images.
 *
 * @module
 */
import type { Containerd } from './load.js';

/**
 * The running local cluster's containerd, or undefined when no real node runs.
 * (Filled in from the cluster's state once the real node records its containerd.)
 */
export function clusterContainerd(): Containerd | undefined {
  return undefined;
}
