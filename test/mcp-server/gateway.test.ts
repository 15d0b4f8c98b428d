/**
 * The typed gateway (issue 9, "The gateway, typed"), against the real local control plane:
 * get, list, table, create, apply, patch (merge/json/strategic), delete, getScale/scale, logs and
 * watch return the apiserver's objects, write as the one FIELD_MANAGER, fail with KubeError
 * (status code, reason) for apiserver failures and with InvalidArgumentError naming the argument
 * for bad input (nothing sent). Then, through the tools: every kind of bad input is an MCP error
 * result naming the argument, every apiserver failure one with the HTTP status and reason, and
 * the server keeps serving. Traffic to the local apiserver and 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  FIELD_MANAGER,
  KubeError,
  KubeGateway,
  type KubernetesObject,
  type WatchEvent,
} from '../../mcp-server/kube.js';
import { InvalidArgumentError } from '../../mcp-server/names.js';
import { Policy } from '../../mcp-server/policy.js';
import { createNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';
import { startHttpServer, text, type HttpServer } from './helpers.js';

/** A ConfigMap as the gateway returns it. */
type ConfigMapLike = KubernetesObject & { data?: Record<string, string> };

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
let ns: string;
let kube: KubeGateway;

beforeAll(async () => {
  ns = await createNamespace(kc, 'mcp-gateway');
  kube = new KubeGateway({ policy: new Policy(), kubeconfig: process.env.KUBECONFIG, timeoutMs: 10_000 });
});
afterAll(async () => {
  kube?.close();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

const managers = (o: { metadata?: { managedFields?: Array<{ manager?: string }> } }) =>
  (o.metadata?.managedFields ?? []).map((f) => f.manager);

describe('typed operations', () => {
  it('create, get, list, table, apply and the three patch types write as FIELD_MANAGER and return the stored object', async () => {
    const cm = await kube.resolve('configmaps');
    const created = await kube.create<ConfigMapLike>(
      { api: cm, namespace: ns },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'typed', labels: { app: 'typed' } }, data: { a: '1' } },
    );
    expect(created.metadata?.uid).toBeTruthy();
    expect(created.data).toEqual({ a: '1' });
    const raw = await core.readNamespacedConfigMap({ name: 'typed', namespace: ns });
    expect(managers(raw)).toContain(FIELD_MANAGER);

    const got = await kube.get<ConfigMapLike>({ api: cm, namespace: ns, name: 'typed' });
    expect(got.metadata?.resourceVersion).toBeTruthy();
    const list = await kube.list<ConfigMapLike>({ api: cm, namespace: ns }, { labelSelector: 'app=typed' });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['typed']);
    expect(list.metadata?.resourceVersion).toBeTruthy();
    const none = await kube.list({ api: cm, namespace: ns }, { labelSelector: 'app=nothing-has-this' });
    expect(none.items).toEqual([]);
    const table = await kube.table({ api: cm, namespace: ns }, { labelSelector: 'app=typed' });
    expect(table.columnDefinitions?.map((c) => c.name)).toContain('Name');
    expect(table.rows?.length).toBe(1);

    const applied = await kube.apply<ConfigMapLike>(
      { api: cm, namespace: ns, name: 'applied' },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied', namespace: ns }, data: { b: '2' } },
    );
    expect(applied.data).toEqual({ b: '2' });
    expect(managers(await core.readNamespacedConfigMap({ name: 'applied', namespace: ns }))).toEqual([FIELD_MANAGER]);

    const merged = await kube.patch<ConfigMapLike>({ api: cm, namespace: ns, name: 'typed' }, 'merge', {
      data: { m: 'merge' },
    });
    expect(merged.data).toEqual({ a: '1', m: 'merge' });
    const json = await kube.patch<ConfigMapLike>({ api: cm, namespace: ns, name: 'typed' }, 'json', [
      { op: 'add', path: '/data/j', value: 'json' },
    ]);
    expect(json.data?.j).toBe('json');
    const strategic = await kube.patch<ConfigMapLike>({ api: cm, namespace: ns, name: 'typed' }, 'strategic', {
      metadata: { labels: { s: 'strategic' } },
    });
    expect(strategic.metadata?.labels).toEqual({ app: 'typed', s: 'strategic' });
    const dry = await kube.patch<ConfigMapLike>(
      { api: cm, namespace: ns, name: 'typed' },
      'merge',
      { data: { dry: 'run' } },
      { dryRun: true },
    );
    expect(dry.data?.dry).toBe('run');
    expect((await core.readNamespacedConfigMap({ name: 'typed', namespace: ns })).data?.dry).toBeUndefined();
  });

  it('getScale and scale go through the scale subresource; a kind without one is bad input naming kind', async () => {
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'scaled' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'scaled' } },
          template: {
            metadata: { labels: { app: 'scaled' } },
            spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] },
          },
        },
      },
    });
    const deploy = await kube.resolve('deploy');
    const ref = { api: deploy, namespace: ns, name: 'scaled' };
    expect((await kube.getScale(ref)).spec?.replicas).toBe(1);
    expect((await kube.scale(ref, 3)).spec?.replicas).toBe(3);
    expect((await apps.readNamespacedDeployment({ name: 'scaled', namespace: ns })).spec?.replicas).toBe(3);
    const cm = await kube.resolve('configmaps');
    await expect(kube.scale({ api: cm, namespace: ns, name: 'typed' }, 2)).rejects.toThrow(InvalidArgumentError);
    await expect(kube.scale({ api: cm, namespace: ns, name: 'typed' }, 2)).rejects.toThrow(
      /invalid kind: ConfigMap has no scale subresource/,
    );
  });

  it('watch delivers typed events of the collection, from a resourceVersion', async () => {
    const cm = await kube.resolve('configmaps');
    const start = await kube.list({ api: cm, namespace: ns }, { limit: 1 });
    const events: WatchEvent[] = [];
    const stop = await kube.watch(
      { api: cm, namespace: ns, resourceVersion: start.metadata?.resourceVersion, timeoutSeconds: 60 },
      (e) => events.push(e),
      () => undefined,
    );
    try {
      await core.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: 'watched' }, data: { w: '1' } },
      });
      const added = await waitFor(
        'ADDED event',
        async () => events.find((e) => e.type === 'ADDED' && e.object.metadata?.name === 'watched'),
        30_000,
      );
      expect(added.object.kind === undefined || added.object.kind === 'ConfigMap').toBe(true);
      expect(added.object.metadata?.namespace).toBe(ns);
    } finally {
      stop();
    }
  });

  it('delete returns the object or a Status; logs read a pod log subresource', async () => {
    const cm = await kube.resolve('configmaps');
    const out = await kube.delete({ api: cm, namespace: ns, name: 'applied' }, { dryRun: true });
    expect(out.kind === 'Status' || out.metadata?.name === 'applied').toBe(true);
    expect((await core.readNamespacedConfigMap({ name: 'applied', namespace: ns })).metadata?.name).toBe('applied');
    await kube.delete({ api: cm, namespace: ns, name: 'applied' });
    await expect(core.readNamespacedConfigMap({ name: 'applied', namespace: ns })).rejects.toThrow();
    const pods = await kube.resolve('pods');
    const missing = await kube
      .logs({ api: pods, namespace: ns, name: 'no-such-pod' }, { container: 'c', maxBytes: 1024 })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(KubeError);
    expect((missing as KubeError).code).toBe(404);
  });

  it('apiserver failures are KubeErrors with the status code and reason', async () => {
    const cm = await kube.resolve('configmaps');
    const notFound = await kube.get({ api: cm, namespace: ns, name: 'absent' }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(KubeError);
    expect(notFound).toMatchObject({ code: 404, reason: 'NotFound' });
    const exists = await kube
      .create({ api: cm, namespace: ns }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'typed' } })
      .catch((e: unknown) => e);
    expect(exists).toMatchObject({ code: 409, reason: 'AlreadyExists' });
    const invalid = await kube
      .patch({ api: cm, namespace: ns, name: 'typed' }, 'merge', { data: { 'not a key!': 'x' } })
      .catch((e: unknown) => e);
    expect(invalid).toMatchObject({ code: 422, reason: 'Invalid' });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'owned' }, data: { a: 'theirs' } },
      fieldManager: 'someone-else',
    });
    const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owned' }, data: { a: 'ours' } };
    const conflict = await kube.apply({ api: cm, namespace: ns, name: 'owned' }, body).catch((e: unknown) => e);
    // Another field manager owns data.a: applying another value is a conflict unless forced.
    expect(conflict).toMatchObject({ code: 409, reason: 'Conflict' });
    expect((conflict as Error).message).toMatch(/someone-else/);
    const forced = await kube.apply<ConfigMapLike>({ api: cm, namespace: ns, name: 'owned' }, body, { force: true });
    expect(forced.data?.a).toBe('ours');
  });

  it('bad input is an InvalidArgumentError naming the argument, and nothing is sent', async () => {
    const cm = await kube.resolve('configmaps');
    const cases: Array<[Promise<unknown>, RegExp]> = [
      [
        kube.patch({ api: cm, namespace: ns, name: 'typed' }, 'json', { not: 'an array' }),
        /invalid patch: a json patch is an array of operations/,
      ],
      [
        kube.patch({ api: cm, namespace: ns, name: 'typed' }, 'merge', [{ op: 'add' }]),
        /invalid patch: a merge patch is a JSON object/,
      ],
      [kube.get({ api: cm, namespace: ns, name: '..' }), /invalid name/],
      [kube.get({ api: cm, namespace: 'Not_A_Namespace', name: 'typed' }), /invalid namespace/],
      [
        kube.get({ api: cm, namespace: ns, name: 'typed', context: 'no-such-context' }),
        /invalid context: context "no-such-context" is not allowed/,
      ],
      [kube.resolve('  '), /invalid kind: must not be empty/],
    ];
    for (const [p, re] of cases) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(String((err as Error).message)).toMatch(re);
    }
    // Against an apiserver that cannot be reached, the same input fails the same way: had
    // anything been sent, the error would say Unreachable.
    const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-dead-'));
    const file = path.join(dir, 'kubeconfig');
    writeFileSync(
      file,
      'apiVersion: v1\nkind: Config\nclusters: [{name: dead, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: dead, context: {cluster: dead, user: u}}]\ncurrent-context: dead\n',
    );
    const dead = new KubeGateway({ policy: new Policy(), kubeconfig: file, timeoutMs: 2000 });
    try {
      const ref = { api: cm, namespace: ns, name: 'typed' };
      await expect(dead.get(ref)).rejects.toMatchObject({ reason: 'Unreachable' });
      await expect(dead.patch(ref, 'json', { not: 'an array' })).rejects.toThrow(/invalid patch/);
      await expect(dead.get({ ...ref, name: '..' })).rejects.toThrow(/invalid name/);
      await expect(dead.scale({ ...ref }, 1)).rejects.toThrow(/invalid kind/);
    } finally {
      dead.close();
    }
  });
});

