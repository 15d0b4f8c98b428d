/**
 * The operator's-bad-day tools of issue 19 that need no container: list-api-resources and
 * explain-resource (discovery and OpenAPI v3 of the real apiserver, the MCPServer CRD included),
 * cordon-node / uncordon-node and drain-node on fake kwok nodes this suite creates (kwok plays
 * their kubelet), with a 2-replica Deployment behind a PodDisruptionBudget, a DaemonSet pod, an
 * unmanaged pod, dry runs, policy refusals and bad arguments.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createNamespace, deleteTestNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';
import { callTool, startHttpServer, text, type HttpServer } from './helpers.js';
import { KWOK_NODE_ANNOTATION } from '../../cluster/paths.js';
import { renderMCPServer } from '../../charts/render.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const policyApi = kc.makeApiClient(k8s.PolicyV1Api);
const suffix = Math.random().toString(36).slice(2, 7);
const nodeA = `drain-a-${suffix}`;
const nodeB = `drain-b-${suffix}`;
// The MCPServer PDB test's own pair of nodes (another label: the first test's pods never go there).
const nodeC = `drain-c-${suffix}`;
const nodeD = `drain-d-${suffix}`;
const pinGuarded = { 'kubemcp-test/drain-guarded': suffix };
const pin = { 'kubemcp-test/drain': suffix };
const TAINT_KEY = 'kubemcp-test/drain';
const tolerations = [{ key: TAINT_KEY, operator: 'Equal', value: suffix, effect: 'NoSchedule' }];
let ns: string;
let s: HttpServer;
let c: Client;

type Row = string[];
const rows = (r: { structuredContent: unknown }) => (r.structuredContent as { rows: Row[] }).rows;

async function fakeNode(name: string, labels: Record<string, string> = pin): Promise<void> {
  await core.createNode({
    body: {
      metadata: {
        name,
        annotations: { [KWOK_NODE_ANNOTATION]: 'fake' },
        labels: { type: 'kwok', 'kubernetes.io/hostname': name, ...labels },
      },
      // Tainted: other suites' pods (scheduled onto any `type=kwok` node) must never land here, or
      // this suite's drains would evict them. This suite's pods tolerate it.
      spec: { taints: [{ key: TAINT_KEY, value: suffix, effect: 'NoSchedule' }] },
    },
  });
  await waitFor(
    `${name} Ready`,
    async () =>
      (await core.readNode({ name })).status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'),
    60_000,
  );
}

const podsOn = async (node: string) =>
  (await core.listNamespacedPod({ namespace: ns, fieldSelector: `spec.nodeName=${node}` })).items.filter(
    (p) => !p.metadata?.deletionTimestamp,
  );

beforeAll(async () => {
  await installCrd(kc);
  ns = await createNamespace(kc, 'mcp-ops');
  s = await startHttpServer({}, {}, { budget: 24_000 });
  c = await s.connect();
  await fakeNode(nodeA);
});
afterAll(async () => {
  await s?.close();
  for (const name of [nodeA, nodeB, nodeC, nodeD]) await core.deleteNode({ name }).catch(() => undefined);
  if (ns) await deleteTestNamespace(kc, ns);
});

describe('list-api-resources', () => {
  it('lists served resources with short names, versions, scope and verbs, filtered', async () => {
    const r = await callTool(c, 'list-api-resources', {});
    expect(r.isError).toBeFalsy();
    const all = rows(r);
    const deploy = all.find((x) => x[0] === 'deployments');
    expect(deploy).toEqual(['deployments', 'deploy', 'apps/v1', 'true', 'Deployment', expect.stringContaining('list')]);
    expect(all.find((x) => x[0] === 'mcpservers')?.slice(1, 5)).toEqual([
      'mcps',
      'mcp.example.com/v1alpha1',
      'true',
      'MCPServer',
    ]);
    // One row per resource: the preferred version only.
    expect(new Set(all.map((x) => `${x[2]!.split('/')[0]}/${x[0]}`)).size).toBe(all.length);
    const core0 = rows(await callTool(c, 'list-api-resources', { apiGroup: '', namespaced: false }));
    expect(core0.map((x) => x[0])).toEqual(expect.arrayContaining(['nodes', 'namespaces', 'persistentvolumes']));
    expect(core0.every((x) => x[2] === 'v1' && x[3] === 'false')).toBe(true);
    const noList = rows(await callTool(c, 'list-api-resources', { verb: 'list' }));
    expect(noList.find((x) => x[0] === 'tokenreviews')).toBeUndefined();
  });

  it('leaves denied kinds out', async () => {
    const d = await startHttpServer({ denyKinds: ['secrets'] });
    try {
      const r = rows(await callTool(await d.connect(), 'list-api-resources', { apiGroup: '' }));
      expect(r.find((x) => x[0] === 'configmaps')).toBeDefined();
      expect(r.find((x) => x[0] === 'secrets')).toBeUndefined();
    } finally {
      await d.close();
    }
  });
});

describe('explain-resource', () => {
  it('explains a field path of a built-in kind as kubectl explain does', async () => {
    const r = await callTool(c, 'explain-resource', { kind: 'deployment.spec.strategy' });
    expect(r.isError).toBeFalsy();
    expect(text(r)).toMatch(/^GROUP: +apps\nKIND: +Deployment\nVERSION: +v1\n\nFIELD: strategy <DeploymentStrategy>/);
    expect(text(r)).toMatch(/type\t<string>\n {2}enum: Recreate, RollingUpdate/);
    expect(r.structuredContent).toMatchObject({
      kind: 'Deployment',
      field: 'spec.strategy',
      fields: ['rollingUpdate', 'type'],
    });
    const pod = await callTool(c, 'explain-resource', { kind: 'pods', field: 'spec.containers.resources' });
    expect(pod.structuredContent).toMatchObject({ type: 'ResourceRequirements' });
    expect(text(pod)).toMatch(/limits\t<map\[string\]/);
  });

  it('explains the MCPServer CRD from its structural schema, recursively', async () => {
    // The apiserver publishes a new CRD's OpenAPI v3 a moment after the CRD is established.
    const r = await waitFor(
      'the MCPServer schema in OpenAPI v3',
      async () => {
        const x = await callTool(c, 'explain-resource', { kind: 'mcps', field: 'spec', recursive: true });
        return x.isError ? undefined : x;
      },
      30_000,
      500,
    );
    expect(text(r)).toMatch(/^ {2}transport\t<string>/m);
    expect(text(r)).toMatch(/^ {2}auth\t<Object>\n {4}audiences\t<\[\]string>\n(?: {4}.*\n)* {4}mode\t<string>/m);
  });

  it('refuses a field that does not exist, naming it, and a denied kind', async () => {
    const r = await callTool(c, 'explain-resource', { kind: 'deployment', field: 'spec.nope' });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/invalid field: field "nope" does not exist in deployment\.spec; fields: .*replicas/);
    const bad = await callTool(c, 'explain-resource', { kind: 'pod', field: 'spec/../x' });
    expect(text(bad)).toMatch(/invalid field/);
    const d = await startHttpServer({ denyKinds: ['secrets'] });
    try {
      const denied = await callTool(await d.connect(), 'explain-resource', { kind: 'secret' });
      expect(denied.isError).toBe(true);
      expect(text(denied)).toMatch(/kind Secret is denied/);
    } finally {
      await d.close();
    }
  });
});

describe('diagnose-workload under the policy', () => {
  it('is listed read-only; a namespace outside the allow-list and a denied kind are refused', async () => {
    const ro = await startHttpServer({ readOnly: true, namespaces: ['default'], denyKinds: ['secrets'] });
    try {
      const rc = await ro.connect();
      expect((await rc.listTools()).tools.map((t) => t.name)).toContain('diagnose-workload');
      const outside = await callTool(rc, 'diagnose-workload', { kind: 'deployment', name: 'x', namespace: ns });
      expect(text(outside)).toMatch(new RegExp(`refused by policy: namespace ${ns} is not allowed`));
    } finally {
      await ro.close();
    }
    const d = await startHttpServer({ denyKinds: ['pods'] });
    try {
      const r = await callTool(await d.connect(), 'diagnose-workload', { kind: 'pod', name: 'x', namespace: ns });
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(/kind Pod is denied/);
    } finally {
      await d.close();
    }
    const cluster = await callTool(c, 'diagnose-workload', { kind: 'namespace', name: ns });
    expect(text(cluster)).toMatch(/invalid kind: Namespace is cluster-scoped/);
  });
});

describe('cordon-node, uncordon-node', () => {
  it('round-trips spec.unschedulable; a dry run and read-only change nothing', async () => {
    const dry = await callTool(c, 'cordon-node', { name: nodeA, dryRun: true });
    expect(dry.structuredContent).toMatchObject({ changed: true, dryRun: true });
    expect((await core.readNode({ name: nodeA })).spec?.unschedulable).toBeFalsy();
    expect(text(await callTool(c, 'cordon-node', { name: nodeA }))).toBe(`node/${nodeA} cordoned`);
    expect((await core.readNode({ name: nodeA })).spec?.unschedulable).toBe(true);
    expect(text(await callTool(c, 'cordon-node', { name: nodeA }))).toBe(`node/${nodeA} already cordoned`);
    expect(text(await callTool(c, 'uncordon-node', { name: nodeA }))).toBe(`node/${nodeA} uncordoned`);
    expect((await core.readNode({ name: nodeA })).spec?.unschedulable).toBeFalsy();

    const ro = await startHttpServer({ readOnly: true });
    try {
      const names = (await (await ro.connect()).listTools()).tools.map((t) => t.name);
      expect(names).not.toContain('cordon-node');
      expect(names).not.toContain('drain-node');
      expect(names).toContain('list-api-resources');
    } finally {
      await ro.close();
    }
    const missing = await callTool(c, 'cordon-node', { name: `no-such-${suffix}` });
    expect(text(missing)).toMatch(/NotFound \(404\)/);
  });
});

describe('drain-node', () => {
  it('refuses before changing anything while an unmanaged pod is on the node, then drains behind the PDB', async () => {
    const labels = { app: 'drained' };
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'drained' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { nodeSelector: pin, tolerations, containers: [{ name: 'main', image: 'nginx:1.27' }] },
          },
        },
      },
    });
    await policyApi.createNamespacedPodDisruptionBudget({
      namespace: ns,
      body: { metadata: { name: 'drained' }, spec: { minAvailable: 1, selector: { matchLabels: labels } } },
    });
    await apps.createNamespacedDaemonSet({
      namespace: ns,
      body: {
        metadata: { name: 'agent' },
        spec: {
          selector: { matchLabels: { app: 'agent' } },
          template: {
            metadata: { labels: { app: 'agent' } },
            spec: { nodeSelector: pin, tolerations, containers: [{ name: 'main', image: 'busybox:1.36' }] },
          },
        },
      },
    });
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'lonely' },
        spec: { nodeName: nodeA, tolerations, containers: [{ name: 'main', image: 'nginx:1.27' }] },
      },
    });
    await waitFor(
      'deployment and daemonset pods running on node A',
      async () => (await podsOn(nodeA)).filter((p) => p.status?.phase === 'Running').length === 4,
      90_000,
    );
    await waitFor(
      'PDB allows one disruption',
      async () =>
        (await policyApi.readNamespacedPodDisruptionBudget({ name: 'drained', namespace: ns })).status
          ?.disruptionsAllowed === 1,
      60_000,
    );

    // An unmanaged pod blocks the drain, which then changes nothing (not even the cordon).
    const refused = await callTool(c, 'drain-node', { name: nodeA, timeoutSeconds: 30 });
    expect(refused.isError).toBeFalsy();
    expect(text(refused)).toMatch(
      new RegExp(
        `not drained: 1 pod\\(s\\) cannot be evicted; nothing was changed:\\n  ${ns}/lonely: not managed by a controller`,
      ),
    );
    expect((await core.readNode({ name: nodeA })).spec?.unschedulable).toBeFalsy();

    // A client that can be asked and declines: nothing changes; the question lists the pods.
    const asked: string[] = [];
    const elicit = new Client({ name: 'kubemcp-test-elicit', version: '1.0.0' }, { capabilities: { elicitation: {} } });
    elicit.setRequestHandler(ElicitRequestSchema, (req) => {
      asked.push(String(req.params.message));
      return { action: 'decline' };
    });
    await elicit.connect(new StreamableHTTPClientTransport(new URL(s.url)));
    try {
      const declined = await callTool(elicit, 'drain-node', { name: nodeA, force: true, timeoutSeconds: 30 });
      expect(text(declined)).toBe(`node/${nodeA} not drained: the user declined the confirmation; nothing was changed`);
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatch(new RegExp(`^Drain node ${nodeA}: cordon it and evict 3 pod\\(s\\):\\n`));
      expect(asked[0]).toContain(`${ns}/lonely`);
    } finally {
      await elicit.close();
    }
    expect((await core.readNode({ name: nodeA })).spec?.unschedulable).toBeFalsy();
    expect((await podsOn(nodeA)).length).toBe(4);

    // A dry run with force: would evict the three, skip the DaemonSet's; nothing changes.
    const dry = await callTool(c, 'drain-node', { name: nodeA, force: true, dryRun: true });
    const dryPods = (dry.structuredContent as unknown as { pods: Array<{ pod: string; result: string }> }).pods;
    expect(dryPods.filter((p) => p.result === 'would evict')).toHaveLength(3);
    expect(dryPods.filter((p) => p.result === 'skipped')).toEqual([
      expect.objectContaining({
        pod: expect.stringMatching(new RegExp(`^${ns}/agent-`)),
        reason: 'DaemonSet-managed (agent)',
      }),
    ]);
    expect((await core.readNode({ name: nodeA })).spec?.unschedulable).toBeFalsy();
    expect((await podsOn(nodeA)).length).toBe(4);

    // With no other node, the PDB keeps the second replica: one evicted, one blocked at the timeout.
    const blocked = await callTool(c, 'drain-node', { name: nodeA, force: true, timeoutSeconds: 12 });
    const bPods = blocked.structuredContent as unknown as {
      done: boolean;
      pods: Array<{ pod: string; result: string; reason?: string }>;
    };
    expect(bPods.done).toBe(false);
    const deployPods = bPods.pods.filter((p) => p.pod.startsWith(`${ns}/drained-`));
    expect(deployPods.map((p) => p.result).sort()).toEqual(['blocked', 'evicted']);
    expect(deployPods.find((p) => p.result === 'blocked')?.reason).toMatch(/PodDisruptionBudget: .*disruption budget/i);
    expect(bPods.pods.find((p) => p.pod === `${ns}/lonely`)?.result).toBe('evicted');
    expect((await core.readNode({ name: nodeA })).spec?.unschedulable).toBe(true);

    // A second node takes the replacement; the drain then finishes with progress reported.
    await fakeNode(nodeB);
    const progress: string[] = [];
    const done = await c.callTool({ name: 'drain-node', arguments: { name: nodeA, timeoutSeconds: 90 } }, undefined, {
      onprogress: (p) => progress.push(String(p.message)),
      timeout: 120_000,
    });
    expect(done.isError).toBeFalsy();
    expect(text(done)).toMatch(new RegExp(`^node/${nodeA} drained\\n`));
    expect(progress[0]).toMatch(/cordoned node\/drain-a-.*; evicting 1 pod\(s\)/);
    expect(progress.at(-1)).toMatch(/drained-.*: evicted/);
    const left = await podsOn(nodeA);
    expect(left.map((p) => p.metadata?.name)).toEqual([expect.stringMatching(/^agent-/)]);
    expect((await podsOn(nodeB)).filter((p) => p.metadata?.name?.startsWith('drained-'))).toHaveLength(2);
    await callTool(c, 'uncordon-node', { name: nodeA });
  }, 300_000);

  it("holds an MCPServer's own PodDisruptionBudget (rendered by the operator's constructs): one replica evicted, the other blocked naming it, then drained onto a new node", async () => {
    // The children the controller would apply for a 2-replica MCPServer (charts/render.ts), the
    // pods pinned to this test's kwok nodes (kwok plays their kubelet; nothing runs).
    const children = renderMCPServer(
      {
        apiVersion: 'mcp.example.com/v1alpha1',
        kind: 'MCPServer',
        metadata: { name: 'guarded', namespace: ns },
        spec: { image: 'nginx:1.27', port: 3001, replicas: 2 },
      },
      ns,
    );
    const pdb = children.find((o) => o.kind === 'PodDisruptionBudget');
    expect(pdb).toMatchObject({ metadata: { name: 'guarded' }, spec: { maxUnavailable: 1 } });
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    for (const o of children) {
      if (!o.metadata?.namespace) continue; // cluster-scoped bindings are not needed on kwok
      if (o.kind === 'Deployment') {
        const spec = (o as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec;
        spec.nodeSelector = pinGuarded;
        spec.tolerations = tolerations;
      }
      await objects.create(o as k8s.KubernetesObject);
    }
    await fakeNode(nodeC, pinGuarded);
    await waitFor(
      'both MCPServer replicas running on node C',
      async () => (await podsOn(nodeC)).filter((p) => p.status?.phase === 'Running').length === 2,
      90_000,
    );
    await waitFor(
      "the MCPServer's PDB allows one disruption",
      async () =>
        (await policyApi.readNamespacedPodDisruptionBudget({ name: 'guarded', namespace: ns })).status
          ?.disruptionsAllowed === 1,
      60_000,
    );
    // An MCPServer pod keeps scratch data in emptyDir volumes: as kubectl drain, refused unless told.
    const refused = await callTool(c, 'drain-node', { name: nodeC, timeoutSeconds: 12 });
    expect(text(refused)).toMatch(/not drained: 2 pod\(s\) cannot be evicted; nothing was changed/);
    expect(text(refused)).toMatch(/guarded-.*: uses emptyDir data \(deleteEmptyDirData: true deletes it\)/);
    expect((await core.readNode({ name: nodeC })).spec?.unschedulable).toBeFalsy();
    // No other node for the replacement: the PDB keeps one replica.
    const blocked = await callTool(c, 'drain-node', { name: nodeC, deleteEmptyDirData: true, timeoutSeconds: 12 });
    const b = blocked.structuredContent as unknown as {
      done: boolean;
      pods: Array<{ pod: string; result: string; reason?: string }>;
    };
    expect(b.done).toBe(false);
    expect(b.pods.map((p) => p.result).sort()).toEqual(['blocked', 'evicted']);
    expect(b.pods.find((p) => p.result === 'blocked')?.reason).toMatch(
      /PodDisruptionBudget: .*disruption budget guarded/i,
    );
    expect(await podsOn(nodeC)).toHaveLength(1);
    // A node for the replacements: the drain finishes; both replicas run there.
    await fakeNode(nodeD, pinGuarded);
    const done = await c.callTool(
      { name: 'drain-node', arguments: { name: nodeC, deleteEmptyDirData: true, timeoutSeconds: 90 } },
      undefined,
      {
        timeout: 120_000,
      },
    );
    expect(text(done)).toMatch(new RegExp(`^node/${nodeC} drained\\n`));
    expect(await podsOn(nodeC)).toEqual([]);
    await waitFor(
      'both replicas on node D',
      async () => (await podsOn(nodeD)).filter((p) => p.status?.phase === 'Running').length === 2,
      60_000,
    );
  }, 300_000);

  it('is hidden and refused under disable-destructive, bad arguments are named', async () => {
    const d = await startHttpServer({ disableDestructive: true });
    try {
      const dc = await d.connect();
      expect((await dc.listTools()).tools.map((t) => t.name)).not.toContain('drain-node');
      // The gateway refuses evictions by themselves too.
      const pods = await d.kube.resolve('pods', 'v1');
      await expect(
        d.kube.request({ method: 'POST', api: pods, namespace: ns, name: 'x', subresource: 'eviction', body: {} }),
      ).rejects.toThrow(/destructive operations are disabled \(eviction of pods\)/);
    } finally {
      await d.close();
    }
    const bad = await callTool(c, 'drain-node', { name: nodeA, timeoutSeconds: 0 });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/timeoutSeconds/);
    const logs = await callTool(c, 'get-node-logs', { name: nodeA, query: '../etc/passwd' });
    expect(text(logs)).toMatch(/invalid query/);
  });
});
