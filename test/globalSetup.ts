/**
 * Jest global setup: starts the local control plane (cluster/) or reuses the
 * running one, and exports its admin kubeconfig to the tests as `process.env.KUBECONFIG` (jest
 * workers inherit the environment of this process). Tests load it with
 * `kc.loadFromFile(process.env.KUBECONFIG!)` (or `kc.loadFromDefault()`).
 *
 * Set `KUBEMCP_SKIP_CLUSTER=1` to skip all of this for pure unit-test runs (cluster tests then fail).
 * Whether this run started the cluster is passed to globalTeardown.ts through globalThis (jest
 * runs both in its parent process): a cluster started here is stopped there, a reused one is left
 * running.
 *
 * Jest loads this file with Node's own ESM loader, where its moduleNameMapper/transform do not
 * apply to further imports, so cluster.ts is loaded through tsx's `tsImport` instead of a static
 * import (the type-only import below is erased).
 */
import { tsImport } from 'tsx/esm/api';
import type * as Cluster from '../cluster/index.js';
import type * as Images from '../images/cluster.js';

/** globalThis key telling globalTeardown.ts that this jest run started the cluster. */
const STARTED_KEY = '__kubemcpClusterStartedByJest';

export default async function globalSetup(): Promise<void> {
  if (process.env.KUBEMCP_SKIP_CLUSTER === '1') return;
  const cluster = (await tsImport('../cluster/index.ts', import.meta.url)) as typeof Cluster;
  const info = await cluster.clusterUp();
  process.env.KUBECONFIG = info.kubeconfig;
  // Both the `cluster` and `faults` projects run this setup when selected together: the second
  // call reuses the cluster the first one started and must not clear the first one's mark.
  const g = globalThis as Record<string, unknown>;
  g[STARTED_KEY] = g[STARTED_KEY] === true || !info.reused;
  // The images the real-node suites run (kubemcp, pause, everything), built and loaded once here,
  // before the workers start: several suites call ensureImagesLoaded() in parallel, and two
  // buildah builds of one tag at once fail (one removes the image the other is pushing). Their own
  // calls are then cache hits. KUBEMCP_SKIP_IMAGES=1 leaves it to the suites.
  if (process.env.KUBEMCP_SKIP_IMAGES !== '1') {
    const images = (await tsImport('../images/cluster.ts', import.meta.url)) as typeof Images;
    if (images.clusterContainerd()) {
      const started = Date.now();
      images.ensureImagesLoaded({ output: 'pipe', log: () => undefined });
      process.stderr.write(`[images] built and loaded into the real node in ${Date.now() - started} ms\n`);
    }
  }
}
