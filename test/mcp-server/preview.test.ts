/**
 * Previews of writes and confirmations of deletes (issue 19, "Previews of writes"), through the
 * SDK client over Streamable HTTP (and one stdio process) against the local control plane:
 * `preview: true` on patch-resource, apply-manifest (a new object, a changed one), scale-workload
 * and the delete tools returns a unified diff (or what a delete removes) and changes nothing
 * (the object is read back with the same resourceVersion); a Secret's preview shows no value;
 * a client that declares form elicitation is asked before a delete (decline and cancel keep the
 * object, accept deletes it), a client without it is not asked.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { createNamespace, deleteTestNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';
import { callTool, ROOT, startHttpServer, text, type HttpServer } from './helpers.js';
import path from 'node:path';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
let ns: string;
let s: HttpServer;
let plain: Client;

/** What the preview tools put in structuredContent (their output schemas in mcp-server/tools/). */
interface PreviewOut {
  diff?: string;
  status?: string;
  items?: string[];
  replicas?: number;
  previous?: number;
  dryRun?: boolean;
  truncated?: boolean;
}
const out = (r: unknown) => (r as { structuredContent: PreviewOut }).structuredContent;

const deployment = (name: string, replicas = 2) => `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels: { app: ${name}, tier: a }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers:
        - name: main
          image: nginx:1.27
`;

/** The changed lines of a unified diff (`+`/`-` lines without the `+++`/`---` file headers). */
const changed = (diff: string) =>
  diff.split('\n').filter((l) => /^[-+]/.test(l) && !l.startsWith('+++') && !l.startsWith('---'));

/** A client over Streamable HTTP that declares form elicitation and answers every confirmation with `answer`. */
async function eliciting(answer: () => ElicitResult): Promise<{ client: Client; asked: string[] }> {
  const asked: string[] = [];
  const client = new Client({ name: 'kubemcp-test-elicit', version: '1.0.0' }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, (req) => {
    asked.push(String(req.params.message));
    return answer();
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(s.url)));
  return { client, asked };
}

const configMap = async (name: string) => core.readNamespacedConfigMap({ name, namespace: ns });

beforeAll(async () => {
  ns = await createNamespace(kc, 'mcp-preview');
  s = await startHttpServer({}, {}, { budget: 24_000 });
  plain = await s.connect();
  const r = await callTool(plain, 'apply-manifest', { manifest: deployment('web'), namespace: ns });
  expect(r.isError).toBeFalsy();
  // Settled (its controllers done writing its status), so its resourceVersion moves only if a test changes it.
  await waitFor('deployment web available', async () => {
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    const st = d.status ?? {};
    return st.observedGeneration === d.metadata?.generation && st.availableReplicas === 2 && st.replicas === 2;
  });
});
afterAll(async () => {
  await s?.close();
  if (ns) await deleteTestNamespace(kc, ns);
});