describe('tools: bad input names the argument, apiserver errors carry status and reason', () => {
  let s: HttpServer;
  let c: Client;
  const call = async (name: string, args: Record<string, unknown>) =>
    (await c.callTool({ name, arguments: args })) as { isError?: boolean; content: Array<{ text: string }> };

  beforeAll(async () => {
    await installCrd(kc);
    s = await startHttpServer();
    c = await s.connect();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('bad input: schema failures (the SDK), then our own checks, each name the argument', async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      // The SDK's zod validation of the input schema: "... at <argument>".
      ['get-resource', { kind: 42 }, /at kind/],
      ['list-resources', { kind: 'pods', limit: -1 }, /at limit/],
      ['scale-workload', { kind: 'deploy', name: 'web', replicas: 'many' }, /at replicas/],
      ['patch-resource', { kind: 'deploy', name: 'web', patch: 5 }, /at patch/],
      // Our checks: "invalid <argument>: ...".
      [
        'get-resource',
        { kind: 'no-such-kind', name: 'x', namespace: ns },
        /invalid kind: the server has no resource type "no-such-kind"/,
      ],
      ['get-resource', { kind: 'configmaps', namespace: ns }, /invalid name: a name is required/],
      ['get-resource', { kind: 'configmaps', name: '..', namespace: ns }, /invalid name/],
      ['get-resource', { kind: 'configmaps', name: 'x', namespace: 'Bad_NS' }, /invalid namespace/],
      ['list-resources', { kind: 'bindings', namespace: ns }, /invalid kind: bindings cannot be listed/],
      [
        'patch-resource',
        { kind: 'configmaps', name: 'typed', namespace: ns, patch: '{oops' },
        /invalid patch: not valid JSON/,
      ],
      [
        'patch-resource',
        { kind: 'configmaps', name: 'typed', namespace: ns, type: 'json', patch: { a: 1 } },
        /invalid patch: a json patch is an array/,
      ],
      ['apply-manifest', { manifest: 'a: [' }, /invalid manifest: not valid YAML/],
      [
        'apply-manifest',
        { manifest: 'apiVersion: v1\nkind: ConfigMap\n' },
        /invalid manifest: document 1 needs apiVersion, kind and metadata.name/,
      ],
      [
        'apply-manifest',
        { manifest: 'apiVersion: v1\nkind: NoSuchKind\nmetadata: {name: x}\n' },
        /invalid manifest: the server has no resource type "NoSuchKind"/,
      ],
      [
        'scale-workload',
        { kind: 'configmaps', name: 'typed', namespace: ns, replicas: 1 },
        /invalid kind: ConfigMap has no scale subresource/,
      ],
      [
        'restart-rollout',
        { kind: 'configmaps', name: 'typed', namespace: ns },
        /invalid kind: ConfigMap is not supported here/,
      ],
      ['get-logs', { namespace: ns }, /invalid pod: give `pod`, or `kind` and `name`/],
      ['get-logs', { kind: 'deploy', namespace: ns }, /invalid name/],
      ['list-events', { name: 'x', namespace: ns }, /invalid kind: give kind with name/],
      ['list-events', { kind: 'configmaps', namespace: ns }, /invalid name: events of an object need its name/],
      ['apply-mcpserver', { name: 'bad', namespace: ns, spec: { transport: 'carrier-pigeon' } }, /invalid spec/],
    ];
    for (const [tool, args, re] of cases) {
      const r = await call(tool, args);
      expect({ tool, args, isError: r.isError }).toEqual({ tool, args, isError: true });
      expect(r.content[0]?.text).toMatch(re);
      // Bad input is never reported as an apiserver status.
      expect(r.content[0]?.text).not.toMatch(/\((400|404|422)\):/);
    }
  });

  it('apiserver errors: the HTTP status and reason, and the server keeps serving', async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      [
        'get-resource',
        { kind: 'configmaps', name: 'absent', namespace: ns },
        /get-resource failed: NotFound \(404\): configmaps "absent" not found/,
      ],
      ['delete-resource', { kind: 'configmaps', name: 'absent', namespace: ns }, /NotFound \(404\)/],
      ['create-pod', { name: 'dup', image: 'nginx:1.27', namespace: ns }, /^(?!.*failed)/],
      ['create-pod', { name: 'dup', image: 'nginx:1.27', namespace: ns }, /AlreadyExists \(409\)/],
      [
        'patch-resource',
        { kind: 'configmaps', name: 'typed', namespace: ns, patch: { data: { 'not a key!': 'x' } } },
        /Invalid \(422\)/,
      ],
    ];
    for (const [tool, args, re] of cases) {
      const r = await call(tool, args);
      expect(text(r)).toMatch(re);
    }
    const ok = await call('list-contexts', {});
    expect(ok.isError).toBeFalsy();
  });
});
