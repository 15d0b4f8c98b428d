/**
 * kube-apiserver on 127.0.0.1, flags as kubeadm sets them (Node,RBAC authorization, front-proxy
 * request-header authentication, service-account issuer/keys), plus an audit log of write requests.
 * Reference: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import {
  APISERVER_READY_MS,
  KWOK_NODE_SELECTOR,
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
 * The admission configuration (apiserver.config.k8s.io/v1): PodNodeSelector with the cluster
 * default node selector {@link KWOK_NODE_SELECTOR}, so pods land on kwok's node unless their
 * namespace's `scheduler.alpha.kubernetes.io/node-selector` annotation says otherwise.
 * https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#podnodeselector
 */
function writeAdmissionConfig(): string {
  const selectorFile = path.join(CLUSTER_DIR, 'pod-node-selector.yaml');
  fs.writeFileSync(
    selectorFile,
    toYaml({ podNodeSelectorPluginConfig: { clusterDefaultNodeSelector: KWOK_NODE_SELECTOR } }),
  );
  const file = path.join(CLUSTER_DIR, 'admission.yaml');
  fs.writeFileSync(
    file,
    toYaml({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'AdmissionConfiguration',
      plugins: [{ name: 'PodNodeSelector', path: selectorFile }],
    }),
  );
  return file;
}

/**
 * Starts kube-apiserver against the etcd of `ctx` and waits until /readyz answers 200
 * ({@link APISERVER_READY_MS} at most). With a real node (`ctx.network`), it advertises the
 * veth host address, so the `kubernetes` Service's endpoints (kept by the apiserver's lease
 * reconciler) lead pods to it; without, it advertises 127.0.0.1 and keeps no endpoints.
 * @throws Error naming kube-apiserver and its log when it exits or does not become ready.
 */
export async function startApiserver(ctx: StartContext): Promise<ProcessRecord> {
  const auditPolicy = path.join(CLUSTER_DIR, 'audit-policy.yaml');
  fs.writeFileSync(auditPolicy, AUDIT_POLICY);
  const admission = writeAdmissionConfig();
  const proc = await ctx.launch('kube-apiserver', path.join(ctx.binDir, 'kube-apiserver'), [
    `--etcd-servers=${etcdClientUrl(ctx)}`,
    `--bind-address=${LOOPBACK}`,
    `--advertise-address=${ctx.network?.hostIp ?? LOOPBACK}`,
    `--secure-port=${ctx.ports.apiserver}`,
    `--cert-dir=${pki('apiserver-generated')}`,
    `--tls-cert-file=${pki('apiserver.crt')}`,
    `--tls-private-key-file=${pki('apiserver.key')}`,
    `--client-ca-file=${pki('ca.crt')}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction,PodNodeSelector,PodTolerationRestriction',
    `--admission-control-config-file=${admission}`,
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
    // The `kubernetes` Endpoints may not hold a loopback address: without a real node (no pods
    // to reach it) there are none.
    `--endpoint-reconciler-type=${ctx.network ? 'lease' : 'none'}`,
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
  return waitFor(
    'kube-apiserver',
    `${server}/readyz`,
    APISERVER_READY_MS,
    async () => ((await apiserverReady(server)) ? true : undefined),
    proc,
  );
}
