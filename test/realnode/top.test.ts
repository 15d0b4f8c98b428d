/**
 * The `top` tool (mcp-server/tools/top.ts) on the real node of the local cluster, whose
 * metrics-server (cluster/components/metrics-server.ts) serves metrics.k8s.io for it: a pod that
 * burns CPU (throttled to 300m) and holds 64 MiB beside an idle one, read through the in-process
 * server once metrics-server has scraped them (bounded wait); pods, per-container rows, nodes with
 * percentages of allocatable, sorted orders, all namespaces, a denied namespace, bad arguments.
 * Last, with the APIService `v1beta1.metrics.k8s.io` removed (restored in `finally`): the clear
 * error, the tool hidden from tools/list with notifications/tools/list_changed, and listed again
 * once a discovery shows the group.
 *
 * Skipped, with the reason printed, only where the machine cannot run the real node.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { REAL_NODE_NAME, NODE_NAME, realNodeNamespace, realNodeStatus } from '../../cluster/index.js';
import { ensureImagesLoaded } from '../../images/cluster.js';
import { KUBEMCP_IMAGE } from '../../images/images.js';
import { callTool, startHttpServer, text, type HttpServer, type ToolResult } from '../mcp-server/helpers.js';
import { deleteTestNamespace, kubeConfig, waitFor } from '../kube.js';

const status = realNodeStatus();
const skip = !status.available && status.reason?.kind === 'unsupported';
if (skip) process.stderr.write(`SKIPPED real-node top tests: ${status.reason?.message}\n`);
const describeReal = skip ? describe.skip : describe;

const ns = `top-${randomBytes(3).toString('hex')}`;
const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const reg = kc.makeApiClient(k8s.ApiregistrationV1Api);
/** metrics-server scrapes every 15 s and reports a pod after two scrapes; pods start slowly on a loaded machine. */
const METRICS_WAIT_MS = 240_000;
const HOLD_MI = 64;

/** A pod of the kubemcp image (it has node) running `scripts` (container name -> node -e script). */
function pod(name: string, scripts: Record<string, string>): k8s.V1Pod {
  return {
    metadata: { name, labels: { app: 'top-test', pod: name } },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: Object.entries(scripts).map(([c, script]) => ({
        name: c,
        image: KUBEMCP_IMAGE,
        imagePullPolicy: 'Never',
        command: ['node', '-e', script],
        resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '300m', memory: '256Mi' } },
      })),
    },
  };
}
const IDLE = 'setInterval(() => {}, 1 << 30)';
/** Holds HOLD_MI MiB (filled, so the pages are resident) and spins. */
const BURN = `globalThis.keep = Buffer.alloc(${HOLD_MI} * 1024 * 1024, 1); for (;;) {}`;

const cpu = (s: string | undefined) => Number(/^(\d+)m$/.exec(s ?? '')?.[1] ?? NaN);
const mem = (s: string | undefined) => Number(/^(\d+)Mi$/.exec(s ?? '')?.[1] ?? NaN);
/** The rows of a table result as objects keyed by column. */
function rowsOf(r: ToolResult): Array<Record<string, string>> {
  const { columns, rows } = r.structuredContent;
  return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i]!])));
}

