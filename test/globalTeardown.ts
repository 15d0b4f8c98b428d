/**
 * Jest global teardown: stops the local control plane only if globalSetup.ts started it in this
 * run; a cluster that was already running (e.g. from `npm run cluster:up`) is left running.
 * Does nothing when `KUBEMCP_SKIP_CLUSTER=1`. (cluster.ts is loaded through tsx for the reason
 * given in globalSetup.ts.)
 */
import { tsImport } from 'tsx/esm/api';
import type * as Cluster from '../cluster/index.js';

/** Same key as in globalSetup.ts (not imported: see there why static imports are avoided). */
const STARTED_KEY = '__kubemcpClusterStartedByJest';

export default async function globalTeardown(): Promise<void> {
  if (process.env.KUBEMCP_SKIP_CLUSTER === '1') return;
  const g = globalThis as Record<string, unknown>;
  if (g[STARTED_KEY] !== true) return;
  g[STARTED_KEY] = false; // a second project's teardown in the same run has nothing left to stop
  const cluster = (await tsImport('../cluster/index.ts', import.meta.url)) as typeof Cluster;
  await cluster.clusterDown();
}
