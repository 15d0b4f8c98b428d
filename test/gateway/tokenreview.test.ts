/**
 * gateway/auth/tokenreview.ts against the local cluster's real apiserver: the gateway
 * authenticates as a ServiceAccount bound to system:auth-delegator (as an MCPServer pod's gateway
 * does), callers present projected tokens from the TokenRequest API (what `kubectl create token
 * --audience` makes). Issue 17's "kubernetes" mode: audience-bound, cached, bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { TokenReviewAuthenticator, jwtExp } from '../../gateway/auth/tokenreview.js';
import { kubeFetch } from '../../lib/kube-http.js';
import { createNamespace, kubeConfig, serviceAccountToken, tokenKubeConfig } from '../kube.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const AUDIENCE = 'http://srv.tr-test.svc.cluster.local:3001/mcp';
let ns: string;
let gatewayKc: k8s.KubeConfig;
const server = kc.getCurrentCluster()!.server;

/** A token of ServiceAccount `name` in the test namespace, bound to `audiences` (default: the apiserver's). */
const token = (name: string, audiences?: string[]): Promise<string> => serviceAccountToken(kc, ns, name, audiences);

beforeAll(async () => {
  ns = await createNamespace(kc, 'tokenreview');
  for (const name of ['gateway', 'caller', 'other'])
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `${ns}-gateway-auth-delegator` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'gateway', namespace: ns }],
    },
  });
  // The gateway's own credentials: its ServiceAccount's token, nothing of the admin's.
  gatewayKc = tokenKubeConfig(kc, await token('gateway'), 'gateway');
});

afterAll(async () => {
  await rbac.deleteClusterRoleBinding({ name: `${ns}-gateway-auth-delegator` }).catch(() => undefined);
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

const authenticator = (extra: Partial<ConstructorParameters<typeof TokenReviewAuthenticator>[0]> = {}) =>
  new TokenReviewAuthenticator({ server, fetch: kubeFetch(gatewayKc), audiences: [AUDIENCE], ...extra });

describe('TokenReviewAuthenticator (real apiserver)', () => {
  it("accepts a token bound to the server's audience and reports the ServiceAccount's identity", async () => {
    const a = authenticator();
    const r = await a.authenticate(await token('caller', [AUDIENCE]));
    expect(r).toMatchObject({ ok: true, audiences: [AUDIENCE] });
    if (!r.ok) throw new Error(r.message);
    expect(r.identity.username).toBe(`system:serviceaccount:${ns}:caller`);
    expect(r.identity.groups).toEqual(
      expect.arrayContaining(['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated']),
    );
    expect(r.identity.uid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("refuses a token for another audience and one for the apiserver's own audience", async () => {
    const a = authenticator();
    const other = await a.authenticate(await token('caller', ['http://elsewhere.example/mcp']));
    expect(other.ok).toBe(false);
    if (!other.ok) expect(['invalid', 'audience']).toContain(other.reason);
    const apiserver = await a.authenticate(await token('caller'));
    expect(apiserver.ok).toBe(false);
    if (!apiserver.ok) expect(['invalid', 'audience']).toContain(apiserver.reason);
  });

  it('refuses missing, malformed and forged tokens; malformed ones without a review', async () => {
    const a = authenticator();
    expect(await a.authenticate(undefined)).toMatchObject({ ok: false, reason: 'missing' });
    expect(await a.authenticate('not a token')).toMatchObject({ ok: false, reason: 'malformed' });
    expect(await a.authenticate('x'.repeat(17 * 1024))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(a.reviews).toBe(0);
    // A real token with its signature changed.
    const t = await token('caller', [AUDIENCE]);
    const forged = `${t.slice(0, -6)}AAAAAA`;
    expect(await a.authenticate(forged)).toMatchObject({ ok: false, reason: 'invalid' });
    expect(a.reviews).toBe(1);
  });

  it('sends one TokenReview per token per cache period under 1,000 calls, never caches past the token expiry, stays bounded', async () => {
    let clock = Date.now();
    const a = authenticator({ now: () => clock, maxEntries: 2 });
    const t = await token('caller', [AUDIENCE]);
    const results = await Promise.all(Array.from({ length: 1000 }, () => a.authenticate(t)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(a.reviews).toBe(1);
    // Past the token's exp (600 s from now) the cached success is gone: the next call reviews again.
    clock = jwtExp(t)! * 1000 + 1;
    await a.authenticate(t);
    expect(a.reviews).toBe(2);
    // Three distinct tokens with room for two: the oldest is evicted.
    clock = Date.now();
    const b = authenticator({ now: () => clock, maxEntries: 2 });
    for (const name of ['caller', 'other', 'caller']) await b.authenticate(await token(name, [AUDIENCE]));
    expect(b.size).toBe(2);
    expect(b.reviews).toBe(3);
  });

  it("reports an apiserver refusal of the gateway's own review as an error, not as the caller's fault", async () => {
    // The caller's own credentials cannot create TokenReviews (no auth-delegator binding).
    const noRights = tokenKubeConfig(kc, await token('other'));
    const a = new TokenReviewAuthenticator({ server, fetch: kubeFetch(noRights), audiences: [AUDIENCE] });
    const r = await a.authenticate(await token('caller', [AUDIENCE]));
    expect(r).toMatchObject({ ok: false, reason: 'error' });
    if (!r.ok) expect(r.message).toMatch(/403.*forbidden/i);
  });
});
