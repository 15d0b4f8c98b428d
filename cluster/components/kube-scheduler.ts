/**
 * kube-scheduler on 127.0.0.1, default profile.
 * Reference: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { COMPONENT_READY_MS, LOOPBACK } from '../paths.js';
import { pki, writeKubeconfig } from '../pki.js';
import type { ProcessRecord } from '../state.js';
import { waitHealthz, type StartContext } from './context.js';

/**
 * Starts kube-scheduler; returns at once with its record and a promise of its /healthz answering
 * 200 ({@link COMPONENT_READY_MS} at most; rejects naming its log).
 */
export async function startScheduler(ctx: StartContext): Promise<{ proc: ProcessRecord; healthy: Promise<true> }> {
  const kubeconfig = pki('scheduler.kubeconfig');
  writeKubeconfig(kubeconfig, ctx.server, 'scheduler', 'system:kube-scheduler');
  const port = ctx.ports.scheduler;
  const proc = await ctx.launch('kube-scheduler', path.join(ctx.binDir, 'kube-scheduler'), [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${LOOPBACK}`,
    `--secure-port=${port}`,
    `--cert-dir=${pki('scheduler-generated')}`,
    `--tls-cert-file=${pki('loopback-serving.crt')}`,
    `--tls-private-key-file=${pki('loopback-serving.key')}`,
    '--leader-elect=false',
    '--profiling=false',
  ]);
  const healthy = waitHealthz('kube-scheduler', `https://${LOOPBACK}:${port}/healthz`, fs.readFileSync(pki('ca.crt')), COMPONENT_READY_MS, proc);
  return { proc, healthy };
}
