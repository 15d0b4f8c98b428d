/**
 * kube-controller-manager on 127.0.0.1 with every controller, one ServiceAccount per controller
 * (as kubeadm), signing with the cluster CA.
 * Reference: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/
 *
 * @module
 */
import { CONTEXT_NAME, SERVICE_CIDR } from '../paths.js';
import { pki } from '../pki.js';
import type { ProcessRecord } from '../state.js';
import { startSecureComponent, type StartContext } from './context.js';

/**
 * Starts kube-controller-manager; returns at once with its record and a promise of its /healthz
 * answering 200 ({@link startSecureComponent}).
 */
export function startControllerManager(ctx: StartContext): Promise<{ proc: ProcessRecord; healthy: Promise<true> }> {
  return startSecureComponent(ctx, {
    component: 'kube-controller-manager',
    id: 'controller-manager',
    user: 'system:kube-controller-manager',
    port: ctx.ports.controllerManager,
    args: [
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
    ],
  });
}
