/**
 * gateway/auth/sar.ts against the local cluster's real apiserver and RBAC (issue 17): the callers'
 * ClusterRole the operator chart ships (`create mcpservers/proxy`) is aggregated into `edit` by
 * kube-controller-manager, so a ServiceAccount with `edit` in the MCPServer's namespace may call
 * it, one with only `view` (or nothing, or `edit` elsewhere) may not; the identity comes from a
 * real TokenReview, the gateway authenticates as its own ServiceAccount (system:auth-delegator),
 * and `kubectl auth can-i` gives the same answers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { SubjectAccessReviewAuthorizer } from '../../gateway/auth/sar.js';
import { TokenReviewAuthenticator, type Identity } from '../../gateway/auth/tokenreview.js';
import { kubeFetch } from '../../lib/kube-http.js';
import { createNamespace, installCrd, kubeConfig, kubectl, serviceAccountToken, tokenKubeConfig } from '../kube.js';
import { installCallerRole } from './fixture.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const server = kc.getCurrentCluster()!.server;
const SERVER_NAME = 'kube-mcp';
let ns: string;
let elsewhere: string;
let gatewayFetch: ReturnType<typeof kubeFetch>;
let audience: string;

const token = (namespace: string, name: string, audiences: string[] = []): Promise<string> =>
  serviceAccountToken(kc, namespace, name, audiences);

/** The identity of ServiceAccount `name`, as the gateway's TokenReview reports it. */
async function identityOf(namespace: string, name: string): Promise<Identity> {
  const a = new TokenReviewAuthenticator({ server, fetch: gatewayFetch, audiences: [audience] });
  const r = await a.authenticate(await token(namespace, name, [audience]));
  if (!r.ok) throw new Error(`TokenReview: ${r.message}`);
  return r.identity;
}

const binding = (name: string, role: string, sa: string, saNs: string): k8s.V1RoleBinding => ({
  metadata: { name },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ kind: 'ServiceAccount', name: sa, namespace: saNs }],
});

beforeAll(async () => {
  await installCrd(kc);
  // The callers' ClusterRole exactly as the operator chart renders it; kube-controller-manager's
  // clusterrole-aggregation controller copies its rule into edit.
  await installCallerRole(kc);
  ns = await createNamespace(kc, 'sar');
  elsewhere = await createNamespace(kc, 'sar-other');
  audience = `http://${SERVER_NAME}.${ns}.svc.cluster.local:3001/mcp`;
  for (const sa of ['gateway', 'editor', 'viewer', 'nobody'])
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  await core.createNamespacedServiceAccount({ namespace: elsewhere, body: { metadata: { name: 'editor' } } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `${ns}-gateway` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'gateway', namespace: ns }],
    },
  });
  await rbac.createNamespacedRoleBinding({ namespace: ns, body: binding('editor-edit', 'edit', 'editor', ns) });
  await rbac.createNamespacedRoleBinding({ namespace: ns, body: binding('viewer-view', 'view', 'viewer', ns) });
  // `edit` in its own namespace only.
  await rbac.createNamespacedRoleBinding({
    namespace: elsewhere,
    body: binding('editor-edit', 'edit', 'editor', elsewhere),
  });
  gatewayFetch = kubeFetch(tokenKubeConfig(kc, await token(ns, 'gateway'), 'gateway'));
});

afterAll(async () => {
  await rbac.deleteClusterRoleBinding({ name: `${ns}-gateway` }).catch(() => undefined);
  for (const n of [ns, elsewhere]) await core.deleteNamespace({ name: n }).catch(() => undefined);
});

describe('SubjectAccessReviewAuthorizer (real RBAC)', () => {
  it('allows edit in the MCPServer namespace; refuses view, no binding, and edit in another namespace, naming the right', async () => {
    const authz = new SubjectAccessReviewAuthorizer({ server, fetch: gatewayFetch, namespace: ns, name: SERVER_NAME });
    expect(await authz.authorize(await identityOf(ns, 'editor'))).toEqual({ allowed: true });
    for (const [saNs, sa] of [
      [ns, 'viewer'],
      [ns, 'nobody'],
      [elsewhere, 'editor'],
    ] as const) {
      const r = await authz.authorize(await identityOf(saNs, sa));
      expect(r.allowed).toBe(false);
      if (!r.allowed) {
        expect(r.error).toBeUndefined();
        expect(r.message).toContain(
          `system:serviceaccount:${saNs}:${sa} may not create mcpservers/proxy "${SERVER_NAME}"`,
        );
        expect(r.message).toContain(`in namespace "${ns}"`);
      }
    }
  });

  it('caches a decision (one review for repeated calls of one caller)', async () => {
    const authz = new SubjectAccessReviewAuthorizer({ server, fetch: gatewayFetch, namespace: ns, name: SERVER_NAME });
    const who = await identityOf(ns, 'editor');
    for (let i = 0; i < 100; i++) expect((await authz.authorize(who)).allowed).toBe(true);
    expect(authz.reviews).toBe(1);
  });

  it('reports a review the gateway may not send as an error (the gateway answers 503), not as a denial', async () => {
    const noRights = tokenKubeConfig(kc, await token(ns, 'nobody'));
    const authz = new SubjectAccessReviewAuthorizer({
      server,
      fetch: kubeFetch(noRights),
      namespace: ns,
      name: SERVER_NAME,
    });
    const r = await authz.authorize(await identityOf(ns, 'editor'));
    expect(r).toMatchObject({ allowed: false, error: true });
  });

  it('kubectl auth can-i gives the same answers', async () => {
    const can = (sa: string) =>
      kubectl(
        'auth',
        'can-i',
        'create',
        `mcpservers/${SERVER_NAME}`,
        '--subresource=proxy',
        '-n',
        ns,
        '--as',
        `system:serviceaccount:${ns}:${sa}`,
      )
        .then((o) => o.trim())
        .catch((e: { stdout?: string }) => (e.stdout ?? '').trim());
    expect(await can('editor')).toBe('yes');
    expect(await can('viewer')).toBe('no');
  });
});
