/**
 * The gateway's `oidc` mode (issue 17) against an OpenID Connect issuer this test serves on
 * loopback (its own key pair, `/.well-known/openid-configuration` and JWKS), with authorization
 * by the local cluster's real SubjectAccessReview (RBAC bound to `User oidc:alice`):
 * - a token of the issuer, for the server's audience, signed by its key: passes, and the server
 *   sees `X-Remote-User: oidc:alice` and prefixed groups, never the token;
 * - signed by another key, from another issuer, expired, for another audience, or naming a user
 *   without the right: 401 (403 for the right), never reaching the server;
 * - a `groups: [system:masters]` claim is only `oidc:system:masters` (refused without a binding);
 * - a Kubernetes ServiceAccount token (the operator's kind) still passes by TokenReview;
 * - the 401 points to the RFC 9728 protected resource metadata, which names the issuer;
 * - an issuer that cannot be read gives 503 (retry), and is not asked again at once;
 * - the audit lines name the caller and the outcome.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import pino from 'pino';
import { Registry } from 'prom-client';
import { startGatewayProxy, type RunningGatewayProxy } from '../../gateway/proxy.js';
import { accessFromOptions } from '../../gateway/setup.js';
import { kubeConfig } from '../kube.js';
import { gatewayFixture, type GatewayFixture } from './fixture.js';

const kc = kubeConfig();
const NAME = 'oidc-mcp';
let fx: GatewayFixture;
let audience: string;
let issuerServer: Server;
let issuer: string;
let upstream: Server;
let gw: RunningGatewayProxy;
const seen: IncomingHttpHeaders[] = [];
const audit: Array<Record<string, unknown>> = [];
let key: CryptoKey;
let otherKey: CryptoKey;
let jwksFetches = 0;

/** A JWT of `iss` (default the test's issuer) signed with `signer` (default its key). */
async function jwt(
  claims: Record<string, unknown>,
  opts: { signer?: CryptoKey; iss?: string; aud?: string; exp?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: opts.signer === otherKey ? 'other' : 'k1' })
    .setIssuer(opts.iss ?? issuer)
    .setAudience(opts.aud ?? audience)
    .setIssuedAt(now - 60)
    .setExpirationTime(opts.exp ?? now + 600)
    .sign(opts.signer ?? key);
}

