/**
 * `kubemcp serve --impersonate gateway` (issue 17, "kubemcp serve acts as its caller") against the
 * real local apiserver: the server runs as a ServiceAccount bound only to kubemcp:impersonator (the
 * operator chart's ClusterRole) and sends every Kubernetes request of a call with the
 * Impersonate-User/-Group of the caller its pod's gateway passed (X-Remote-User/-Group from a
 * loopback peer), so RBAC decides per caller: a user with `view` in one namespace lists that
 * namespace and is refused elsewhere, a group's binding counts, no caller or `system:masters` is
 * refused before anything is sent, a session belongs to its caller, watches are per caller, and the
 * audit line names the caller. In-process server on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { IMPERSONATOR_CLUSTER_ROLE_RULES } from '../../charts/operator.js';
import { IMPERSONATOR_ROLE } from '../../charts/mcpserver.js';
import { isLoopbackPeer } from '../../mcp-server/http.js';
import { checkCaller } from '../../mcp-server/kube.js';
import { readState } from '../../cluster/index.js';
import {
  apply,
  createNamespace,
  deleteTestNamespace,
  kubeConfig,
  serviceAccountToken,
  tokenKubeConfig,
} from '../kube.js';
import { callTool, httpTransport, MCP_HEADERS, raw, startHttpServer, text, type HttpServer } from './helpers.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const SA = 'kubemcp-impersonator';
const SECRET_VALUE = 'sk-live-impersonate-test';
let mine: string;
let theirs: string;
let dir: string;
let s: HttpServer;

const init = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

beforeAll(async () => {
  mine = await createNamespace(kc, 'imp-mine');
  theirs = await createNamespace(kc, 'imp-theirs');
  await core.createNamespacedConfigMap({ namespace: mine, body: { metadata: { name: 'mine-cm' }, data: { a: '1' } } });
  await core.createNamespacedConfigMap({
    namespace: theirs,
    body: { metadata: { name: 'app-settings' }, data: { api_key: SECRET_VALUE } },
  });
  // The server's own identity: a ServiceAccount with only the impersonator role (and discovery).
  await core.createNamespacedServiceAccount({ namespace: mine, body: { metadata: { name: SA } } });
  const bind = (kind: 'ClusterRoleBinding' | 'RoleBinding', name: string, role: string, subject: object, ns?: string) =>
    apply(objects, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind,
      metadata: { name, ...(ns ? { namespace: ns } : {}) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [subject],
    });
  await apply(objects, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: IMPERSONATOR_ROLE },
    rules: IMPERSONATOR_CLUSTER_ROLE_RULES,
  });
  await bind('ClusterRoleBinding', `imp-test-${mine}`, IMPERSONATOR_ROLE, {
    kind: 'ServiceAccount',
    name: SA,
    namespace: mine,
  });
  // alice may view her namespace only; group team-b may view the other one.
  await bind(
    'RoleBinding',
    'alice-view',
    'view',
    { kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' },
    mine,
  );
  await bind(
    'RoleBinding',
    'team-b-view',
    'view',
    { kind: 'Group', name: 'team-b', apiGroup: 'rbac.authorization.k8s.io' },
    theirs,
  );
  dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-imp-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, tokenKubeConfig(kc, await serviceAccountToken(kc, mine, SA)).exportConfig(), {
    mode: 0o600,
  });
  s = await startHttpServer(
    {},
    { impersonate: 'gateway' },
    { kubeconfig, impersonate: true, auditLog: path.join(dir, 'audit.log') },
  );
});

afterAll(async () => {
  await s?.close();
  await objects
    .delete({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `imp-test-${mine}` },
    })
    .catch(() => undefined);
  for (const ns of [mine, theirs]) if (ns) await deleteTestNamespace(kc, ns);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kubemcp serve acting as its caller', () => {
  it('lists what the caller may see and is refused, as the caller, elsewhere', async () => {
    const alice = await s.connect({ 'X-Remote-User': 'alice' });
    const own = await callTool(alice, 'list-resources', { kind: 'configmaps', namespace: mine });
    expect(own.isError).toBeFalsy();
    expect(text(own)).toContain('mine-cm');
    const all = await callTool(alice, 'list-resources', { kind: 'configmaps', allNamespaces: true });
    expect(all.isError).toBe(true);
    expect(text(all)).toMatch(/User "alice" cannot list resource "configmaps"/);
    const other = await callTool(alice, 'get-resource', { kind: 'configmap', namespace: theirs, name: 'app-settings' });
    expect(other.isError).toBe(true);
    expect(text(other)).toMatch(/User "alice" cannot get resource "configmaps"/);
    expect(JSON.stringify([all, other])).not.toContain(SECRET_VALUE);
    await alice.close();
  });

  it("counts the caller's groups: team-b reads the other namespace, alice alone does not", async () => {
    const bob = await s.connect({ 'X-Remote-User': 'bob', 'X-Remote-Group': 'team-b' });
    const r = await callTool(bob, 'get-resource', { kind: 'configmap', namespace: theirs, name: 'app-settings' });
    expect(r.isError).toBeFalsy();
    expect(text(r)).toContain(SECRET_VALUE);
    const own = await callTool(bob, 'list-resources', { kind: 'configmaps', namespace: mine });
    expect(own.isError).toBe(true);
    expect(text(own)).toMatch(/User "bob" cannot list/);
    await bob.close();
  });

  it('refuses a request without a caller (401) and a caller claiming system:masters (403); nothing is sent', async () => {
    const none = await raw(s.url, { method: 'POST', headers: MCP_HEADERS, body: init });
    expect(none.status).toBe(401);
    expect(none.body).toMatch(/no verified caller/);
    const masters = await raw(s.url, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'X-Remote-User': 'mallory', 'X-Remote-Group': 'system:masters' },
      body: init,
    });
    expect(masters.status).toBe(403);
    expect(masters.body).toMatch(/system:masters/);
    // Two X-Remote-User headers: ambiguous, refused.
    const two = await new Promise<number>((resolve, reject) => {
      void import('node:http').then(({ request }) => {
        const req = request(
          s.url,
          { method: 'POST', headers: { ...MCP_HEADERS, 'X-Remote-User': ['alice', 'bob'] } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(init);
      });
    });
    expect(two).toBe(401);
    // The probes need no caller: /ready asks the apiserver as the server itself.
    expect((await raw(s.url.replace('/mcp', '/ready'))).status).toBe(200);
  });

  it("does not let another caller use a caller's session (404)", async () => {
    const alice = await s.connect({ 'X-Remote-User': 'alice' });
    const sid = httpTransport(alice).sessionId!;
    const stolen = await raw(s.url, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'mcp-session-id': sid, 'X-Remote-User': 'bob', 'X-Remote-Group': 'team-b' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(stolen.status).toBe(404);
    const mineAgain = await raw(s.url, {
      method: 'POST',
      headers: {
        ...MCP_HEADERS,
        'mcp-session-id': sid,
        'X-Remote-User': 'alice',
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
    });
    expect(mineAgain.status).toBe(200);
    await alice.close();
  });

  it("keeps one watch per caller: a subscription opened as one caller never serves another's", async () => {
    const uri = `k8s://namespace/${mine}/pods`;
    const before = s.running.watches();
    const alice = await s.connect({ 'X-Remote-User': 'alice' });
    await alice.subscribeResource({ uri });
    expect(s.running.watches()).toBe(before + 1);
    // bob cannot list pods in alice's namespace: his subscription fails as bob, not served by alice's watch.
    const bob = await s.connect({ 'X-Remote-User': 'bob', 'X-Remote-Group': 'team-b' });
    await expect(bob.subscribeResource({ uri })).rejects.toThrow(/bob/);
    expect(s.running.watches()).toBe(before + 1);
    await alice.close();
    await bob.close();
  });

  it('names the caller in the audit line of a mutating call', async () => {
    const alice = await s.connect({ 'X-Remote-User': 'alice', 'X-Remote-Group': 'devs' });
    const r = await callTool(alice, 'delete-resource', { kind: 'configmap', namespace: mine, name: 'mine-cm' });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/User "alice" cannot delete/);
    await alice.close();
    const lines = readFileSync(path.join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.tool === 'delete-resource');
    expect(line).toMatchObject({ user: 'alice', groups: ['devs'], result: 'error' });
    // The object is still there: the apiserver refused alice.
    await expect(core.readNamespacedConfigMap({ namespace: mine, name: 'mine-cm' })).resolves.toBeDefined();
  });
});

describe('the trust boundary, on a real non-loopback address', () => {
  const hostIp = readState()?.realNode?.network?.hostIp;
  // The host's end of the real node's veth: a local address that is not loopback, so a connection
  // to it comes from a non-loopback peer, as one from another pod would.
  (hostIp ? it : it.skip)(
    'refuses /mcp from a peer that is not loopback (403), whatever identity headers it sends',
    async () => {
      const open = await startHttpServer(
        {},
        { impersonate: 'gateway', host: '0.0.0.0' },
        { kubeconfig: path.join(dir, 'kubeconfig'), impersonate: true },
      );
      try {
        const url = `http://${hostIp}:${open.running.port}/mcp`;
        const forged = await raw(url, {
          method: 'POST',
          headers: { ...MCP_HEADERS, Host: '127.0.0.1', 'X-Remote-User': 'alice', 'X-Remote-Group': 'team-b' },
          body: init,
        });
        expect(forged.status).toBe(403);
        expect(forged.body).toMatch(/takes calls only from its pod's gateway/);
        // The same from loopback is taken.
        const local = await raw(`http://127.0.0.1:${open.running.port}/mcp`, {
          method: 'POST',
          headers: { ...MCP_HEADERS, 'X-Remote-User': 'alice' },
          body: init,
        });
        expect(local.status).toBe(200);
      } finally {
        await open.close();
      }
    },
  );
});

describe('the trust boundary (pure)', () => {
  it('takes only loopback peers for the gateway', () => {
    for (const a of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) expect(isLoopbackPeer(a)).toBe(true);
    for (const a of [
      '10.244.0.5',
      '::ffff:10.0.0.1',
      '0.0.0.0',
      '',
      undefined,
      '128.0.0.1',
      'fe80::1',
      '127.0.0.1.evil',
    ])
      expect(isLoopbackPeer(a)).toBe(false);
  });
  it('refuses malformed and privileged callers', () => {
    expect(() => checkCaller({ username: '', groups: [] })).toThrow(/no verified username/);
    expect(() => checkCaller({ username: 'system:anonymous', groups: [] })).toThrow(/no verified username/);
    expect(() => checkCaller({ username: 'a\r\nImpersonate-User: admin', groups: [] })).toThrow(/no verified username/);
    expect(() => checkCaller({ username: 'a', groups: ['x,system:masters'] })).toThrow(/malformed/);
    expect(() => checkCaller({ username: 'a', groups: ['system:masters'] })).toThrow(/never impersonates/);
    expect(() => checkCaller({ username: 'a', groups: Array.from({ length: 65 }, (_, i) => `g${i}`) })).toThrow(
      /at most 64/,
    );
    expect(checkCaller({ username: 'system:serviceaccount:ns:sa', groups: ['system:serviceaccounts'] }).username).toBe(
      'system:serviceaccount:ns:sa',
    );
  });
});