describe('previews change nothing and show the diff', () => {
  it('patch-resource preview shows the changed line; the object keeps its resourceVersion', async () => {
    const before = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    const r = await callTool(plain, 'patch-resource', {
      kind: 'deployment',
      name: 'web',
      namespace: ns,
      patch: { metadata: { labels: { tier: 'b' } } },
      preview: true,
    });
    expect(r.isError).toBeFalsy();
    const diff = out(r).diff!;
    expect(diff).toContain(`--- live/deployment/${ns}/web`);
    expect(diff).toContain(`+++ dry-run/deployment/${ns}/web`);
    expect(changed(diff)).toEqual(['-    tier: a', '+    tier: b']);
    expect(diff).not.toMatch(/managedFields|resourceVersion|generation:|last-applied/);
    // The text fences the diff (it holds cluster text) and says nothing changed.
    expect(text(r)).toMatch(/nothing was changed/);
    expect(text(r)).toMatch(/<untrusted-data id="[0-9a-f]+" source="preview diff">/);
    expect(text(r)).toContain('+    tier: b');
    const after = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.metadata?.labels?.tier).toBe('a');
  });

  it('apply-manifest preview of a new object is all + lines against nothing, and creates nothing', async () => {
    const manifest = `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: fresh }\ndata: { k: v1 }\n`;
    const r = await callTool(plain, 'apply-manifest', { manifest, namespace: ns, preview: true });
    expect(r.isError).toBeFalsy();
    const diff = out(r).diff!;
    expect(diff).toMatch(/^--- \/dev\/null\n\+\+\+ dry-run\/configmap\/[^/]+\/fresh\n@@ -0,0 \+1,\d+ @@\n/);
    const lines = changed(diff);
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.every((l) => l.startsWith('+'))).toBe(true);
    expect(lines).toEqual(expect.arrayContaining(['+  k: v1', '+  name: fresh']));
    expect(out(r).dryRun).toBe(true);
    expect(text(r)).toMatch(/configmap\/.+\/fresh: would be created/);
    await expect(configMap('fresh')).rejects.toMatchObject({ code: 404 });
  });

  it('apply-manifest preview of a changed object shows the changed value; the object is unchanged', async () => {
    await callTool(plain, 'apply-manifest', {
      manifest: `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: held }\ndata: { k: v1, same: x }\n`,
      namespace: ns,
    });
    const before = await configMap('held');
    const r = await callTool(plain, 'apply-manifest', {
      manifest: `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: held }\ndata: { k: v2, same: x }\n`,
      namespace: ns,
      preview: true,
    });
    expect(r.isError).toBeFalsy();
    expect(changed(out(r).diff!)).toEqual(['-  k: v1', '+  k: v2']);
    const after = await configMap('held');
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.data).toEqual({ k: 'v1', same: 'x' });

    // The same manifest again: no change, no diff.
    const same = await callTool(plain, 'apply-manifest', {
      manifest: `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: held }\ndata: { k: v1, same: x }\n`,
      namespace: ns,
      preview: true,
    });
    expect(out(same).diff).toBe('');
    expect(text(same)).toMatch(/held: no change/);
  });

  it('scale-workload preview shows the replicas line and scales nothing', async () => {
    const before = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    const r = await callTool(plain, 'scale-workload', {
      kind: 'deployment',
      name: 'web',
      namespace: ns,
      replicas: 5,
      preview: true,
    });
    expect(r.isError).toBeFalsy();
    expect(changed(out(r).diff!)).toEqual(['-  replicas: 2', '+  replicas: 5']);
    expect(out(r)).toMatchObject({ replicas: 5, previous: 2 });
    const after = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.spec?.replicas).toBe(2);
  });

  it('delete-resource preview lists the object and its dependents (ReplicaSet, pods by owner); nothing goes', async () => {
    const pods = await waitFor('the pods of deployment web', async () => {
      const l = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' });
      return l.items.length === 2 ? l.items : undefined;
    });
    const rs = (await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=web' })).items;
    const before = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    const r = await callTool(plain, 'delete-resource', {
      kind: 'deployment',
      name: 'web',
      namespace: ns,
      preview: true,
    });
    expect(r.isError).toBeFalsy();
    const items = out(r).items!;
    expect(out(r).status).toBe('preview');
    expect(items[0]).toBe('deployment/web');
    expect(items).toEqual(
      expect.arrayContaining([
        ...rs.map((x) => `replicaset/${x.metadata!.name}`),
        ...pods.map((p) => `pod/${p.metadata!.name}`),
      ]),
    );
    // Owners before what they own: the ReplicaSet, then its pods, indented under it.
    const t = text(r);
    expect(t).toMatch(/nothing was deleted/);
    expect(t).toMatch(new RegExp(`\\n  replicaset/${rs[0]!.metadata!.name}\\n    pod/`));
    const after = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.metadata?.deletionTimestamp).toBeUndefined();
    expect((await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' })).items).toHaveLength(2);

    // With propagationPolicy Orphan the dependents stay: only the object is listed.
    const orphan = await callTool(plain, 'delete-resource', {
      kind: 'deployment',
      name: 'web',
      namespace: ns,
      propagationPolicy: 'Orphan',
      preview: true,
    });
    expect(out(orphan).items).toEqual(['deployment/web']);
  });

  it('delete-pod and delete-mcpserver previews list the object and delete nothing', async () => {
    await installCrd(kc);
    const pod = await callTool(plain, 'create-pod', { name: 'lone', image: 'nginx:1.27', namespace: ns });
    expect(pod.isError).toBeFalsy();
    const p = await callTool(plain, 'delete-pod', { name: 'lone', namespace: ns, preview: true });
    expect(p.isError).toBeFalsy();
    expect(out(p)).toMatchObject({ status: 'preview', items: ['pod/lone'] });
    expect((await core.readNamespacedPod({ name: 'lone', namespace: ns })).metadata?.deletionTimestamp).toBeUndefined();

    const m = await callTool(plain, 'apply-mcpserver', { name: 'srv', namespace: ns, spec: { image: 'x' } });
    expect(m.isError).toBeFalsy();
    const d = await callTool(plain, 'delete-mcpserver', { name: 'srv', namespace: ns, preview: true });
    expect(d.isError).toBeFalsy();
    expect(out(d).status).toBe('preview');
    expect(out(d).items?.[0]).toBe('mcpserver/srv');
    const still = await callTool(plain, 'get-mcpserver', { name: 'srv', namespace: ns });
    expect(still.isError).toBeFalsy();
  });

  it('a Secret patch preview shows no value, old or new, but a key it adds', async () => {
    const secret = 'old-s3cr3t-value';
    const next = 'new-s3cr3t-value';
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'creds' }, stringData: { password: secret } },
    });
    const before = await core.readNamespacedSecret({ name: 'creds', namespace: ns });
    const r = await callTool(plain, 'patch-resource', {
      kind: 'secret',
      name: 'creds',
      namespace: ns,
      patch: { stringData: { password: next, extra: next } },
      preview: true,
    });
    expect(r.isError).toBeFalsy();
    const all = JSON.stringify(r);
    for (const v of [secret, next, Buffer.from(secret).toString('base64'), Buffer.from(next).toString('base64')])
      expect(all).not.toContain(v);
    // Both sides masked: the changed password shows no line; the key the patch adds does, masked.
    expect(changed(out(r).diff!)).toEqual(['+  extra: "***"']);
    expect(text(r)).toMatch(
      /Secret values are masked \(\*\*\*\) on both sides.*stringData\.password, stringData\.extra/,
    );
    const after = await core.readNamespacedSecret({ name: 'creds', namespace: ns });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(Buffer.from(after.data!.password!, 'base64').toString()).toBe(secret);
    expect(after.data?.extra).toBeUndefined();
  });

  it('previews obey the policy: a denied namespace or kind is refused, a denied kind is not searched for dependents', async () => {
    const limited = await startHttpServer({ namespaces: [ns], denyKinds: ['secrets'] }, {}, { budget: 24_000 });
    try {
      const c = await limited.connect();
      const other = await callTool(c, 'patch-resource', {
        kind: 'configmap',
        name: 'kube-root-ca.crt',
        namespace: 'default',
        patch: { metadata: { labels: { x: 'y' } } },
        preview: true,
      });
      expect(other.isError).toBe(true);
      expect(text(other)).toMatch(/refused/);
      const secret = await callTool(c, 'delete-resource', {
        kind: 'secret',
        name: 'creds',
        namespace: ns,
        preview: true,
      });
      expect(secret.isError).toBe(true);
      expect(text(secret)).toMatch(/refused/);
      const d = await callTool(c, 'delete-resource', { kind: 'deployment', name: 'web', namespace: ns, preview: true });
      expect(d.isError).toBeFalsy();
      expect(out(d).items?.length).toBeGreaterThanOrEqual(4);
      expect(text(d)).toMatch(/Not searched: .*secrets \(refused by policy\)/);
    } finally {
      await limited.close();
    }
    await expect(core.readNamespacedSecret({ name: 'creds', namespace: ns })).resolves.toBeDefined();
  });

  it('bad arguments are MCP errors naming the argument', async () => {
    const bad = await callTool(plain, 'delete-resource', { kind: 'cm', name: 'held', namespace: ns, preview: 'yes' });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/preview/);
    const badPatch = await callTool(plain, 'patch-resource', {
      kind: 'cm',
      name: 'held',
      namespace: ns,
      patch: '{oops',
      preview: true,
    });
    expect(badPatch.isError).toBe(true);
    expect(text(badPatch)).toMatch(/patch/);
    const missing = await callTool(plain, 'delete-resource', {
      kind: 'cm',
      name: 'nope',
      namespace: ns,
      preview: true,
    });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toMatch(/NotFound \(404\)/);
    await expect(configMap('held')).resolves.toBeDefined();
  });
});