async function post(token?: string): Promise<{ status: number; headers: Headers; body: string }> {
  const r = await fetch(`${gw.url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

beforeAll(async () => {
  fx = await gatewayFixture(kc, 'gw-oidc', { editor: 'edit' });
  audience = `http://${NAME}.${fx.ns}.svc.cluster.local:3001/mcp`;
  // alice may call (edit in the namespace); bob is known to the issuer but has no role.
  await kc.makeApiClient(k8s.RbacAuthorizationV1Api).createNamespacedRoleBinding({
    namespace: fx.ns,
    body: {
      metadata: { name: 'alice-edit' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'oidc:alice' }],
    },
  });
  ({ privateKey: key } = await generateKeyPair('RS256', { extractable: true }));
  ({ privateKey: otherKey } = await generateKeyPair('RS256', { extractable: true }));
  const pub = { ...(await exportJWK(key)) } as JWK;
  for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) delete pub[k];
  issuerServer = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration')
      return res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    if (req.url === '/jwks') {
      jwksFetches++;
      return res.end(JSON.stringify({ keys: [{ ...pub, kid: 'k1', alg: 'RS256', use: 'sig' }] }));
    }
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((r) => issuerServer.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`;
  upstream = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [] } }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) audit.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const access = accessFromOptions(
    { auth: 'oidc', mcpserver: `${fx.ns}/${NAME}`, audience: [audience], oidcIssuer: issuer },
    pino({ base: undefined }, sink),
    new Registry(),
    fx.gatewayKc,
  );
  gw = await startGatewayProxy({
    upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    port: 0,
    access,
    registry: new Registry(),
    log: pino({ level: 'silent' }),
  });
}, 180_000);

afterAll(async () => {
  await gw?.close();
  for (const s of [upstream, issuerServer]) await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  await fx?.cleanup();
});

describe('kubemcp gateway --auth oidc (a loopback issuer, real SubjectAccessReview)', () => {
  it('a token of the issuer for this audience passes: the server sees the prefixed identity, not the token', async () => {
    const before = seen.length;
    const r = await post(await jwt({ sub: 'alice', groups: ['devs', 'system:masters'] }));
    expect(r.status).toBe(200);
    expect(seen.length).toBe(before + 1);
    const h = seen.at(-1)!;
    expect(h.authorization).toBeUndefined();
    expect(h['x-remote-user']).toBe('oidc:alice');
    expect(h['x-remote-group']).toBe('oidc:devs, oidc:system:masters');
    expect(audit.at(-1)).toMatchObject({ user: 'oidc:alice', method: 'tools/list', outcome: 'success', status: 200 });
    // The key set was fetched once, not per token.
    await post(await jwt({ sub: 'alice' }));
    expect(jwksFetches).toBe(1);
  });

  it('another key, another issuer, expired, another audience, no subject: 401, nothing reaches the server', async () => {
    const before = seen.length;
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, string, RegExp]> = [
      ['another key', await jwt({ sub: 'alice' }, { signer: otherKey }), /not signed by the OIDC issuer/],
      // Not this issuer: the TokenReview fallback refuses it (it is no Kubernetes token either).
      ['another issuer', await jwt({ sub: 'alice' }, { iss: 'https://evil.example' }), /Unauthorized/],
      ['expired', await jwt({ sub: 'alice' }, { exp: now - 3600 }), /expired/],
      ['another audience', await jwt({ sub: 'alice' }, { aud: 'https://other.example/mcp' }), /audience/],
      ['no subject', await jwt({ name: 'alice' }), /no usable "sub" claim/],
    ];
    for (const [what, token, message] of cases) {
      const r = await post(token);
      const text = (JSON.parse(r.body) as { error: { message: string } }).error.message;
      expect({ what, status: r.status, message: message.test(text) }).toEqual({ what, status: 401, message: true });
      expect(r.headers.get('www-authenticate')).toMatch(/error="invalid_token", resource_metadata="/);
    }
    expect(seen.length).toBe(before);
    expect(audit.filter((l) => l.outcome === 'unauthenticated').length).toBeGreaterThanOrEqual(cases.length);
  });

  it('a valid token of a user without the right, even claiming system:masters, gets 403 naming the right', async () => {
    const before = seen.length;
    const r = await post(await jwt({ sub: 'bob', groups: ['system:masters'] }));
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/Forbidden: .*mcpservers\/proxy/);
    expect(seen.length).toBe(before);
    expect(audit.at(-1)).toMatchObject({ user: 'oidc:bob', outcome: 'denied', status: 403 });
  });

  it('a Kubernetes ServiceAccount token for this audience still passes (TokenReview), as the operator sends', async () => {
    const r = await post(await fx.token('editor', [audience]));
    expect(r.status).toBe(200);
    expect(seen.at(-1)!['x-remote-user']).toBe(`system:serviceaccount:${fx.ns}:editor`);
  });

  it('the 401 names the protected resource metadata (RFC 9728), which names the issuer', async () => {
    const r = await post();
    expect(r.status).toBe(401);
    const challenge = r.headers.get('www-authenticate')!;
    const url = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    expect(url).toBe(`http://${NAME}.${fx.ns}.svc.cluster.local:3001/.well-known/oauth-protected-resource/mcp`);
    // Fetched from the gateway itself (the Service name does not resolve here): both well-known paths.
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const m = await fetch(`${gw.url}${path}`);
      expect(m.status).toBe(200);
      expect(await m.json()).toEqual({
        resource: audience,
        authorization_servers: [issuer],
        bearer_methods_supported: ['header'],
        resource_name: `MCPServer ${fx.ns}/${NAME}`,
      });
    }
    expect((await fetch(`${gw.url}/.well-known/oauth-protected-resource/other`)).status).not.toBe(200);
  });

  it('an issuer whose discovery fails: 503 with Retry-After (the caller may retry), and the issuer is not asked again at once', async () => {
    let asked = 0;
    const broken = createServer((_req, res) => {
      asked++;
      res.statusCode = 500;
      res.end('{}');
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    const brokenIssuer = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
    const access = accessFromOptions(
      { auth: 'oidc', mcpserver: `${fx.ns}/${NAME}`, audience: [audience], oidcIssuer: brokenIssuer },
      pino({ level: 'silent' }),
      new Registry(),
      fx.gatewayKc,
    );
    const gw2 = await startGatewayProxy({
      upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      port: 0,
      access,
      registry: new Registry(),
      log: pino({ level: 'silent' }),
    });
    try {
      const before = seen.length;
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${gw2.url}/mcp`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${await jwt({ sub: 'alice' }, { iss: brokenIssuer })}`,
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        });
        expect({ status: r.status, retry: r.headers.get('retry-after') }).toEqual({ status: 503, retry: '1' });
        expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/issuer's keys/);
      }
      expect(asked).toBe(1);
      expect(seen.length).toBe(before);
    } finally {
      await gw2.close();
      await new Promise<void>((r) => broken.close(() => r()));
    }
  });
});
