/**
 * Regression tests for the holes of issue 9 ("Security: what broke"), each through the MCP SDK
 * client against the real local control plane (in-process Streamable HTTP server on loopback):
 * Secret values through patch errors and copied fields (1), `.`/`..` names and the final-URL
 * check (2), bounded and shared subscriptions, separate watch pool, timeouts, stateless (3),
 * the log filter's linear regex engine (4), the audit log (5), ownerReferences under
 * --disable-destructive (7), Namespace names under an allow-list (8), --deny-kinds short names
 * (9) and list-events' truncation flag. Item 6 is in test/faults/, item 10 in stdio-limits.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { KubeGateway } from '../../mcp-server/kube.js';
import { Policy } from '../../mcp-server/policy.js';
import { filterLines } from '../../mcp-server/tools/workloads.js';
import { createNamespace, kubeConfig, waitFor } from '../kube.js';
import { raw, startHttpServer, text, type HttpServer, callTool } from './helpers.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const VALUE = 'hunter2-topsecret';
const B64 = Buffer.from(VALUE).toString('base64');
let victim: string;
let other: string;

const callOn = async (c: Client, name: string, args: Record<string, unknown>) => await callTool(c, name, args);
const expectClean = (r: unknown) => {
  const all = JSON.stringify(r);
  expect(all).not.toContain(VALUE);
  expect(all).not.toContain(B64);
};
/** Starts a server, runs `f` with a connected client, stops the server. */
async function withServer<T>(
  policy: Parameters<typeof startHttpServer>[0],
  f: (c: Client, s: HttpServer) => Promise<T>,
  extra: Parameters<typeof startHttpServer>[2] = {},
  http: Parameters<typeof startHttpServer>[1] = {},
): Promise<T> {
  const s = await startHttpServer(policy, http, extra);
  try {
    return await f(await s.connect(), s);
  } finally {
    await s.close();
  }
}