describeReal('top on the real node (metrics-server)', () => {
  let server: HttpServer;
  let client: Client;

  beforeAll(async () => {
    if (!status.available) throw new Error(`the real node is not available: ${status.reason?.message}`);
    ensureImagesLoaded({ output: 'pipe', log: () => undefined });
    await core.createNamespace({ body: realNodeNamespace(ns) });
    await waitFor(
      `default ServiceAccount in ${ns}`,
      async () => (await core.readNamespacedServiceAccount({ name: 'default', namespace: ns })) && true,
    );
    await core.createNamespacedPod({ namespace: ns, body: pod('z-burn', { burn: BURN, idle: IDLE }) });
    await core.createNamespacedPod({ namespace: ns, body: pod('a-idle', { idle: IDLE }) });
    server = await startHttpServer();
    client = await server.connect();
    // Both pods measured, the burner with its CPU and memory visible.
    await waitFor(
      'metrics of both pods',
      async () => {
        const r = await callTool(client, 'get-resource-usage', { namespace: ns });
        if (r.isError) return undefined;
        const rows = rowsOf(r);
        const burn = rows.find((x) => x.NAME === 'z-burn');
        return rows.length === 2 && cpu(burn?.['CPU(cores)']) >= 50 && mem(burn?.['MEMORY(bytes)']) >= HOLD_MI;
      },
      METRICS_WAIT_MS,
      3000,
    );
  }, METRICS_WAIT_MS + 120_000);

  afterAll(async () => {
    await server?.close();
    await deleteTestNamespace(kc, ns);
  });

  it('shows the pods of a namespace by name, CPU in millicores and memory in Mi, as kubectl top pod', async () => {
    const r = await callTool(client, 'get-resource-usage', { namespace: ns });
    expect(r.isError ?? false).toBe(false);
    expect(r.structuredContent.kind).toBe('PodMetrics');
    expect(r.structuredContent.columns).toEqual(['NAME', 'CPU(cores)', 'MEMORY(bytes)']);
    const rows = rowsOf(r);
    expect(rows.map((x) => x.NAME)).toEqual(['a-idle', 'z-burn']);
    const [idle, burn] = rows as [Record<string, string>, Record<string, string>];
    // Throttled to 300m by its limit; at least a sixth of it even on a loaded machine.
    expect(cpu(burn['CPU(cores)'])).toBeGreaterThanOrEqual(50);
    expect(cpu(burn['CPU(cores)'])).toBeLessThanOrEqual(400);
    expect(mem(burn['MEMORY(bytes)'])).toBeGreaterThanOrEqual(HOLD_MI);
    expect(mem(idle['MEMORY(bytes)'])).toBeGreaterThan(0);
    expect(cpu(idle['CPU(cores)'])).toBeLessThan(cpu(burn['CPU(cores)']));
    // The text is the same table, kubectl's columns.
    expect(text(r)).toMatch(/^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\na-idle\s+\d+m\s+\d+Mi\nz-burn\s+\d+m\s+\d+Mi$/);
  });

  it('sorts by cpu or memory, largest first', async () => {
    for (const sortBy of ['cpu', 'memory']) {
      const r = await callTool(client, 'get-resource-usage', { namespace: ns, sortBy });
      expect(rowsOf(r).map((x) => x.NAME)).toEqual(['z-burn', 'a-idle']);
    }
  });

  it('gives one row per container, containers sorted within each pod', async () => {
    const r = await callTool(client, 'get-resource-usage', { namespace: ns, containers: true });
    expect(r.structuredContent.columns).toEqual(['POD', 'NAME', 'CPU(cores)', 'MEMORY(bytes)']);
    const rows = rowsOf(r);
    expect(rows.map((x) => `${x.POD}/${x.NAME}`)).toEqual(['a-idle/idle', 'z-burn/burn', 'z-burn/idle']);
    const burn = rows.find((x) => x.POD === 'z-burn' && x.NAME === 'burn')!;
    const idle = rows.find((x) => x.POD === 'z-burn' && x.NAME === 'idle')!;
    expect(cpu(burn['CPU(cores)'])).toBeGreaterThan(cpu(idle['CPU(cores)']));
    expect(mem(burn['MEMORY(bytes)'])).toBeGreaterThanOrEqual(HOLD_MI);
    // With sortBy, the pods by their total and the containers within each: burn before idle.
    const sorted = rowsOf(
      await callTool(client, 'get-resource-usage', { namespace: ns, containers: true, sortBy: 'cpu' }),
    );
    expect(sorted.map((x) => `${x.POD}/${x.NAME}`)).toEqual(['z-burn/burn', 'z-burn/idle', 'a-idle/idle']);
  });

  it('narrows by name or labelSelector, and lists all namespaces with a NAMESPACE column', async () => {
    const byName = rowsOf(await callTool(client, 'get-resource-usage', { namespace: ns, name: 'z-burn' }));
    expect(byName.map((x) => x.NAME)).toEqual(['z-burn']);
    const bySelector = rowsOf(
      await callTool(client, 'get-resource-usage', { namespace: ns, labelSelector: 'pod=a-idle' }),
    );
    expect(bySelector.map((x) => x.NAME)).toEqual(['a-idle']);
    const all = await callTool(client, 'get-resource-usage', { allNamespaces: true, labelSelector: 'app=top-test' });
    expect(all.structuredContent.columns).toEqual(['NAMESPACE', 'NAME', 'CPU(cores)', 'MEMORY(bytes)']);
    expect(rowsOf(all).map((x) => `${x.NAMESPACE}/${x.NAME}`)).toEqual(
      expect.arrayContaining([`${ns}/a-idle`, `${ns}/z-burn`]),
    );
    const none = await callTool(client, 'get-resource-usage', { namespace: ns, labelSelector: 'pod=nothing' });
    expect(none.isError ?? false).toBe(false);
    expect(none.structuredContent.total).toBe(0);
    expect(text(none)).toBe('No PodMetrics found.');
    // A pod just created has no metrics yet (two scrapes, 15 s apart, after it runs): said so, as kubectl does.
    await core.createNamespacedPod({ namespace: ns, body: pod('b-new', { idle: IDLE }) });
    const fresh = await callTool(client, 'get-resource-usage', { namespace: ns, name: 'b-new' });
    expect(fresh.isError ?? false).toBe(false);
    expect(text(fresh)).toMatch(/^Metrics not available yet for the 1 matching pod: /);
    await core.deleteNamespacedPod({ namespace: ns, name: 'b-new', gracePeriodSeconds: 0 });
  });

  it('shows the real node with CPU% and MEMORY% of allocatable, and kwok`s node (no kubelet) as <unknown>', async () => {
    const r = await callTool(client, 'get-resource-usage', { kind: 'nodes' });
    expect(r.isError ?? false).toBe(false);
    expect(r.structuredContent.kind).toBe('NodeMetrics');
    expect(r.structuredContent.columns).toEqual(['NAME', 'CPU(cores)', 'CPU(%)', 'MEMORY(bytes)', 'MEMORY(%)']);
    const rows = rowsOf(r);
    const real = rows.find((x) => x.NAME === REAL_NODE_NAME)!;
    expect(cpu(real['CPU(cores)'])).toBeGreaterThan(0);
    expect(mem(real['MEMORY(bytes)'])).toBeGreaterThan(0);
    expect(real['CPU(%)']).toMatch(/^\d+%$/);
    expect(real['MEMORY(%)']).toMatch(/^\d+%$/);
    // The percentage is the usage over the node's allocatable, as kubectl computes it.
    const node = await core.readNode({ name: REAL_NODE_NAME });
    const allocMi = Number(/^(\d+)Ki$/.exec(node.status!.allocatable!.memory!)?.[1]) / 1024;
    const memPct = Number(real['MEMORY(%)']!.slice(0, -1));
    expect(Math.abs(memPct - (mem(real['MEMORY(bytes)']) / allocMi) * 100)).toBeLessThanOrEqual(1.5);
    expect(rows.find((x) => x.NAME === NODE_NAME)).toEqual({
      NAME: NODE_NAME,
      'CPU(cores)': '<unknown>',
      'CPU(%)': '<unknown>',
      'MEMORY(bytes)': '<unknown>',
      'MEMORY(%)': '<unknown>',
    });
    // Measured nodes first, sorted; `<unknown>` rows last.
    expect(rows.at(-1)!.NAME).toBe(NODE_NAME);
    const byCpu = rowsOf(await callTool(client, 'get-resource-usage', { kind: 'nodes', sortBy: 'cpu' }));
    expect(byCpu[0]!.NAME).toBe(REAL_NODE_NAME);
    const one = rowsOf(await callTool(client, 'get-resource-usage', { kind: 'nodes', name: REAL_NODE_NAME }));
    expect(one.map((x) => x.NAME)).toEqual([REAL_NODE_NAME]);
  });

  it('refuses a namespace outside the allow-list, and lists all namespaces as the allowed ones', async () => {
    const limited = await startHttpServer({ namespaces: ['default'] });
    try {
      const c = await limited.connect();
      const r = await callTool(c, 'get-resource-usage', { namespace: ns });
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(new RegExp(`namespace ${ns} is not allowed`));
      const all = await callTool(c, 'get-resource-usage', { allNamespaces: true, labelSelector: 'app=top-test' });
      expect(all.isError ?? false).toBe(false);
      expect(all.structuredContent.total).toBe(0);
    } finally {
      await limited.close();
    }
  });

  it('refuses bad arguments, naming the argument', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ kind: 'nodes', namespace: ns }, /invalid namespace: nodes are not namespaced/],
      [{ kind: 'nodes', allNamespaces: true }, /invalid allNamespaces: nodes are not namespaced/],
      [{ kind: 'nodes', containers: true }, /invalid containers: containers are for kind pods/],
      [{ namespace: ns, allNamespaces: true }, /invalid allNamespaces: give namespace or allNamespaces/],
      [{ namespace: ns, name: 'z-burn', labelSelector: 'a=b' }, /invalid labelSelector: give name or labelSelector/],
      [{ namespace: ns, name: '' }, /invalid name: must not be empty/],
      [{ namespace: ns, name: 'z-burn,metadata.namespace=default' }, /invalid name: /],
      [{ namespace: 'Not_A_Namespace' }, /namespace/],
      [{ sortBy: 'disk' }, /sortBy/],
      [{ kind: 'deployments' }, /kind/],
    ];
    for (const [args, why] of cases) {
      const r = await callTool(client, 'get-resource-usage', args);
      expect({ args, isError: r.isError }).toEqual({ args, isError: true });
      expect(text(r)).toMatch(why);
    }
  });

  it('without metrics.k8s.io: a clear error, the tool hidden (list_changed) and listed again once discovery shows it', async () => {
    const saved = await reg.readAPIService({ name: 'v1beta1.metrics.k8s.io' });
    const restore = async () => {
      await reg
        .createAPIService({
          body: { metadata: { name: saved.metadata!.name, labels: saved.metadata!.labels }, spec: saved.spec },
        })
        .catch((err: unknown) => {
          if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
        });
    };
    let bare: HttpServer | undefined;
    try {
      await reg.deleteAPIService({ name: 'v1beta1.metrics.k8s.io' });
      // A fresh server (no discovery yet): top is listed, as at any start.
      bare = await startHttpServer();
      const c = await bare.connect();
      let changed = 0;
      c.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed++);
      expect((await c.listTools()).tools.map((t) => t.name)).toContain('get-resource-usage');
      expect(c.getServerCapabilities()?.tools?.listChanged).toBe(true);
      // The aggregator drops the group from discovery once the APIService is gone.
      const r = await waitFor(
        'top to fail for want of metrics.k8s.io',
        async () => {
          const res = await callTool(c, 'get-resource-usage', { namespace: ns });
          return res.isError && /not served/.test(text(res)) ? res : undefined;
        },
        30_000,
        1000,
      );
      expect(text(r)).toBe(
        'get-resource-usage failed: NotFound (404): the metrics API (metrics.k8s.io) is not served by this cluster: install metrics-server (https://github.com/kubernetes-sigs/metrics-server) to use get-resource-usage',
      );
      // That discovery lacked the group: top is hidden, and the client was told.
      await waitFor('notifications/tools/list_changed', async () => changed > 0, 10_000, 100);
      const listed = (await c.listTools()).tools.map((t) => t.name);
      expect(listed).not.toContain('get-resource-usage');
      expect(listed).toContain('list-nodes');

      await restore();
      await waitFor(
        'APIService v1beta1.metrics.k8s.io Available again',
        async () =>
          (await reg.readAPIService({ name: 'v1beta1.metrics.k8s.io' })).status?.conditions?.some(
            (x) => x.type === 'Available' && x.status === 'True',
          ),
        60_000,
        1000,
      );
      // A discovery that shows the group (the gateway's refresh for an unknown kind) lists top again.
      changed = 0;
      await waitFor(
        'a discovery with metrics.k8s.io',
        async () => {
          await bare!.kube.resources(undefined, true);
          return (await c.listTools()).tools.some((t) => t.name === 'get-resource-usage');
        },
        30_000,
        1000,
      );
      expect(changed).toBeGreaterThan(0);
      expect((await callTool(c, 'get-resource-usage', { namespace: ns })).isError ?? false).toBe(false);
    } finally {
      await restore();
      await bare?.close();
    }
  }, 120_000);
});
