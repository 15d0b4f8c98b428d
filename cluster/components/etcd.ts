/**
 * etcd: one member on loopback, plain HTTP, data in ETCD_DATA_DIR, fsync off (throwaway data).
 * Built from go.etcd.io/etcd/server/v3 by ./etcd/main.go.
 *
 * @module
 */
import { ETCD_DATA_DIR, ETCD_READY_MS, LOOPBACK } from '../paths.js';
import { httpGet, waitFor } from '../process.js';
import path from 'node:path';
import type { ProcessRecord } from '../state.js';
import type { StartContext } from './context.js';

/** The client URL of etcd for these ports: `http://127.0.0.1:<etcdClient>`. */
export const etcdClientUrl = (ctx: StartContext): string => `http://${LOOPBACK}:${ctx.ports.etcdClient}`;

/**
 * Starts etcd and waits until GET /health says `"health":"true"` ({@link ETCD_READY_MS} at most).
 * @throws Error naming etcd and its log when it exits or does not become healthy.
 */
export async function startEtcd(ctx: StartContext): Promise<ProcessRecord> {
  const peerUrl = `http://${LOOPBACK}:${ctx.ports.etcdPeer}`;
  const clientUrl = etcdClientUrl(ctx);
  const etcd = await ctx.launch('etcd', path.join(ctx.binDir, 'etcd'), [
    '--name=kubemcp',
    `--data-dir=${ETCD_DATA_DIR}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=kubemcp=${peerUrl}`,
    '--initial-cluster-state=new',
    '--unsafe-no-fsync', // throwaway test data: skip fsync, much faster on slow disks
    `--quota-backend-bytes=${2 * 1024 ** 3}`,
  ]);
  await waitFor(
    'etcd',
    `${clientUrl}/health`,
    ETCD_READY_MS,
    async () => {
      const res = await httpGet(`${clientUrl}/health`);
      return res.status === 200 && res.body.includes('"true"') ? true : undefined;
    },
    etcd,
  );
  ctx.log('etcd is healthy');
  return etcd;
}