beforeAll(async () => {
  victim = await createNamespace(kc, 'mcp-victim');
  other = await createNamespace(kc, 'mcp-other');
  await core.createNamespacedConfigMap({ namespace: victim, body: { metadata: { name: 'keep-a' }, data: { a: '1' } } });
  await core.createNamespacedConfigMap({ namespace: victim, body: { metadata: { name: 'keep-b' }, data: { b: '2' } } });
  await core.createNamespacedSecret({
    namespace: victim,
    body: { metadata: { name: 'creds' }, data: { password: B64 } },
  });
});
afterAll(async () => {
  for (const ns of [victim, other]) await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('item 2: names "." and ".." never reach another object', () => {
  it('get/patch/delete with "." or ".." are refused by name, and the namespace and its ConfigMaps are untouched', async () => {
    await withServer({ namespaces: [victim], denyKinds: ['namespaces'] }, async (c) => {
      const get = await callOn(c, 'get-resource', { kind: 'configmaps', name: '..', namespace: victim });
      expect(get.isError).toBe(true);
      expect(text(get)).toMatch(/invalid name: "\.\." is not a valid object name/);
      expect(text(get)).not.toMatch(/kind: Namespace/);
      const patch = await callOn(c, 'patch-resource', {
        kind: 'configmaps',
        name: '..',
        namespace: victim,
        patch: { metadata: { labels: { pwned: 'yes' } } },
      });
      expect(patch.isError).toBe(true);
      const delPod = await callOn(c, 'delete-pod', { name: '..', namespace: victim });
      expect(delPod.isError).toBe(true);
      expect(text(delPod)).toMatch(/invalid name/);
      const delDot = await callOn(c, 'delete-resource', { kind: 'configmaps', name: '.', namespace: victim });
      expect(delDot.isError).toBe(true);
      const slash = await callOn(c, 'get-resource', { kind: 'configmaps', name: 'keep-a/../..', namespace: victim });
      expect(text(slash)).toMatch(/may not contain "\/" or "%"/);
      const pct = await callOn(c, 'get-resource', { kind: 'configmaps', name: '%2e%2e', namespace: victim });
      expect(text(pct)).toMatch(/may not contain "\/" or "%"/);
      const badNs = await callOn(c, 'list-resources', { kind: 'configmaps', namespace: '..' });
      expect(text(badNs)).toMatch(/invalid namespace/);
      // The prompt path goes through the same gateway check.
      const prompt = await c.getPrompt({ name: 'troubleshoot-pod', arguments: { podName: '..', namespace: victim } });
      const ptext = JSON.stringify(prompt);
      expect(ptext).toMatch(/invalid name/);
      expect(ptext).not.toMatch(/kind: Namespace|phase: Active/);
    });
    const ns = await core.readNamespace({ name: victim });
    expect(ns.metadata?.labels?.pwned).toBeUndefined();
    expect(ns.metadata?.deletionTimestamp).toBeUndefined();
    const cms = await core.listNamespacedConfigMap({ namespace: victim });
    expect(cms.items.map((i) => i.metadata?.name)).toEqual(expect.arrayContaining(['keep-a', 'keep-b']));
  });

  it('the gateway sends only URLs that designate what the policy checked', async () => {
    const kube = new KubeGateway({ policy: new Policy({ namespaces: [victim] }), kubeconfig: process.env.KUBECONFIG });
    try {
      // Raw paths may only be non-resource paths: a resource behind a raw path skips the policy.
      await expect(kube.request({ path: `/api/v1/namespaces/${other}/configmaps` })).rejects.toThrow(/resource path/);
      await expect(
        kube.request({ path: `/api/v1/namespaces/${victim}/configmaps/../../../namespaces/${other}` }),
      ).rejects.toThrow(/refused/);
      await expect(kube.request({ path: '//example.invalid/version' })).rejects.toThrow(/not on the apiserver/);
      const cm = await kube.resolve('configmaps');
      // A hand-built request with a name the URL parser would collapse is refused before sending.
      await expect(kube.request({ api: cm, namespace: victim, name: '..' })).rejects.toThrow(/invalid name/);
      await expect(kube.request({ api: cm, namespace: victim, name: 'keep-a', subresource: '../x' })).rejects.toThrow(
        /invalid subresource/,
      );
      expect((await kube.request<{ gitVersion: string }>({ path: '/version' })).gitVersion).toMatch(/^v1\./);
      expect((await kube.get({ api: cm, namespace: victim, name: 'keep-a' })).data).toEqual({ a: '1' });
    } finally {
      kube.close();
    }
  });
});

describe('item 1: Secret values never come back through patch-resource', () => {
  it('a rejected dry-run patch returns a masked error', async () => {
    await withServer({}, async (c) => {
      const r = await callOn(c, 'patch-resource', {
        kind: 'secret',
        name: 'creds',
        namespace: victim,
        patch: { data: { zz: '!' } },
        dryRun: true,
      });
      expect(r.isError).toBe(true);
      expectClean(r);
      const strat = await callOn(c, 'patch-resource', {
        kind: 'secrets',
        name: 'creds',
        namespace: victim,
        type: 'strategic',
        patch: { data: { zz: '!' } },
        dryRun: true,
      });
      expect(strat.isError).toBe(true);
      expectClean(strat);
    });
  });

  it('a JSON patch may not copy, move or test stored values; values copied elsewhere are masked', async () => {
    await withServer({}, async (c) => {
      for (const op of [
        { op: 'copy', from: '/data/password', path: '/metadata/annotations/leak' },
        { op: 'move', from: '/data/password', path: '/metadata/labels/leak' },
        { op: 'test', path: '/data/password', value: B64 },
      ]) {
        const r = await callOn(c, 'patch-resource', {
          kind: 'secret',
          name: 'creds',
          namespace: victim,
          type: 'json',
          patch: [op],
          dryRun: true,
        });
        expect(r.isError).toBe(true);
        expect(text(r)).toMatch(/may not copy, move or test/);
        expectClean(r);
      }
      // A value copied out of band (kubectl, another client) is masked where it stands.
      await core.patchNamespacedSecret(
        {
          name: 'creds',
          namespace: victim,
          body: [
            {
              op: 'add',
              path: '/metadata/annotations',
              value: { copied: B64, decoded: `x ${VALUE} y`, fine: 'visible' },
            },
          ],
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
      const g = await callOn(c, 'get-resource', { kind: 'secret', name: 'creds', namespace: victim });
      expect(g.isError).toBeFalsy();
      expectClean(g);
      expect(g.structuredContent.object.metadata.annotations).toEqual({
        copied: '***',
        decoded: '***',
        fine: 'visible',
      });
      const l = await callOn(c, 'list-resources', { kind: 'secrets', namespace: victim });
      expectClean(l);
    });
  });

  it('a service-account token Secret is masked the same way', async () => {
    await core.createNamespacedSecret({
      namespace: victim,
      body: {
        metadata: { name: 'sa-token', annotations: { 'kubernetes.io/service-account.name': 'default' } },
        type: 'kubernetes.io/service-account-token',
      },
    });
    const token = await waitFor(
      'token populated',
      async () => (await core.readNamespacedSecret({ name: 'sa-token', namespace: victim })).data?.token,
      60_000,
    );
    const decoded = Buffer.from(token, 'base64').toString('utf8');
    await withServer({}, async (c) => {
      const rs = [
        await callOn(c, 'patch-resource', {
          kind: 'secret',
          name: 'sa-token',
          namespace: victim,
          patch: { data: { token: '!' } },
          dryRun: true,
        }),
        await callOn(c, 'patch-resource', {
          kind: 'secret',
          name: 'sa-token',
          namespace: victim,
          type: 'json',
          patch: [{ op: 'copy', from: '/data/token', path: '/metadata/annotations/t' }],
          dryRun: true,
        }),
        await callOn(c, 'get-resource', { kind: 'secret', name: 'sa-token', namespace: victim }),
        await callOn(c, 'patch-resource', {
          kind: 'secret',
          name: 'sa-token',
          namespace: victim,
          patch: { metadata: { labels: { x: 'y' } } },
          dryRun: true,
        }),
      ];
      for (const r of rs) {
        const all = JSON.stringify(r);
        expect(all).not.toContain(token);
        expect(all).not.toContain(decoded);
      }
      expect(rs[3]?.isError).toBeFalsy();
    });
  });
});

describe('item 5: the audit log never writes Secret values', () => {
  it('whatever the spelling of kind, and in its error field', async () => {
    const auditFile = path.join(mkdtempSync(path.join(tmpdir(), 'kubemcp-audit-')), 'audit.jsonl');
    const spellings = [
      `kind: 'Secret'`,
      'kind : Secret',
      '"kind": "Secr\\u0065t"',
      'kind: !!str Secret',
      'kind: " Secret"',
      'kind: secrets',
      'kind: SECRET',
    ];
    await withServer(
      {},
      async (c) => {
        for (const [i, k] of spellings.entries()) {
          const manifest = `apiVersion: v1\n${k}\nmetadata:\n  name: audit-${i}\nstringData:\n  token: ${VALUE}\ndata:\n  other: ${B64}\n`;
          expectClean(await callOn(c, 'apply-manifest', { manifest, namespace: victim, dryRun: true }));
        }
        // A YAML error quotes the offending line; an apiserver error embeds the object.
        const broken = await callOn(c, 'apply-manifest', {
          manifest: `apiVersion: v1\nkind: Secret\nmetadata: {name: broken}\nstringData: {token: ${VALUE}\n  x: [\n`,
          namespace: victim,
        });
        expect(broken.isError).toBe(true);
        await callOn(c, 'patch-resource', {
          kind: 'Secret',
          name: 'creds',
          namespace: victim,
          patch: { data: { zz: '!' } },
          dryRun: true,
        });
        await callOn(c, 'patch-resource', {
          kind: ' secrets ',
          name: 'creds',
          namespace: victim,
          patch: JSON.stringify({ stringData: { k: VALUE } }),
          dryRun: true,
        });
      },
      { auditLog: auditFile },
    );
    const log = readFileSync(auditFile, 'utf8');
    const lines = log
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(spellings.length + 3);
    expect(lines.filter((l) => l.result === 'error').length).toBeGreaterThanOrEqual(2);
    expect(log).not.toContain(VALUE);
    expect(log).not.toContain(B64);
  });
});

describe('item 4: the log filter runs in linear time', () => {
  it('catastrophic patterns return at once; unsupported syntax is a clear error naming filter', async () => {
    const line = 'a'.repeat(5000) + ' ' + 'b '.repeat(5000);
    expect(filterLines(line, '(\\w*\\s*)*X', 0)).toEqual({ text: '', matches: 0 });
    expect(filterLines(line + '\n' + line, '(.*.*)*X', 0).matches).toBe(0);
    expect(filterLines('ok\nERROR x\nok', 'ERR(OR)?', 0)).toEqual({ text: 'ERROR x', matches: 1 });
    expect(() => filterLines('x', '(?=a)b', 0)).toThrow(/invalid filter: not a valid RE2 regular expression/);
    expect(() => filterLines('x', '(a)\\1', 0)).toThrow(/invalid filter/);
    expect(() => filterLines('x', 'a'.repeat(1001), 0)).toThrow(/at most 1000/);
  });

  it('through get-logs on a real pod, while /health keeps answering', async () => {
    await core.createNamespacedPod({
      namespace: victim,
      body: { metadata: { name: 'logger' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    });
    await waitFor(
      'logger Running',
      async () => (await core.readNamespacedPod({ name: 'logger', namespace: victim })).status?.phase === 'Running',
      60_000,
    );
    await withServer({}, async (c, s) => {
      const calls = ['(\\w*\\s*)*X', '(.*.*)*X', '(a|aa)*$X'].map((filter) =>
        callOn(c, 'get-logs', { pod: 'logger', namespace: victim, filter }),
      );
      const health = await raw(s.url.replace('/mcp', '/health'));
      expect(health.status).toBe(200);
      for (const r of await Promise.all(calls)) {
        expect(r.isError).toBeFalsy();
        expect(r.structuredContent.matches).toBe(0);
      }
      const bad = await callOn(c, 'get-logs', { pod: 'logger', namespace: victim, filter: '(?<=x)y' });
      expect(bad.isError).toBe(true);
      expect(text(bad)).toMatch(/invalid filter/);
    });
  });
});

describe('item 7: --disable-destructive refuses ownerReferences writes', () => {
  it('merge, strategic, JSON patch and apply that add or change ownerReferences are refused', async () => {
    await core.createNamespacedConfigMap({ namespace: victim, body: { metadata: { name: 'orphan' } } });
    const ghost = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'ghost', uid: '00000000-0000-0000-0000-000000000001' }];
    await withServer({ disableDestructive: true }, async (c) => {
      const rs = [
        await callOn(c, 'patch-resource', {
          kind: 'configmaps',
          name: 'orphan',
          namespace: victim,
          patch: { metadata: { ownerReferences: ghost } },
        }),
        await callOn(c, 'patch-resource', {
          kind: 'configmaps',
          name: 'orphan',
          namespace: victim,
          type: 'strategic',
          patch: { metadata: { ownerReferences: ghost } },
        }),
        await callOn(c, 'patch-resource', {
          kind: 'configmaps',
          name: 'orphan',
          namespace: victim,
          type: 'json',
          patch: [{ op: 'add', path: '/metadata/ownerReferences', value: ghost }],
        }),
        await callOn(c, 'patch-resource', {
          kind: 'configmaps',
          name: 'orphan',
          namespace: victim,
          type: 'json',
          patch: [{ op: 'replace', path: '/metadata', value: { name: 'orphan', ownerReferences: ghost } }],
        }),
        await callOn(c, 'apply-manifest', {
          manifest: JSON.stringify({
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: 'orphan', ownerReferences: ghost },
          }),
          namespace: victim,
        }),
      ];
      for (const r of rs) {
        expect(r.isError).toBe(true);
        expect(text(r)).toMatch(/ownerReferences/);
      }
      // Other writes still work.
      const ok = await callOn(c, 'patch-resource', {
        kind: 'configmaps',
        name: 'orphan',
        namespace: victim,
        patch: { metadata: { labels: { fine: 'yes' } } },
      });
      expect(ok.isError).toBeFalsy();
    });
    const cm = await core.readNamespacedConfigMap({ name: 'orphan', namespace: victim });
    expect(cm.metadata?.ownerReferences).toBeUndefined();
    expect(cm.metadata?.labels).toEqual({ fine: 'yes' });
  });
});

describe('item 8: the namespace allow-list hides other namespaces in every path', () => {
  it('list-resources {kind: namespaces}, the raw list and the Table show only allowed ones', async () => {
    await withServer({ namespaces: [victim] }, async (c, s) => {
      const r = await callOn(c, 'list-resources', { kind: 'namespaces' });
      expect(r.isError).toBeFalsy();
      expect(r.structuredContent.rows.map((row: string[]) => row[0])).toEqual([victim]);
      expect(JSON.stringify(r)).not.toContain(other);
      const ns = await callOn(c, 'list-resources', { kind: 'ns', labelSelector: 'kubernetes.io/metadata.name' });
      expect(ns.structuredContent.rows.map((row: string[]) => row[0])).toEqual([victim]);
      const api = await s.kube.resolve('namespaces');
      const list = await s.kube.list({ api });
      expect(list.items.map((i) => i.metadata?.name)).toEqual([victim]);
    });
  });
});

describe('item 9: --deny-kinds resolves entries through discovery', () => {
  it('short names deny the kind under every spelling; unknown entries stop the start', async () => {
    await withServer({ denyKinds: ['cm', 'deploy'] }, async (c) => {
      for (const kind of ['configmaps', 'ConfigMap', 'cm', 'configmap']) {
        const r = await callOn(c, 'get-resource', { kind, name: 'keep-a', namespace: victim });
        expect(text(r)).toMatch(/refused by policy: kind ConfigMap is denied/);
      }
      const d = await callOn(c, 'list-resources', { kind: 'deployments.apps', namespace: victim });
      expect(text(d)).toMatch(/kind Deployment is denied/);
      const pods = await callOn(c, 'list-resources', { kind: 'pods', namespace: victim });
      expect(pods.isError).toBeFalsy();
    });
    await expect(startHttpServer({ denyKinds: ['configmaps', 'nosuchkind'] })).rejects.toThrow(
      /--deny-kinds: unknown kind "nosuchkind"/,
    );
  });
});

describe('list-events flags its cut', () => {
  it('more events than limit: truncated in structuredContent and a note in the text', async () => {
    for (let i = 0; i < 5; i++) {
      await core.createNamespacedEvent({
        namespace: other,
        body: {
          metadata: { name: `ev-${i}` },
          involvedObject: { kind: 'ConfigMap', name: 'x', namespace: other },
          reason: 'Test',
          message: `event ${i}`,
          type: 'Normal',
          firstTimestamp: new Date(Date.now() - (10 - i) * 1000),
          lastTimestamp: new Date(Date.now() - (10 - i) * 1000),
        },
      });
    }
    await withServer({}, async (c) => {
      const cut = await callOn(c, 'list-events', { namespace: other, limit: 2 });
      expect(cut.structuredContent).toMatchObject({ truncated: true, shown: 2, total: 5 });
      expect(text(cut)).toMatch(/\[truncated: showing 2 of 5 events \(the 2 most recent\)/);
      expect(text(cut)).toMatch(/event 4/);
      const whole = await callOn(c, 'list-events', { namespace: other });
      expect(whole.structuredContent).toMatchObject({ truncated: false, shown: 5, total: 5 });
      expect(text(whole)).not.toMatch(/truncated/);
    });
  });
});

describe('item 3: subscriptions are bounded, shared and released', () => {
  it('per-session limit, one watch per target across sessions, nonexistent namespaces refused, release on close', async () => {
    await withServer(
      {},
      async (c1, s) => {
        const uris = [victim, other, 'default'].map((n) => `k8s://namespace/${n}/pods`);
        await expect(c1.subscribeResource({ uri: 'k8s://namespace/does-not-exist-1/pods' })).rejects.toThrow(
          /namespace does-not-exist-1.*NotFound/,
        );
        expect(s.running.watches()).toBe(0);
        for (const uri of uris) await c1.subscribeResource({ uri });
        await expect(c1.subscribeResource({ uri: 'k8s://cluster/nodes' })).rejects.toThrow(
          /already holds 3 subscriptions/,
        );
        expect(s.running.watches()).toBe(3);
        const c2 = await s.connect();
        await c2.subscribeResource({ uri: uris[0]! });
        await c2.subscribeResource({ uri: 'k8s://cluster/nodes' });
        expect(s.running.watches()).toBe(4);
        const c3 = await s.connect();
        await expect(c3.subscribeResource({ uri: 'k8s://namespace/kube-system/pods' })).rejects.toThrow(
          /already holds 4 watches/,
        );
        // Tools and /ready still answer with the server at its watch limit.
        expect((await callOn(c3, 'list-namespaces', {})).isError).toBeFalsy();
        expect((await raw(s.url.replace('/mcp', '/ready'))).status).toBe(200);
        // Ending the session (DELETE /mcp) releases its subscriptions.
        await (c1.transport as StreamableHTTPClientTransport).terminateSession();
        await c1.close();
        await waitFor('c1 watches released', async () => s.running.watches() === 2, 10_000, 50);
        await c2.unsubscribeResource({ uri: uris[0]! });
        expect(s.running.watches()).toBe(1);
      },
      { hubOptions: { maxPerSession: 3, maxWatches: 4 } },
    );
  });

  it('watches use their own connection pool: 70 open watches do not starve a request', async () => {
    const kube = new KubeGateway({ policy: new Policy(), kubeconfig: process.env.KUBECONFIG, timeoutMs: 10_000 });
    const stops: Array<() => void> = [];
    try {
      const pods = await kube.resolve('pods');
      for (let i = 0; i < 70; i++)
        stops.push(
          await kube.watch(
            { api: pods, namespace: victim },
            () => undefined,
            () => undefined,
          ),
        );
      const list = await kube.request<{ items?: unknown }>({ api: pods, namespace: victim });
      expect(Array.isArray(list.items)).toBe(true);
    } finally {
      for (const stop of stops) stop();
      kube.close();
    }
  });

  it('every request has a deadline, queued or not, watches included', async () => {
    // An apiserver that accepts connections and never answers.
    const sockets: Socket[] = [];
    const hole: Server = createServer((sock) => void sockets.push(sock));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const port = (hole.address() as { port: number }).port;
    const kcfg = path.join(mkdtempSync(path.join(tmpdir(), 'kubemcp-hole-')), 'kubeconfig');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      kcfg,
      `apiVersion: v1\nkind: Config\nclusters: [{name: hole, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: hole, context: {cluster: hole, user: u}}]\ncurrent-context: hole\n`,
    );
    const kube = new KubeGateway({ policy: new Policy(), kubeconfig: kcfg, timeoutMs: 1000 });
    try {
      const api = {
        group: '',
        version: 'v1',
        resource: 'pods',
        kind: 'Pod',
        singular: 'pod',
        shortNames: [],
        categories: [],
        namespaced: true,
        verbs: ['list', 'watch'],
        subresources: [],
      };
      // 70 watches and 70 requests: more than the request pool's 64 sockets, so some queue.
      const all = [
        ...Array.from({ length: 70 }, () =>
          kube
            .watch(
              { api, namespace: 'default' },
              () => undefined,
              () => undefined,
            )
            .then(
              () => 'open',
              (e: Error) => e.message,
            ),
        ),
        ...Array.from({ length: 70 }, () =>
          kube.request({ api, namespace: 'default' }).then(
            () => 'answered',
            (e: Error) => e.message,
          ),
        ),
      ];
      const results = await Promise.all(all);
      expect(results.every((m) => /did not answer .* within 1000 ms/.test(m))).toBe(true);
    } finally {
      kube.close();
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((r) => hole.close(() => r()));
    }
  });

  it('--stateless offers no subscriptions (nothing to notify, nothing to leak)', async () => {
    await withServer(
      {},
      async (c, s) => {
        expect(c.getServerCapabilities()?.resources?.subscribe).toBeFalsy();
        await expect(c.subscribeResource({ uri: `k8s://namespace/${victim}/pods` })).rejects.toThrow();
        expect(s.running.watches()).toBe(0);
      },
      {},
      { stateless: true },
    );
  });
});
