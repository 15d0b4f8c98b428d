/**
 * kube-controller-manager on 127.0.0.1 with every controller, one ServiceAccount per controller
 * (as kubeadm), signing with the cluster CA.
 * Reference: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { COMPONENT_READY_MS, CONTEXT_NAME, LOOPBACK, SERVICE_CIDR } from '../paths.js';
import { pki, writeKubeconfig } from '../pki.js';
import type { ProcessRecord } from '../state.js';
import { waitHealthz, type StartContext } from './context.js';

/**
 * Starts kube-controller-manager; returns at once with its record and a promise of its /healthz
 * answering 200 ({@link COMPONENT_READY_MS} at most; rejects naming its log).
 */
export async function startControllerManager(ctx: StartContext): Promise<{ proc: ProcessRecord; healthy: Promise<true> }> {
  const kubeconfig = pki('controller-manager.kubeconfig');
  writeKubeconfig(kubeconfig, ctx.server, 'controller-manager', 'system:kube-controller-manager');
  const port = ctx.ports.controllerManager;
  const proc = await ctx.launch('kube-controller-manager', path.join(ctx.binDir, 'kube-controller-manager'), [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${LOOPBACK}`,
    `--secure-port=${port}`,
    `--cert-dir=${pki('controller-manager-generated')}`,
    `--tls-cert-file=${pki('loopback-serving.crt')}`,
    `--tls-private-key-file=${pki('loopback-serving.key')}`,
    '--leader-elect=false',
    '--controllers=*',
    '--use-service-account-credentials=true', // one ServiceAccount per controller, as kubeadm does
    // The default client rate limit (20 qps) makes the per-controller token requests take ~5 s.
    '--kube-api-qps=500',
    '--kube-api-burst=1000',
    `--root-ca-file=${pki('ca.crt')}`,
    `--service-account-private-key-file=${pki('sa.key')}`,
    `--cluster-signing-cert-file=${pki('ca.crt')}`,
    `--cluster-signing-key-file=${pki('ca.key')}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--cluster-name=${CONTEXT_NAME}`,
    '--profiling=false',
  ]);
  const healthy = waitHealthz('kube-controller-manager', `https://${LOOPBACK}:${port}/healthz`, fs.readFileSync(pki('ca.crt')), COMPONENT_READY_MS, proc);
  return { proc, healthy };
}
