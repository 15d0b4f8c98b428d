/**
 * Legacy sessions that survive replicas, on the real node (issue 18; gateway/sessions.ts). Two
 * MCPServers of 3 replicas each, `spec.auth.mode: none`, run by an in-process controller:
 * `kube-mcp` (`kubemcp serve -t http` behind the reverse-proxy gateway) and `everything` (bridged
 * stdio server-everything: each pod its own process). Every request goes through the kube-apiserver's
 * service proxy, which picks a ready endpoint per request:
 * - both become Ready and Verified (the operator's handshake through that proxy opens a session and
 *   lists tools on it), and the controller made the Secret `<name>-session-keys`;
 * - 5 sessions x 10 tools/call each: no failure; the ids the clients hold open under the Secret's
 *   key and name current pods; the gateways' metrics show requests forwarded between pods;
 * - a forged, truncated or other-MCPServer id gets 404, and no gateway forwards it;
 * - deleting the pod that owns a session: its next request gets 404, and a new session works;
 * - rotating the keys (the MCPServer's rotate annotation): the Secret gets a new current key, the
 *   old one as previous; once the gateways read it, new ids are sealed under the new key and a
 *   session of the old key still works.
 *
 * Skipped, with the reason printed, only where the machine cannot run the real node.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import { realNodeStatus } from '../../cluster/index.js';
import type { Controller } from '../../controller/controller.js';
import { ROTATE_SESSION_KEYS_ANNOTATION } from '../../controller/reconciler.js';
import { SessionKeys, SessionSeal } from '../../gateway/sessions.js';
import { EVERYTHING_BIN, EVERYTHING_IMAGE, KUBEMCP_IMAGE } from '../../images/images.js';
import { connectThroughServiceProxy, serviceProxyUrl } from '../../mcp-server/service-proxy.js';
import { kubeFetch } from '../../lib/kube-http.js';
import { startRealNodeController } from './setup.js';
import { deleteTestNamespace, kubeConfig, kubectl, mcpCondition, mcpServers, waitFor } from '../kube.js';

const status = realNodeStatus();
const skip = !status.available && status.reason?.kind === 'unsupported';
if (skip) process.stderr.write(`SKIPPED real-node session tests: ${status.reason?.message}\n`);
const describeReal = skip ? describe.skip : describe;

const ns = `sessions-${randomBytes(3).toString('hex')}`;
const SMALL = { requests: { cpu: '50m', memory: '96Mi' } };
const READY_WAIT_MS = 360_000;
const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const { apply: applyMcp, get: getMcp } = mcpServers(kc, ns);
const log = pino({ level: process.env.KUBEMCP_TEST_LOG ?? 'silent' });

const textOf = (r: unknown) =>
  ((r as { content?: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');
const sidOf = (c: Client) => (c.transport as StreamableHTTPClientTransport).sessionId!;

/** The seal of MCPServer `name` under the keys its Secret holds now. */
async function sealOf(name: string): Promise<{ seal: SessionSeal; current: Buffer; previous?: Buffer }> {
  const s = await core.readNamespacedSecret({ name: `${name}-session-keys`, namespace: ns });
  const current = Buffer.from(s.data!.current!, 'base64');
  const previous = s.data?.previous ? Buffer.from(s.data.previous, 'base64') : undefined;
  return {
    seal: new SessionSeal(new SessionKeys(undefined, previous ? [current, previous] : [current]), `${ns}/${name}`),
    current,
    previous,
  };
}

