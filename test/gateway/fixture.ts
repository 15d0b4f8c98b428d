/**
 * The RBAC a gateway test needs on the local cluster's real apiserver, set up the way an
 * MCPServer pod gets it: the MCPServer CRD, the callers' ClusterRole exactly as the operator chart
 * renders it (aggregated into `edit` by kube-controller-manager), a namespace with ServiceAccounts,
 * a `gateway` ServiceAccount bound to system:auth-delegator, and RoleBindings of built-in roles.
 */
import * as k8s from '@kubernetes/client-node';
import { App } from 'cdk8s';
import { OperatorChart } from '../../charts/operator.js';
import { CALLER_CLUSTER_ROLE } from '../../gateway/auth/sar.js';
import { apply, createNamespace, installCrd, serviceAccountToken, tokenKubeConfig, waitFor } from '../kube.js';

/**
 * Applies the callers' ClusterRole exactly as the operator chart renders it and waits (60 s at
 * most) until kube-controller-manager has aggregated its rule into `edit`.
 */
export async function installCallerRole(kc: k8s.KubeConfig): Promise<void> {
  const caller = (
    new OperatorChart(new App({ outdir: '/dev/null' }), 'operator').toJson() as k8s.KubernetesObject[]
  ).find((o) => o.kind === 'ClusterRole' && o.metadata?.name === CALLER_CLUSTER_ROLE)!;
  await apply(k8s.KubernetesObjectApi.makeApiClient(kc), caller, { fieldManager: 'kubemcp-test-gateway' });
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  await waitFor(
    "the callers' rule aggregated into edit",
    async () =>
      ((await rbac.readClusterRole({ name: 'edit' })).rules ?? []).some((r) =>
        (r.resources ?? []).includes('mcpservers/proxy'),
      ),
    60_000,
    500,
  );
}

/**
 * Creates each of `roles`' keys as a ServiceAccount in `ns`, bound by a RoleBinding `<sa>-<role>`
 * in `ns` to the built-in ClusterRole its value names (`''`: none).
 */
export async function createCallers(
  kc: k8s.KubeConfig,
  ns: string,
  roles: Record<string, 'edit' | 'view' | 'admin' | ''>,
): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  for (const [sa, role] of Object.entries(roles)) {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    if (role)
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: `${sa}-${role}` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
        },
      });
  }
}

/** A namespace with ServiceAccounts and the gateway's credentials; `cleanup` deletes what it made. */
export interface GatewayFixture {
  ns: string;
  /** A kubeconfig that authenticates as ServiceAccount `gateway` (system:auth-delegator) only. */
  gatewayKc: k8s.KubeConfig;
  /** A token of ServiceAccount `name` in `ns`, bound to `audiences`. */
  token: (name: string, audiences?: string[]) => Promise<string>;
  cleanup: () => Promise<void>;
}

/**
 * Creates namespace `<prefix>-...` with ServiceAccount `gateway` and each of `roles`' keys, each
 * bound (RoleBinding in the namespace) to the built-in ClusterRole its value names (`''`: none).
 */
export async function gatewayFixture(
  kc: k8s.KubeConfig,
  prefix: string,
  roles: Record<string, 'edit' | 'view' | 'admin' | ''>,
): Promise<GatewayFixture> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  await installCrd(kc);
  await installCallerRole(kc);
  const ns = await createNamespace(kc, prefix);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'gateway' } } });
  await createCallers(kc, ns, roles);
  const delegator = `${ns}-gateway`;
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: delegator },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'gateway', namespace: ns }],
    },
  });
  const token = (name: string, audiences: string[] = []) => serviceAccountToken(kc, ns, name, audiences);
  return {
    ns,
    gatewayKc: tokenKubeConfig(kc, await token('gateway'), 'gateway'),
    token,
    cleanup: async () => {
      await rbac.deleteClusterRoleBinding({ name: delegator }).catch(() => undefined);
      await core.deleteNamespace({ name: ns }).catch(() => undefined);
    },
  };
}
