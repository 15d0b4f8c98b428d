/**
 * kube-apiserver on 127.0.0.1, flags as kubeadm sets them (Node,RBAC authorization, front-proxy
 * request-header authentication, service-account issuer/keys), plus an audit log of write requests.
 * Reference: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  APISERVER_READY_MS,
  AUDIT_LOG_PATH,
  AUDIT_POLICY,
  CLUSTER_DIR,
  LOOPBACK,
  SERVICE_ACCOUNT_ISSUER,
  SERVICE_CIDR,
} from '../paths.js';
import { pki } from '../pki.js';
import { apiserverReady } from '../kube.js';
import { waitFor } from '../process.js';
import type { ProcessRecord } from '../state.js';
import { etcdClientUrl } from './etcd.js';
import type { StartContext } from './context.js';

/**
 * Starts kube-apiserver against the etcd of `ctx` and waits until /readyz answers 200
 * ({@link APISERVER_READY_MS} at most).
 * @throws Error naming kube-apiserver and its log when it exits or does not become ready.
 */
export async function startApiserver(ctx: StartContext): Promise<ProcessRecord> {
  const auditPolicy = path.join(CLUSTER_DIR, 'audit-policy.yaml');
  fs.writeFileSync(auditPolicy, AUDIT_POLICY);
  const proc = await ctx.launch('kube-apiserver', path.join(ctx.binDir, 'kube-apiserver'), [
    `--etcd-servers=${etcdClientUrl(ctx)}`,
    `--bind-address=${LOOPBACK}`,
    `--advertise-address=${LOOPBACK}`,
    `--secure-port=${ctx.ports.apiserver}`,
    `--cert-dir=${pki('apiserver-generated')}`,
    `--tls-cert-file=${pki('apiserver.crt')}`,
    `--tls-private-key-file=${pki('apiserver.key')}`,
    `--client-ca-file=${pki('ca.crt')}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    '--allow-privileged=true',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${pki('sa.pub')}`,
    `--service-account-signing-key-file=${pki('sa.key')}`,
    `--kubelet-client-certificate=${pki('apiserver-kubelet-client.crt')}`,
    `--kubelet-client-key=${pki('apiserver-kubelet-client.key')}`,
    `--kubelet-certificate-authority=${pki('ca.crt')}`,
    '--kubelet-preferred-address-types=InternalIP',
    // Request-header (front proxy) authentication, as kubeadm sets it up: lets aggregated API
    // servers and the controller-manager/scheduler delegate authentication.
    `--requestheader-client-ca-file=${pki('front-proxy-ca.crt')}`,
    '--requestheader-allowed-names=front-proxy-client',
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    `--proxy-client-cert-file=${pki('front-proxy-client.crt')}`,
    `--proxy-client-key-file=${pki('front-proxy-client.key')}`,
    // The `kubernetes` Endpoints may not hold a loopback address; nothing in-cluster needs it.
    '--endpoint-reconciler-type=none',
    '--profiling=false',
    `--audit-policy-file=${auditPolicy}`,
    `--audit-log-path=${AUDIT_LOG_PATH}`,
    '--audit-log-format=json',
    '--audit-log-maxsize=200',
    '--audit-log-maxbackup=1',
  ]);
  await waitForApiserver(ctx.server, proc);
  ctx.log('kube-apiserver is ready');
  return proc;
}

/**
 * Waits until `<server>/readyz` answers 200 while `proc` lives ({@link APISERVER_READY_MS} at most).
 * @throws Error naming kube-apiserver and its log on timeout or exit.
 */
export function waitForApiserver(server: string, proc: ProcessRecord): Promise<true> {
  return waitFor('kube-apiserver', `${server}/readyz`, APISERVER_READY_MS, async () => ((await apiserverReady(server)) ? true : undefined), proc);
}