/** The names of the MCPServer's pods that exist now. */
async function podNames(name: string): Promise<string[]> {
  return (
    await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${name}` })
  ).items.map((p) => p.metadata!.name!);
}

/** `kubemcp_gateway_session_routes_total` by outcome, summed over the MCPServer's pods (read through the pod proxy). */
async function routes(name: string, port: number): Promise<Record<string, number>> {
  const sum: Record<string, number> = {};
  for (const pod of await podNames(name)) {
    const path = port === 18080 ? '.kubemcp/metrics' : 'metrics';
    const text = await kubectl('get', '--raw', `/api/v1/namespaces/${ns}/pods/${pod}:${port}/proxy/${path}`);
    for (const m of text.matchAll(/^kubemcp_gateway_session_routes_total\{outcome="(\w+)"\} (\d+)/gm))
      sum[m[1]!] = (sum[m[1]!] ?? 0) + Number(m[2]);
  }
  return sum;
}

/**
 * The successful `tools/call` requests each pod's gateway passed (`kubemcp_gateway_requests_total`,
 * any era: for kube-mcp, whose `kubemcp serve` answers 2026-07-28 itself, passed through; for
 * everything, a 2025-era server, answered by the gateway's translation).
 */
async function gatewayCalls(name: string, port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const pod of await podNames(name)) {
    const path = port === 18080 ? '.kubemcp/metrics' : 'metrics';
    const text = await kubectl('get', '--raw', `/api/v1/namespaces/${ns}/pods/${pod}:${port}/proxy/${path}`);
    out[pod] = text
      .split('\n')
      .filter(
        (l) =>
          /^kubemcp_gateway_requests_total\{/.test(l) &&
          l.includes('method="tools/call"') &&
          l.includes('outcome="success"'),
      )
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
  }
  return out;
}

/** POSTs tools/list through the service proxy with session id `sid`: the HTTP status. */
async function postWithSession(name: string, sid: string): Promise<number> {
  const r = await kubeFetch(kc)(serviceProxyUrl(kc, ns, name, 'mcp').toString(), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sid,
      'mcp-protocol-version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });
  await r.text();
  return r.status;
}

describeReal('sessions survive replicas behind the apiserver service proxy (real node)', () => {
  let controller: Controller | undefined;
  const clients: Client[] = [];
  const connect = async (name: string) => {
    const c = await connectThroughServiceProxy(kc, ns, name);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    controller = await startRealNodeController(kc, ns, status, log);
    await applyMcp('kube-mcp', {
      image: KUBEMCP_IMAGE,
      transport: 'streamable-http',
      port: 3001,
      replicas: 3,
      resources: SMALL,
      auth: { mode: 'none' },
    });
    await applyMcp('everything', {
      image: EVERYTHING_IMAGE,
      transport: 'stdio',
      port: 3001,
      command: [EVERYTHING_BIN],
      args: ['stdio'],
      replicas: 3,
      resources: SMALL,
      auth: { mode: 'none' },
    });
  }, 40 * 60_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await controller?.stop();
    await deleteTestNamespace(kc, ns);
  });

  const cases = [
    {
      name: 'kube-mcp',
      metricsPort: 18080,
      call: async (c: Client, n: number) =>
        textOf(await c.callTool({ name: 'list-contexts', arguments: {} }, undefined, { timeout: 20_000 })) + n,
      expect: (t: string, n: number) => t.length > 1 && t.endsWith(String(n)),
    },
    {
      name: 'everything',
      metricsPort: 3001,
      call: async (c: Client, n: number) =>
        textOf(await c.callTool({ name: 'echo', arguments: { message: `call ${n}` } }, undefined, { timeout: 20_000 })),
      expect: (t: string, n: number) => t === `Echo: call ${n}`,
    },
  ];

  // 2026-07-28 clients (issue 18): stateless requests, answered on whichever pod each lands on: by
  // kube-mcp's own kubemcp serve (mcp-server/modern.ts), by everything's gateway (gateway/eras.ts)
  // on an upstream session of that pod's own.
  const modernCalls = {
    'kube-mcp': { tool: 'list-contexts', args: () => ({}), expect: (t: string) => t.length > 1 },
    everything: {
      tool: 'echo',
      args: (n: number) => ({ message: `modern ${n}` }),
      expect: (t: string, n: number) => t === `Echo: modern ${n}`,
    },
  } as const;
  for (const t of cases) {
    it(
      `${t.name}, 3 replicas: a pinned 2026-07-28 client through the service proxy, 30 calls spread over the pods, none failed`,
      async () => {
        await waitFor(
          `${t.name} Ready with 3 replicas`,
          async () => {
            const o = await getMcp(t.name);
            return o.status?.phase === 'Ready' && o.status.readyReplicas === 3 ? true : undefined;
          },
          READY_WAIT_MS,
          2000,
        );
        const c = new ClientV2(
          { name: 'modern-real-node', version: '1.0.0' },
          { versionNegotiation: { mode: { pin: '2026-07-28' } } },
        );
        await c.connect(
          new TransportV2(serviceProxyUrl(kc, ns, t.name, 'mcp'), { fetch: kubeFetch(kc, { idleTimeoutMs: 30_000 }) }),
        );
        try {
          expect(c.getProtocolEra()).toBe('modern');
          const m = modernCalls[t.name as keyof typeof modernCalls];
          const before = await gatewayCalls(t.name, t.metricsPort);
          const failures: string[] = [];
          for (let n = 0; n < 30; n++) {
            try {
              const text = textOf(await c.callTool({ name: m.tool, arguments: m.args(n) }, { timeout: 20_000 }));
              if (!m.expect(text, n)) failures.push(`call ${n}: ${text.slice(0, 120)}`);
            } catch (err) {
              failures.push(`call ${n}: ${(err as Error).message}`);
            }
          }
          expect(failures).toEqual([]);
          const after = await gatewayCalls(t.name, t.metricsPort);
          const served = Object.keys(after).filter((pod) => after[pod]! > (before[pod] ?? 0));
          process.stderr.write(`sessions ${t.name}: 2026-07-28 calls answered by ${served.join(', ')}\n`);
          // No session to keep: the proxy's per-request balancing spread them, and every pod answered its share.
          expect(served.length).toBeGreaterThan(1);
          expect(Object.keys(after).reduce((sum, pod) => sum + after[pod]! - (before[pod] ?? 0), 0)).toBe(30);
        } finally {
          await c.close();
        }
      },
      READY_WAIT_MS + 120_000,
    );
  }

  for (const t of cases) {
    it(
      `${t.name}, 3 replicas: Ready and Verified through the service proxy; 5 sessions x 10 calls, none failed`,
      async () => {
        const mcp = await waitFor(
          `${t.name} Ready with 3 replicas`,
          async () => {
            const o = await getMcp(t.name);
            return o.status?.phase === 'Ready' &&
              o.status.readyReplicas === 3 &&
              mcpCondition(o, 'Verified')?.status === 'True'
              ? o
              : undefined;
          },
          READY_WAIT_MS,
          2000,
        );
        expect(mcpCondition(mcp, 'Ready')?.status).toBe('True');
        const { seal } = await sealOf(t.name);
        const before = await routes(t.name, t.metricsPort);
        const owners = new Set<string>();
        const failures: string[] = [];
        for (let s = 0; s < 5; s++) {
          const c = await connect(t.name);
          const opened = seal.open(sidOf(c));
          expect(opened).toBeDefined();
          owners.add(opened!.owner.pod);
          for (let n = 0; n < 10; n++) {
            try {
              const text = await t.call(c, n);
              if (!t.expect(text, n)) failures.push(`session ${s} call ${n}: ${text.slice(0, 120)}`);
            } catch (err) {
              failures.push(`session ${s} call ${n}: ${(err as Error).message}`);
            }
          }
        }
        expect(failures).toEqual([]);
        const pods = await podNames(t.name);
        for (const o of owners) expect(pods).toContain(o);
        const after = await routes(t.name, t.metricsPort);
        process.stderr.write(`sessions ${t.name}: owners ${[...owners].join(', ')}; routes ${JSON.stringify(after)}\n`);
        // The proxy spread the requests: some landed on a pod that did not own their session.
        expect((after.forwarded ?? 0) - (before.forwarded ?? 0)).toBeGreaterThan(0);
      },
      READY_WAIT_MS + 300_000,
    );
  }

  it('a forged, truncated or other-MCPServer id gets 404 and is forwarded nowhere', async () => {
    const name = 'kube-mcp';
    const { seal } = await sealOf(name);
    const own = clients.map(sidOf).find((sid) => seal.open(sid));
    const everythings = clients.map(sidOf).find((sid) => !seal.open(sid));
    expect(own).toBeDefined();
    expect(everythings).toBeDefined();
    const before = await routes(name, 18080);
    const forged = [
      own!.slice(0, -6),
      `${own!.slice(0, 30)}${own![30] === 'A' ? 'B' : 'A'}${own!.slice(31)}`,
      everythings!, // another MCPServer's live session id
      randomBytes(24).toString('base64url'),
    ];
    for (const id of forged) expect(await postWithSession(name, id)).toBe(404);
    const after = await routes(name, 18080);
    expect((after.unknown ?? 0) - (before.unknown ?? 0)).toBe(forged.length);
    expect(after.forwarded ?? 0).toBe(before.forwarded ?? 0);
  });

  it('the owner pod deleted: its session gets 404, a new session works', async () => {
    const name = 'kube-mcp';
    const { seal } = await sealOf(name);
    const victim = clients.find((c) => seal.open(sidOf(c)))!;
    const owner = seal.open(sidOf(victim))!.owner.pod;
    await core.deleteNamespacedPod({ name: owner, namespace: ns });
    await waitFor(
      `pod ${owner} gone`,
      async () => ((await podNames(name)).includes(owner) ? undefined : true),
      120_000,
      1000,
    );
    expect(await postWithSession(name, sidOf(victim))).toBe(404);
    const fresh = await connect(name);
    const text = textOf(await fresh.callTool({ name: 'list-contexts', arguments: {} }));
    expect(text.length).toBeGreaterThan(1);
    expect(seal.open(sidOf(fresh))!.owner.pod).not.toBe(owner);
  }, 300_000);

  it('rotating the keys: new ids under the new key, a session of the old key keeps working', async () => {
    const name = 'everything';
    const old = await sealOf(name);
    const oldClient = clients.find((c) => old.seal.open(sidOf(c)))!;
    expect(oldClient).toBeDefined();
    await kubectl('-n', ns, 'annotate', 'mcps', name, `${ROTATE_SESSION_KEYS_ANNOTATION}=r1`);
    const rotated = await waitFor(
      'the Secret rotated',
      async () => {
        const k = await sealOf(name);
        return k.previous?.equals(old.current) && !k.current.equals(old.current) ? k : undefined;
      },
      60_000,
      1000,
    );
    // The kubelet refreshes a mounted Secret within about a minute: wait until every gateway has the new key.
    const fileOf = async (pod: string) =>
      (
        await kubectl(
          '-n',
          ns,
          'exec',
          pod,
          '-c',
          'mcp-bridge',
          '--',
          'node',
          '-e',
          "process.stdout.write(require('fs').readFileSync('/var/run/kubemcp/session-keys/current').toString('base64'))",
        )
      ).trim();
    await waitFor(
      'every gateway reads the new key',
      async () => {
        for (const pod of await podNames(name))
          if ((await fileOf(pod)) !== rotated.current.toString('base64')) return undefined;
        return true;
      },
      240_000,
      3000,
    );
    // The gateways re-read their key files every 10 s (gateway/sessions.ts).
    await new Promise((r) => setTimeout(r, 11_000));
    const fresh = await connect(name);
    const newOnly = new SessionSeal(new SessionKeys(undefined, [rotated.current]), `${ns}/${name}`);
    const oldOnly = new SessionSeal(new SessionKeys(undefined, [old.current]), `${ns}/${name}`);
    expect(newOnly.open(sidOf(fresh))).toBeDefined();
    expect(oldOnly.open(sidOf(fresh))).toBeUndefined();
    expect(oldOnly.open(sidOf(oldClient))).toBeDefined();
    const failures: string[] = [];
    for (let n = 0; n < 10; n++)
      for (const [label, c] of [
        ['new', fresh],
        ['old', oldClient],
      ] as const) {
        try {
          const t = textOf(await c.callTool({ name: 'echo', arguments: { message: `r${n}` } }));
          if (t !== `Echo: r${n}`) failures.push(`${label} ${n}: ${t}`);
        } catch (err) {
          failures.push(`${label} ${n}: ${(err as Error).message}`);
        }
      }
    expect(failures).toEqual([]);
  }, 420_000);
});