describe('confirmation of deletes by elicitation', () => {
  const doomed = async (name: string) => {
    const r = await callTool(plain, 'apply-manifest', {
      manifest: `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name} }\ndata: { a: b }\n`,
      namespace: ns,
    });
    expect(r.isError).toBeFalsy();
  };

  it('a declined or cancelled confirmation deletes nothing and says so; an accepted one deletes', async () => {
    await doomed('asked');
    const decline = await eliciting(() => ({ action: 'decline' }));
    const d = await callTool(decline.client, 'delete-resource', { kind: 'configmap', name: 'asked', namespace: ns });
    expect(d.isError).toBeFalsy();
    expect(text(d)).toMatch(/^not deleted: the user declined the confirmation; nothing was changed/);
    expect(out(d)).toMatchObject({ status: 'declined', items: ['configmap/asked'] });
    expect(decline.asked).toHaveLength(1);
    expect(decline.asked[0]).toMatch(/^Delete configmap\/asked from namespace .+\? Would delete 1 object/);
    await expect(configMap('asked')).resolves.toBeDefined();

    const cancel = await eliciting(() => ({ action: 'cancel' }));
    const c = await callTool(cancel.client, 'delete-resource', { kind: 'configmap', name: 'asked', namespace: ns });
    expect(out(c).status).toBe('cancelled');
    // An accept whose confirm is false is a decline.
    const no = await eliciting(() => ({ action: 'accept', content: { confirm: false } }));
    const n = await callTool(no.client, 'delete-resource', { kind: 'configmap', name: 'asked', namespace: ns });
    expect(out(n).status).toBe('declined');
    await expect(configMap('asked')).resolves.toBeDefined();

    // A dry run changes nothing, so it asks nothing.
    const dry = await callTool(decline.client, 'delete-resource', {
      kind: 'configmap',
      name: 'asked',
      namespace: ns,
      dryRun: true,
    });
    expect(out(dry).status).toBe('dry-run');
    expect(decline.asked).toHaveLength(1);

    const accept = await eliciting(() => ({ action: 'accept', content: { confirm: true } }));
    const a = await callTool(accept.client, 'delete-resource', { kind: 'configmap', name: 'asked', namespace: ns });
    expect(a.isError).toBeFalsy();
    expect(out(a).status).toBe('deleted');
    expect(accept.asked).toHaveLength(1);
    await expect(configMap('asked')).rejects.toMatchObject({ code: 404 });
    for (const x of [decline, cancel, no, accept]) await x.client.close();
  });

  it('the confirmation of a workload delete lists its pods; a client without elicitation is not asked', async () => {
    const decline = await eliciting(() => ({ action: 'decline' }));
    const d = await callTool(decline.client, 'delete-resource', { kind: 'deployment', name: 'web', namespace: ns });
    expect(out(d).status).toBe('declined');
    expect(decline.asked[0]).toMatch(/\n {2}replicaset\/web-[a-z0-9]+\n {4}pod\/web-/);
    await expect(apps.readNamespacedDeployment({ name: 'web', namespace: ns })).resolves.toBeDefined();
    await decline.client.close();

    await doomed('unasked');
    const r = await callTool(plain, 'delete-resource', { kind: 'configmap', name: 'unasked', namespace: ns });
    expect(r.isError).toBeFalsy();
    expect(out(r).status).toBe('deleted');
    await expect(configMap('unasked')).rejects.toMatchObject({ code: 404 });
  });

  it('stateless HTTP cannot carry a confirmation: the delete goes ahead unasked, as for clients without elicitation', async () => {
    await doomed('stateless');
    const stateless = await startHttpServer({}, { stateless: true });
    try {
      const asked: string[] = [];
      const client = new Client(
        { name: 'kubemcp-test-elicit', version: '1.0.0' },
        { capabilities: { elicitation: {} } },
      );
      client.setRequestHandler(ElicitRequestSchema, (req) => {
        asked.push(String(req.params.message));
        return { action: 'decline' };
      });
      await client.connect(new StreamableHTTPClientTransport(new URL(stateless.url)));
      const r = await callTool(client, 'delete-resource', { kind: 'configmap', name: 'stateless', namespace: ns });
      await client.close();
      expect(out(r).status).toBe('deleted');
      expect(asked).toEqual([]);
    } finally {
      await stateless.close();
    }
    await expect(configMap('stateless')).rejects.toMatchObject({ code: 404 });
  });

  it('over stdio, a declining client keeps the pod (delete-pod) and an accepting one deletes it', async () => {
    const pod = await callTool(plain, 'create-pod', { name: 'stdio-pod', image: 'nginx:1.27', namespace: ns });
    expect(pod.isError).toBeFalsy();
    const run = async (answer: ElicitResult) => {
      const transport = new StdioClientTransport({
        command: path.join(ROOT, 'node_modules/.bin/tsx'),
        args: ['cli.ts', 'serve'],
        cwd: ROOT,
        env: { ...(process.env as Record<string, string>), LOG_LEVEL: 'warn' },
        stderr: 'pipe',
      });
      const client = new Client(
        { name: 'kubemcp-test-stdio', version: '1.0.0' },
        { capabilities: { elicitation: {} } },
      );
      const asked: string[] = [];
      client.setRequestHandler(ElicitRequestSchema, (req) => {
        asked.push(String(req.params.message));
        return answer;
      });
      await client.connect(transport);
      const pid = transport.pid!;
      try {
        const r = await callTool(client, 'delete-pod', { name: 'stdio-pod', namespace: ns, gracePeriodSeconds: 0 });
        return { r, asked };
      } finally {
        await client.close().catch(() => undefined);
        try {
          process.kill(pid, 0);
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    };
    const no = await run({ action: 'decline' });
    expect(out(no.r).status).toBe('declined');
    expect(no.asked[0]).toMatch(/^Delete pod\/stdio-pod from namespace/);
    await expect(core.readNamespacedPod({ name: 'stdio-pod', namespace: ns })).resolves.toBeDefined();
    const yes = await run({ action: 'accept', content: { confirm: true } });
    expect(yes.r.isError).toBeFalsy();
    expect(['deleted', 'deleting']).toContain(out(yes.r).status);
    await waitFor(
      'stdio-pod gone',
      async () =>
        (await core.readNamespacedPod({ name: 'stdio-pod', namespace: ns }).catch(() => undefined)) === undefined,
      30_000,
    );
  });
});
