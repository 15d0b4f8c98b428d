/**
 * Rollouts drain on the real node (issue 18; mcp-lifecycle-operator#180): a config change that
 * rolls an MCPServer's pods loses no in-flight `tools/call`. Two MCPServers, each under a steady
 * load of calls while its `config` changes (the config hash annotation rolls the Deployment):
 * - `kube-mcp`: `kubemcp serve -t http` behind the gateway (3 replicas), the server container's
 *   preStop hook waiting on the gateway's drain (charts/mcpserver.ts);
 * - `everything`: bridged stdio server-everything (1 replica), whose
 *   `trigger-long-running-operation` (1 s) is in flight whenever a pod gets SIGTERM.
 *
 * The controller runs in this process, watching only this suite's namespace. The load comes from
 * this host straight to the pods' IPs (the real node's pod network is routed from the host;
 * Service IPs are not), choosing among the endpoints the EndpointSlices list as ready, as
 * kube-proxy would: each call opens its own MCP session (initialize, the call, close). An
 * `initialize` refused by a draining pod (503 + Retry-After) or a connection refused before the
 * session exists is retried on another endpoint and counted apart; a call that was sent and did not
 * come back with its result is a failure. Every loop is bounded in count and time.
 *
 * Skipped, with the reason printed, only where the machine cannot run the real node.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import { realNodeStatus } from '../../cluster/index.js';
import { Controller } from '../../controller/controller.js';
import { EVERYTHING_BIN, EVERYTHING_IMAGE, KUBEMCP_IMAGE } from '../../images/images.js';
import { startRealNodeController } from './setup.js';
import { deleteTestNamespace, kubeConfig, mcpServers, readyEndpoints as readyEndpointsOf, waitFor } from '../kube.js';

const status = realNodeStatus();
const skip = !status.available && status.reason?.kind === 'unsupported';
if (skip) process.stderr.write(`SKIPPED real-node drain tests: ${status.reason?.message}\n`);
const describeReal = skip ? describe.skip : describe;

const ns = `drain-${randomBytes(3).toString('hex')}`;
const SMALL = { requests: { cpu: '50m', memory: '96Mi' } };
const READY_WAIT_MS = 300_000;

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const { apply: applyMcp } = mcpServers(kc, ns);
const log = pino({ level: process.env.KUBEMCP_TEST_LOG ?? 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The ready endpoints (`ip:port`) of Service `name`, as kube-proxy would route to them. */
const readyEndpoints = (name: string) => readyEndpointsOf(kc, ns, name);

/** Waits until the Deployment `name` has rolled out completely (every pod of the new template, none older). */
async function rolledOut(name: string, replicas: number, timeoutMs: number): Promise<void> {
  await waitFor(
    `Deployment ${name} rolled out`,
    async () => {
      const d = await apps.readNamespacedDeployment({ name, namespace: ns });
      const s = d.status;
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${name}` });
      return (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
        s?.updatedReplicas === replicas &&
        s?.availableReplicas === replicas &&
        (s?.replicas ?? 0) === replicas &&
        pods.items.length === replicas
        ? true
        : undefined;
    },
    timeoutMs,
    1000,
  );
}

interface LoadResult {
  ok: number;
  failed: Array<{ endpoint: string; error: string }>;
  /** Sessions not opened (503 from a draining pod, connection refused) and retried elsewhere. */
  retriedInitialize: number;
  endpoints: Set<string>;
}

/**
 * `workers` loops, each opening a session on a ready endpoint of `name` and making one call
 * (`call`), until `stop()` or `maxCalls` calls or `maxMs`.
 */
function load(
  name: string,
  workers: number,
  call: (c: Client) => Promise<string>,
  expectText: RegExp,
  bounds = { maxCalls: 5000, maxMs: 600_000 },
): { stop: () => Promise<LoadResult>; result: LoadResult } {
  const result: LoadResult = { ok: 0, failed: [], retriedInitialize: 0, endpoints: new Set() };
  let stopped = false;
  let endpoints: string[] = [];
  const end = Date.now() + bounds.maxMs;
  const refresh = (async () => {
    while (!stopped && Date.now() < end) {
      endpoints = await readyEndpoints(name).catch(() => endpoints);
      await sleep(250);
    }
  })();
  let calls = 0;
  const worker = async () => {
    while (!stopped && Date.now() < end && calls < bounds.maxCalls) {
      const eps = endpoints;
      if (!eps.length) {
        await sleep(100);
        continue;
      }
      const ep = eps[Math.floor(Math.random() * eps.length)]!;
      const client = new Client({ name: 'drain-load', version: '1.0.0' });
      try {
        await client.connect(new StreamableHTTPClientTransport(new URL(`http://${ep}/mcp`)), { timeout: 15_000 });
      } catch {
        result.retriedInitialize++;
        await client.close().catch(() => undefined);
        await sleep(200);
        continue;
      }
      calls++;
      result.endpoints.add(ep);
      try {
        const text = await call(client);
        if (expectText.test(text)) result.ok++;
        else result.failed.push({ endpoint: ep, error: `unexpected answer: ${text.slice(0, 200)}` });
      } catch (err) {
        result.failed.push({ endpoint: ep, error: (err as Error).message });
      } finally {
        await client.close().catch(() => undefined);
      }
    }
  };
  const running = Promise.all(Array.from({ length: workers }, worker));
  return {
    result,
    stop: async () => {
      stopped = true;
      await running;
      await refresh;
      return result;
    },
  };
}

