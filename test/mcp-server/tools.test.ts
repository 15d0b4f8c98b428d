/**
 * Every tool of `kubemcp serve` through the SDK client over Streamable HTTP (in-process server
 * on 127.0.0.1:0) against the real local control plane: the seed's create-pod / get-pod-logs /
 * delete-pod, the generic tools on a Deployment and a CRD kind, workloads (scale, rollout
 * restart/status/undo, logs), events, namespaces, nodes, contexts, MCPServer tools; errors
 * (404, 409, 403, unreachable apiserver, bad arguments, unknown tools) as MCP error results;
 * the size budget; the policy modes (read-only, disable-destructive, allow/deny tools,
 * namespace allow-list, kind deny-list).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';
import { MCPS_COLUMNS } from '../shapes.js';
import { startHttpServer, text, type HttpServer, callTool } from './helpers.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
let ns: string;
let s: HttpServer;
let c: Client;

const call = (name: string, args: Record<string, unknown> = {}) => callTool(c, name, args);

const deployment = (name: string, image: string, replicas = 2) => `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels: { app: ${name} }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers:
        - name: main
          image: ${image}
`;

beforeAll(async () => {
  await installCrd(kc);
  ns = await createNamespace(kc, 'mcp-tools');
  s = await startHttpServer({}, {}, { budget: 24_000 });
  c = await s.connect();
});
afterAll(async () => {
  await s?.close();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('seed 001 tools', () => {
  it('create-pod creates the seed pod (labels, requests, limits), get-pod-logs reads it, delete-pod deletes it', async () => {
    const r = await call('create-pod', { name: 'seed-pod', image: 'nginx:1.27', namespace: ns });
    expect(r.isError).toBeFalsy();
    expect(text(r)).toMatch(/Created pod "seed-pod" in namespace/);
    expect(r.structuredContent).toMatchObject({ kind: 'Pod', name: 'seed-pod', namespace: ns, truncated: false });
    const pod = await core.readNamespacedPod({ name: 'seed-pod', namespace: ns });
    expect(pod.metadata?.labels).toMatchObject({ 'created-by': 'mcp-server' });
    expect(pod.spec?.containers[0]?.resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { cpu: '500m', memory: '512Mi' },
    });

    // A second create is a 409 Conflict, returned as an error result.
    const again = await call('create-pod', { name: 'seed-pod', image: 'nginx:1.27', namespace: ns });
    expect(again.isError).toBe(true);
    expect(text(again)).toMatch(/AlreadyExists \(409\)/);

    await waitFor(
      'seed-pod Running',
      async () => (await core.readNamespacedPod({ name: 'seed-pod', namespace: ns })).status?.phase === 'Running',
      60_000,
    );
    const logs = await call('get-pod-logs', { name: 'seed-pod', namespace: ns });
    // kwok serves one fixed simulated log line for every container (cluster/).
    expect(text(logs)).toMatch(/this container is simulated/);
    expect(logs.isError).toBeFalsy();
    expect(logs.structuredContent.pods[0]).toMatchObject({ pod: 'seed-pod', container: 'seed-pod', cut: false });

    const del = await call('delete-pod', { name: 'seed-pod', namespace: ns, gracePeriodSeconds: 0 });
    expect(del.isError).toBeFalsy();
    expect(del.structuredContent).toMatchObject({ kind: 'Pod', name: 'seed-pod', namespace: ns });
    await waitFor(
      'seed-pod gone',
      async () =>
        (await core.readNamespacedPod({ name: 'seed-pod', namespace: ns }).catch(() => undefined)) === undefined,
      30_000,
    );
    const gone = await call('delete-pod', { name: 'seed-pod', namespace: ns });
    expect(gone.isError).toBe(true);
    expect(text(gone)).toMatch(/NotFound \(404\)/);
  });
});

describe('generic and workload tools on a Deployment', () => {
  beforeAll(async () => {
    const r = await call('apply-manifest', { manifest: deployment('web', 'nginx:1.26'), namespace: ns });
    expect(r.isError).toBeFalsy();
    await waitFor(
      'web available',
      async () => (await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).status?.availableReplicas === 2,
      90_000,
    );
  });

  it('apply-manifest dry run validates without persisting, and reports apiserver validation errors', async () => {
    const dry = await call('apply-manifest', { manifest: deployment('dry', 'nginx'), namespace: ns, dryRun: true });
    expect(dry.isError).toBeFalsy();
    expect(text(dry)).toMatch(/deployment\/dry \(namespace .*\) applied \(server dry run\)/);
    expect(dry.structuredContent).toMatchObject({
      dryRun: true,
      results: [{ kind: 'Deployment', name: 'dry', namespace: ns }],
    });
    await expect(apps.readNamespacedDeployment({ name: 'dry', namespace: ns })).rejects.toBeDefined();
    const bad = await call('apply-manifest', { manifest: deployment('bad', 'nginx', -1), namespace: ns });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/spec\.replicas: Invalid value: -1/);
    const notYaml = await call('apply-manifest', { manifest: 'kind: [unclosed' });
    expect(notYaml.isError).toBe(true);
    expect(text(notYaml)).toMatch(/not valid YAML/);
  });

  it('list-resources returns the compact apiserver table, with selectors, all namespaces and pagination', async () => {
    const r = await call('list-resources', { kind: 'pods', namespace: ns, labelSelector: 'app=web' });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent.columns).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    expect(r.structuredContent.rows).toHaveLength(2);
    expect(text(r)).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\nweb-\S+\s+1\/1\s+Running/);
    const all = await call('list-resources', { kind: 'deploy', allNamespaces: true });
    expect(all.structuredContent.columns[0]).toBe('NAMESPACE');
    expect(all.structuredContent.rows.some((row: string[]) => row[0] === ns && row[1] === 'web')).toBe(true);
    const page = await call('list-resources', { kind: 'po', namespace: ns, limit: 1 });
    expect(page.structuredContent.rows).toHaveLength(1);
    expect(page.structuredContent.continue).toEqual(expect.any(String));
    expect(text(page)).toMatch(/call again with continue=/);
    const next = await call('list-resources', {
      kind: 'po',
      namespace: ns,
      limit: 1,
      continue: page.structuredContent.continue,
    });
    expect(next.structuredContent.rows[0][0]).not.toBe(page.structuredContent.rows[0][0]);
    const crd = await call('list-resources', { kind: 'customresourcedefinitions' });
    expect(text(crd)).toMatch(/mcpservers\.mcp\.example\.com/);
    const none = await call('list-resources', { kind: 'configmaps', namespace: ns, labelSelector: 'nothing=here' });
    expect(text(none)).toBe('No ConfigMap found.');
  });

  it('get-resource drops managedFields and the last-applied annotation; kind/name syntax works', async () => {
    const r = await call('get-resource', { kind: 'Deployment', name: 'web', namespace: ns });
    expect(r.isError).toBeFalsy();
    expect(text(r)).not.toMatch(/managedFields/);
    expect(r.structuredContent.object.metadata.managedFields).toBeUndefined();
    expect(r.structuredContent.object.spec.replicas).toBe(2);
    const slash = await call('get-resource', { kind: 'deployments.apps/web', namespace: ns });
    expect(slash.structuredContent.name).toBe('web');
    await call('patch-resource', {
      kind: 'deploy',
      name: 'web',
      namespace: ns,
      patch: {
        metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"x":1}', keep: 'me' } },
      },
    });
    const again = await call('get-resource', { kind: 'deploy/web', namespace: ns });
    expect(again.structuredContent.object.metadata.annotations).toEqual(expect.objectContaining({ keep: 'me' }));
    expect(text(again)).not.toMatch(/last-applied-configuration/);
    const missing = await call('get-resource', { kind: 'deploy', name: 'nope', namespace: ns });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toMatch(/NotFound \(404\): deployments.apps "nope" not found/);
    const unknownKind = await call('get-resource', { kind: 'Frobnicator', name: 'x' });
    expect(text(unknownKind)).toMatch(/no resource type "Frobnicator"/);
  });

  it('describe-resource returns object, conditions, pods and events in one call', async () => {
    const r = await call('describe-resource', { kind: 'deployment', name: 'web', namespace: ns });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent.conditions.map((x) => x.type)).toEqual(
      expect.arrayContaining(['Available', 'Progressing']),
    );
    expect(r.structuredContent.pods).toHaveLength(2);
    expect(r.structuredContent.events.some((e: string[]) => e[2] === 'ScalingReplicaSet')).toBe(true);
    expect(text(r)).toMatch(/Pods \(2\):/);
    const pod = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' })).items[0]!;
    const pd = await call('describe-resource', { kind: 'pod', name: pod.metadata!.name, namespace: ns });
    expect(pd.structuredContent.owners.map((o) => o.kind)).toEqual(['ReplicaSet', 'Deployment']);
    expect(text(pd)).toMatch(/Owner chain: ReplicaSet\/web-\S+ <- Deployment\/web/);
  });

  it('patch-resource applies merge, json and strategic patches; dry run does not persist', async () => {
    const m = await call('patch-resource', {
      kind: 'deploy',
      name: 'web',
      namespace: ns,
      patch: '{"metadata":{"labels":{"tier":"front"}}}',
    });
    expect(m.structuredContent.object.metadata.labels.tier).toBe('front');
    const j = await call('patch-resource', {
      kind: 'deploy',
      name: 'web',
      namespace: ns,
      type: 'json',
      patch: [{ op: 'add', path: '/metadata/labels/json', value: 'yes' }],
    });
    expect(j.structuredContent.object.metadata.labels.json).toBe('yes');
    const sm = await call('patch-resource', {
      kind: 'deploy',
      name: 'web',
      namespace: ns,
      type: 'strategic',
      patch: { metadata: { labels: { sm: 'ok' } } },
      dryRun: true,
    });
    expect(sm.structuredContent.object.metadata.labels.sm).toBe('ok');
    expect(text(sm)).toMatch(/^# server dry run/);
    expect((await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).metadata?.labels?.sm).toBeUndefined();
    const wrong = await call('patch-resource', {
      kind: 'deploy',
      name: 'web',
      namespace: ns,
      type: 'json',
      patch: { not: 'an array' },
    });
    expect(wrong.isError).toBe(true);
    const notJson = await call('patch-resource', { kind: 'deploy', name: 'web', namespace: ns, patch: '{oops' });
    expect(text(notJson)).toMatch(/invalid patch: not valid JSON/);
  });

  it('scale-workload, restart-rollout, get-rollout-status and undo-rollout behave as kubectl', async () => {
    const sc = await call('scale-workload', { kind: 'deployment', name: 'web', namespace: ns, replicas: 3 });
    expect(sc.structuredContent).toMatchObject({ replicas: 3, previous: 2 });
    const st = await call('get-rollout-status', { kind: 'deployment', name: 'web', namespace: ns, waitSeconds: 60 });
    expect(st.structuredContent).toMatchObject({ done: true, failed: false });
    expect(text(st)).toBe('deployment "web" successfully rolled out');

    const rs = await call('restart-rollout', { kind: 'deployment/web', namespace: ns });
    expect(rs.isError).toBeFalsy();
    const dep = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(dep.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toEqual(expect.any(String));
    await call('get-rollout-status', { kind: 'deployment', name: 'web', namespace: ns, waitSeconds: 60 });

    // Revision 3: a new image; undo goes back to revision 2 (the restart's template).
    await call('apply-manifest', { manifest: deployment('web', 'nginx:1.27', 3), namespace: ns, force: true });
    await call('get-rollout-status', { kind: 'deployment', name: 'web', namespace: ns, waitSeconds: 60 });
    const undo = await call('undo-rollout', { kind: 'deployment', name: 'web', namespace: ns });
    expect(undo.isError).toBeFalsy();
    expect(undo.structuredContent).toMatchObject({ fromRevision: 3, toRevision: 2 });
    const after = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(after.spec?.template.spec?.containers[0]?.image).toBe('nginx:1.26');
    const noRev = await call('undo-rollout', { kind: 'deployment', name: 'web', namespace: ns, toRevision: 99 });
    expect(text(noRev)).toMatch(/no revision 99/);
    const notScalable = await call('scale-workload', {
      kind: 'configmap',
      name: 'kube-root-ca.crt',
      namespace: ns,
      replicas: 1,
    });
    expect(text(notScalable)).toMatch(/has no scale subresource/);
    const notRollout = await call('get-rollout-status', { kind: 'pod', name: 'x', namespace: ns });
    expect(text(notRollout)).toMatch(/not supported here/);
  });

  it("get-logs reads a workload's pods, filters by regex with context, and caps bytes", async () => {
    await call('get-rollout-status', { kind: 'deployment', name: 'web', namespace: ns, waitSeconds: 60 });
    const r = await call('get-logs', { kind: 'deployment', name: 'web', namespace: ns });
    expect(text(r)).toMatch(/==> web-\S+\/main <==\n.*simulated/);
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent.pods.length).toBeGreaterThanOrEqual(1);
    const f = await call('get-logs', { kind: 'deployment', name: 'web', namespace: ns, filter: 'no-such-line' });
    expect(f.structuredContent.matches).toBe(0);
    const badRe = await call('get-logs', { kind: 'deployment', name: 'web', namespace: ns, filter: '(' });
    expect(text(badRe)).toMatch(/invalid filter: not a valid RE2 regular expression/);
    const cap = await call('get-logs', { kind: 'deployment', name: 'web', namespace: ns, maxBytes: 256 });
    expect(cap.structuredContent.pods.every((p) => p.bytes <= 256)).toBe(true);
    const noPod = await call('get-logs', { pod: 'nope', namespace: ns });
    expect(text(noPod)).toMatch(/NotFound/);
    const noTarget = await call('get-logs', { namespace: ns });
    expect(text(noTarget)).toMatch(/give `pod`, or `kind` and `name`/);
  });

  it('list-events by namespace, by object, and warnings only', async () => {
    const r = await call('list-events', { namespace: ns });
    expect(r.structuredContent.columns).toEqual(['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'COUNT', 'MESSAGE']);
    expect(r.structuredContent.rows.length).toBeGreaterThan(0);
    const byObj = await call('list-events', { namespace: ns, kind: 'deployment', name: 'web' });
    expect(byObj.structuredContent.rows.every((row: string[]) => row[3] === 'deployment/web')).toBe(true);
    const warn = await call('list-events', { namespace: ns, type: 'Warning' });
    expect(warn.structuredContent.rows.every((row: string[]) => row[1] === 'Warning')).toBe(true);
    const all = await call('list-events', { allNamespaces: true, limit: 5 });
    expect(all.structuredContent.rows.length).toBeLessThanOrEqual(5);
    expect(all.structuredContent.columns[0]).toBe('NAMESPACE');
  });

  it('list-namespaces, list-nodes, list-contexts', async () => {
    const n = await call('list-namespaces');
    expect(n.structuredContent.rows.map((r: string[]) => r[0])).toEqual(
      expect.arrayContaining(['default', 'kube-system', ns]),
    );
    const nodes = await call('list-nodes');
    expect(text(nodes)).toMatch(/kwok-node-0\s+Ready/);
    const ctx = await call('list-contexts');
    expect(ctx.structuredContent.rows[0]).toEqual(['*', 'kubemcp', expect.any(String), expect.any(String), '', 'yes']);
  });

  it('delete-resource deletes (dry run first) and reports NotFound after', async () => {
    await call('apply-manifest', {
      manifest: `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: doomed }\ndata: { a: b }\n`,
      namespace: ns,
    });
    const dry = await call('delete-resource', { kind: 'cm', name: 'doomed', namespace: ns, dryRun: true });
    expect(dry.structuredContent.status).toBe('dry-run');
    await expect(core.readNamespacedConfigMap({ name: 'doomed', namespace: ns })).resolves.toBeDefined();
    const del = await call('delete-resource', { kind: 'configmap/doomed', namespace: ns });
    expect(del.structuredContent.status).toBe('deleted');
    const again = await call('delete-resource', { kind: 'configmap/doomed', namespace: ns });
    expect(text(again)).toMatch(/NotFound \(404\)/);
  });
});

describe('MCPServer tools', () => {
  it('apply-mcpserver validates and applies, list/get show it, scale-workload scales it, delete-mcpserver deletes it', async () => {
    const bad = await call('apply-mcpserver', { name: 'srv', namespace: ns, spec: { image: 'x', transport: 'grpc' } });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/spec\.transport/);
    const r = await call('apply-mcpserver', {
      name: 'srv',
      namespace: ns,
      spec: { image: 'mcp-k8s-server:latest', port: 3001 },
    });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent.object.spec).toMatchObject({
      image: 'mcp-k8s-server:latest',
      port: 3001,
      transport: 'streamable-http',
      replicas: 1,
    });
    const list = await call('list-mcpservers', { namespace: ns });
    expect(list.structuredContent.columns).toEqual(MCPS_COLUMNS);
    expect(list.structuredContent.rows[0][0]).toBe('srv');
    const get = await call('get-mcpserver', { name: 'srv', namespace: ns });
    expect(get.structuredContent.object.kind).toBe('MCPServer');
    const sc = await call('scale-workload', { kind: 'mcps', name: 'srv', namespace: ns, replicas: 2 });
    expect(sc.isError).toBeFalsy();
    expect(sc.structuredContent).toMatchObject({ kind: 'MCPServer', replicas: 2, previous: 1 });
    const del = await call('delete-mcpserver', { name: 'srv', namespace: ns });
    expect(del.isError).toBeFalsy();
    const gone = await call('get-mcpserver', { name: 'srv', namespace: ns });
    await waitFor(
      'srv gone',
      async () => (await call('get-mcpserver', { name: 'srv', namespace: ns })).isError === true,
      30_000,
    );
    expect(gone).toBeDefined();
  });
});

describe('errors come back as MCP error results, and the server keeps serving', () => {
  it('refuses bad arguments and unknown tools with isError', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['no-such-tool', {}],
      ['get-resource', {}],
      ['get-resource', { kind: 42 }],
      ['list-resources', { kind: 'pods', limit: -1 }],
      ['scale-workload', { kind: 'deploy', name: 'web', replicas: 'many' }],
      ['create-pod', { name: '' }],
      ['get-resource', { kind: 'pods' }],
      ['patch-resource', { kind: 'deploy', name: 'web', patch: 5 }],
      ['list-events', { name: 'x' }],
      ['apply-manifest', { manifest: '' }],
      ['apply-manifest', { manifest: 'just a string' }],
      ['apply-manifest', { manifest: 'apiVersion: v1\nkind: ConfigMap\n' }],
      ['get-resource', { kind: 'pods', name: 'x', context: 'no-such-context' }],
      ['create-pod', { name: 'Invalid_Name', image: 'x', namespace: ns }],
    ];
    for (const [name, args] of cases) {
      const r = await call(name, args);
      expect(r.isError).toBe(true);
      expect(text(r).length).toBeGreaterThan(10);
    }
    expect((await call('list-contexts')).isError).toBeFalsy();
  });

  it('a 403 from the apiserver (a ServiceAccount without RBAC) is an error result naming Forbidden', async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nobody' } } });
    const tok = await core.createNamespacedServiceAccountToken({
      name: 'nobody',
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const cluster = kc.getCurrentCluster()!;
    const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-'));
    const file = path.join(dir, 'kubeconfig');
    const limited = new k8s.KubeConfig();
    limited.loadFromOptions({
      clusters: [{ name: 'c', server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
      users: [{ name: 'nobody', token: tok.status!.token }],
      contexts: [{ name: 'nobody', cluster: 'c', user: 'nobody', namespace: ns }],
      currentContext: 'nobody',
    });
    writeFileSync(file, limited.exportConfig());
    const ls = await startHttpServer({}, {}, { kubeconfig: file });
    try {
      const lc = await ls.connect();
      const r = await callTool(lc, 'list-resources', { kind: 'secrets', namespace: ns });
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(/Forbidden \(403\)/);
      const ok = await callTool(lc, 'list-contexts', {});
      expect(ok.isError).toBeFalsy();
    } finally {
      await ls.close();
    }
  });

  it('an unreachable apiserver is an error result, and /ready reports 503', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-'));
    const file = path.join(dir, 'kubeconfig');
    const dead = new k8s.KubeConfig();
    dead.loadFromOptions({
      clusters: [{ name: 'dead', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'dead', cluster: 'dead', user: 'u' }],
      currentContext: 'dead',
    });
    writeFileSync(file, dead.exportConfig());
    const ds = await startHttpServer({}, {}, { kubeconfig: file });
    try {
      const dc = await ds.connect();
      const r = await callTool(dc, 'list-resources', { kind: 'pods' });
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(/Unreachable: cannot reach the apiserver at https:\/\/127\.0\.0\.1:1/);
      const res = await dc.readResource({ uri: 'k8s://cluster/nodes' }).catch((e: Error) => e);
      expect(res).toBeInstanceOf(Error);
      const { raw } = await import('./helpers.js');
      const ready = await raw(ds.url.replace('/mcp', '/ready'));
      expect(ready.status).toBe(503);
    } finally {
      await ds.close();
    }
  });
});

describe('several kubeconfig contexts', () => {
  it('requires a `context` argument when more than one context is allowed, and uses the one named', async () => {
    const two = new k8s.KubeConfig();
    two.loadFromString(kc.exportConfig());
    const cur = two.getContextObject(two.getCurrentContext())!;
    two.addContext({ name: 'second', cluster: cur.cluster, user: cur.user, namespace: ns });
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'kubemcp-')), 'kubeconfig');
    writeFileSync(file, two.exportConfig());
    const m = await startHttpServer({}, {}, { kubeconfig: file, allowContexts: ['*'] });
    try {
      const mc = await m.connect();
      const ctxs = await callTool(mc, 'list-contexts', {});
      expect(ctxs.structuredContent.rows.map((r: string[]) => [r[1], r[5]])).toEqual([
        [cur.name, 'yes'],
        ['second', 'yes'],
      ]);
      const none = await callTool(mc, 'list-resources', { kind: 'pods' });
      expect(none.isError).toBe(true);
      expect(text(none)).toMatch(/the "context" argument is required: allowed contexts are/);
      // "second" defaults to the test namespace (its kubeconfig namespace).
      const second = await callTool(mc, 'list-resources', { kind: 'deploy', context: 'second' });
      expect(second.isError).toBeFalsy();
      expect(second.structuredContent.rows.map((r: string[]) => r[0])).toContain('web');
      const bad = await callTool(mc, 'list-resources', { kind: 'pods', context: 'third' });
      expect(text(bad)).toMatch(/context "third" is not allowed/);
    } finally {
      await m.close();
    }
  });
});

describe('resource subscriptions over Streamable HTTP', () => {
  it('delivers notifications/resources/updated on the session stream when a pod changes', async () => {
    const { ResourceUpdatedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const sc = await s.connect();
    const uri = `k8s://namespace/${ns}/pods`;
    const seen: string[] = [];
    sc.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      seen.push(n.params.uri);
    });
    await sc.subscribeResource({ uri });
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'http-watched' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    });
    await waitFor('notification over HTTP', async () => seen.includes(uri), 20_000, 100);
    await sc.unsubscribeResource({ uri });
    await core.deleteNamespacedPod({ name: 'http-watched', namespace: ns, gracePeriodSeconds: 0 });
  });
});

describe('size budget', () => {
  it('cuts a long list by whole rows and says how to narrow it', async () => {
    const small = await startHttpServer({}, {}, { budget: 1000 });
    try {
      const sc = await small.connect();
      for (let i = 0; i < 25; i++)
        await core.createNamespacedConfigMap({
          namespace: ns,
          body: { metadata: { name: `budget-${String(i).padStart(2, '0')}-${'x'.repeat(30)}` } },
        });
      const r = await callTool(sc, 'list-resources', { kind: 'configmaps', namespace: ns });
      expect(r.structuredContent.truncated).toBe(true);
      expect(r.structuredContent.shown).toBeLessThan(r.structuredContent.total);
      expect(r.structuredContent.rows).toHaveLength(r.structuredContent.shown);
      expect(text(r)).toMatch(
        /\[truncated: showing \d+ of \d+ rows within the 1000-character budget\. Narrow with labelSelector, fieldSelector, namespace or limit\.\]/,
      );
      expect(text(r).split('\n[truncated')[0]!.length).toBeLessThanOrEqual(1000);
      const g = await callTool(sc, 'get-resource', { kind: 'namespace', name: 'kube-system' });
      expect(g.isError).toBeFalsy();
    } finally {
      await small.close();
    }
  });
});

describe('policy modes', () => {
  it('read-only: mutating tools are neither listed nor callable; the gateway refuses writes', async () => {
    const ro = await startHttpServer({ readOnly: true });
    try {
      const rc = await ro.connect();
      const names = (await rc.listTools()).tools.map((t) => t.name);
      for (const t of [
        'create-pod',
        'delete-pod',
        'apply-manifest',
        'patch-resource',
        'delete-resource',
        'scale-workload',
        'restart-rollout',
        'undo-rollout',
        'apply-mcpserver',
        'delete-mcpserver',
      ]) {
        expect(names).not.toContain(t);
      }
      expect(names).toEqual(
        expect.arrayContaining([
          'get-pod-logs',
          'list-resources',
          'get-resource',
          'describe-resource',
          'get-rollout-status',
          'get-logs',
        ]),
      );
      const r = await callTool(rc, 'create-pod', { name: 'x', image: 'y', namespace: ns });
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(/Tool create-pod not found/);
      const podApi = await ro.kube.resolve('pods');
      await expect(ro.kube.request({ method: 'DELETE', api: podApi, namespace: ns, name: 'x' })).rejects.toThrow(
        /read-only/,
      );
    } finally {
      await ro.close();
    }
  });

  it('disable-destructive hides delete tools; allow/deny lists filter tools', async () => {
    const d = await startHttpServer({ disableDestructive: true, denyTools: ['list-nodes'] });
    const a = await startHttpServer({ allowTools: ['list-resources', 'get-resource'] });
    try {
      const names = (await (await d.connect()).listTools()).tools.map((t) => t.name);
      expect(names.filter((n) => n.startsWith('delete-'))).toEqual([]);
      expect(names).toContain('apply-manifest');
      expect(names).not.toContain('list-nodes');
      const only = (await (await a.connect()).listTools()).tools.map((t) => t.name);
      expect(only.sort()).toEqual(['get-resource', 'list-resources']);
    } finally {
      await d.close();
      await a.close();
    }
  });

  it('namespace allow-list and kind deny-list are enforced below the tools', async () => {
    const p = await startHttpServer({ namespaces: [ns], denyKinds: ['configmaps', 'Role.rbac.authorization.k8s.io'] });
    try {
      const pc = await p.connect();
      const other = await callTool(pc, 'list-resources', { kind: 'pods', namespace: 'kube-system' });
      expect(text(other)).toMatch(/refused by policy: namespace kube-system is not allowed/);
      const all = await callTool(pc, 'list-resources', { kind: 'deploy', allNamespaces: true });
      expect(all.isError).toBeFalsy();
      expect(all.structuredContent.rows.every((r: string[]) => r[0] === ns)).toBe(true);
      const nsList = await callTool(pc, 'list-namespaces', {});
      expect(nsList.structuredContent.rows.map((r: string[]) => r[0])).toEqual([ns]);
      const cm = await callTool(pc, 'get-resource', { kind: 'ConfigMap', name: 'kube-root-ca.crt', namespace: ns });
      expect(text(cm)).toMatch(/refused by policy: kind ConfigMap is denied/);
      const viaApply = await callTool(pc, 'apply-manifest', {
        manifest: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sneaky}\n',
        namespace: ns,
      });
      expect(text(viaApply)).toMatch(/kind ConfigMap is denied/);
      const role = await callTool(pc, 'list-resources', { kind: 'roles', namespace: ns });
      expect(text(role)).toMatch(/kind Role is denied/);
      const seed = await callTool(pc, 'create-pod', { name: 'p', image: 'x', namespace: 'default' });
      expect(text(seed)).toMatch(/namespace default is not allowed/);
      const events = await callTool(pc, 'list-events', { allNamespaces: true });
      expect(events.isError).toBeFalsy();
      const nodes = await pc.readResource({ uri: 'k8s://cluster/nodes' });
      expect(nodes.contents).toHaveLength(1);
      const foreignPods = await pc.readResource({ uri: 'k8s://namespace/kube-system/pods' }).catch((e: Error) => e);
      expect(String(foreignPods)).toMatch(/not allowed/);
    } finally {
      await p.close();
    }
  });
});