const textOf = (r: unknown) =>
  ((r as { content?: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

describeReal('a config change rolling an MCPServer under load loses no call (real node)', () => {
  let controller: Controller | undefined;

  beforeAll(async () => {
    controller = await startRealNodeController(kc, ns, status, log);
  }, 40 * 60_000);

  afterAll(async () => {
    await controller?.stop();
    await deleteTestNamespace(kc, ns);
  });

  const cases = [
    {
      name: 'kube-mcp',
      replicas: 3,
      spec: (config: Record<string, string>) => ({
        image: KUBEMCP_IMAGE,
        transport: 'streamable-http',
        port: 3001,
        replicas: 3,
        resources: SMALL,
        auth: { mode: 'none' },
        config,
      }),
      call: async (c: Client) =>
        textOf(await c.callTool({ name: 'list-contexts', arguments: {} }, undefined, { timeout: 20_000 })),
      expect: /\S/,
    },
    {
      name: 'everything',
      // One replica: the rolling update still runs the old and the new pod side by side (several
      // replicas of a bridged server are tested in sessions.test.ts).
      replicas: 1,
      spec: (config: Record<string, string>) => ({
        image: EVERYTHING_IMAGE,
        transport: 'stdio',
        port: 3001,
        command: [EVERYTHING_BIN],
        args: ['stdio'],
        replicas: 1,
        resources: SMALL,
        auth: { mode: 'none' },
        config,
      }),
      call: async (c: Client) =>
        textOf(
          await c.callTool(
            { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 1 } },
            undefined,
            { timeout: 20_000 },
          ),
        ),
      expect: /Long running operation completed/,
    },
  ];

  for (const t of cases) {
    it(
      `${t.name}: ${t.replicas} replicas, config changed under a steady load of tools/call: every call answered`,
      async () => {
        await applyMcp(t.name, t.spec({ round: '1' }));
        // The pods and endpoints are what count here (MCPServer Ready through the apiserver's
        // service proxy with several replicas is sessions.test.ts's).
        await waitFor(
          `Deployment ${t.name} created`,
          async () =>
            apps.readNamespacedDeployment({ name: t.name, namespace: ns }).then(
              () => true,
              () => undefined,
            ),
          READY_WAIT_MS,
          1000,
        );
        await rolledOut(t.name, t.replicas, READY_WAIT_MS);
        await waitFor(
          `${t.replicas} ready endpoints of ${t.name}`,
          async () => ((await readyEndpoints(t.name)).length === t.replicas ? true : undefined),
          READY_WAIT_MS,
          1000,
        );
        const before = new Set(
          (
            await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${t.name}` })
          ).items.map((p) => p.metadata!.name!),
        );
        const l = load(t.name, 4, t.call, t.expect);
        await waitFor(
          '20 calls answered before the change',
          async () => (l.result.ok >= 20 ? true : undefined),
          120_000,
          200,
        );
        // The config change: a new config hash on the pod template, so the Deployment rolls. Wait
        // for the controller to write the new template (a new generation) before waiting for the
        // rollout, or the old, rolled-out generation would count as done.
        const gen = (await apps.readNamespacedDeployment({ name: t.name, namespace: ns })).metadata?.generation ?? 0;
        await applyMcp(t.name, t.spec({ round: '2' }));
        await waitFor(
          `Deployment ${t.name} updated by the controller`,
          async () =>
            ((await apps.readNamespacedDeployment({ name: t.name, namespace: ns })).metadata?.generation ?? 0) > gen
              ? true
              : undefined,
          READY_WAIT_MS,
          500,
        );
        await rolledOut(t.name, t.replicas, READY_WAIT_MS);
        await sleep(3000);
        const r = await l.stop();
        const after = (
          await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${t.name}` })
        ).items.map((p) => p.metadata!.name!);
        process.stderr.write(
          `drain ${t.name}: ${r.ok} calls answered, ${r.failed.length} failed, ${r.retriedInitialize} initialize retried, ${r.endpoints.size} pods served\n`,
        );
        expect(after.every((p) => !before.has(p))).toBe(true); // every pod was replaced
        expect(r.endpoints.size).toBeGreaterThanOrEqual(t.replicas * 2); // old and new pods served calls
        expect(r.failed).toEqual([]);
        expect(r.ok).toBeGreaterThan(40);
      },
      20 * 60_000,
    );
  }
});
