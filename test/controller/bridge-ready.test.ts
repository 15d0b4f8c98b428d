/**
 * controller/bridge-ready.ts without a cluster: which pods count as "bridge running but not
 * ready", and how the bridge's `/ready` answer becomes the status problem, against a real HTTP
 * server on 127.0.0.1 standing in for the bridge (its body is what gateway/http.ts
 * sends). The real-node path is test/realnode/bridge.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as k8s from '@kubernetes/client-node';
import { BRIDGE_NOT_READY, bridgeProblem, readBridgeReason, unreadyBridgePods } from '../../controller/bridge-ready.js';

const pod = (
  name: string,
  bridge: Partial<k8s.V1ContainerStatus> | undefined,
  extra: Partial<k8s.V1PodStatus> = {},
  deleting = false,
): k8s.V1Pod => ({
  metadata: { name, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
  status: {
    phase: 'Running',
    podIP: '127.0.0.1',
    containerStatuses: [
      { name: 'mcp-server', ready: true, restartCount: 0, image: 'x', imageID: 'x', state: { running: {} } },
      ...(bridge
        ? [
            {
              name: 'mcp-bridge',
              ready: false,
              restartCount: 0,
              image: 'k',
              imageID: 'k',
              state: { running: {} },
              ...bridge,
            } as k8s.V1ContainerStatus,
          ]
        : []),
    ],
    ...extra,
  },
});

let server: http.Server;
let base: string;
let answer: { status: number; body: string } = {
  status: 503,
  body: '{"status":"not ready","reason":"the stdio process has not answered initialize within 30 s"}',
};
const seen: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(answer.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('unreadyBridgePods', () => {
  it('takes running pods whose mcp-bridge container runs unready; not ready ones, waiting ones, terminating or pending pods, or pods without a bridge', () => {
    const pods = [
      pod('a', {}),
      pod('b', { ready: true }),
      pod('c', { state: { waiting: { reason: 'ContainerCreating' } } }),
      pod('d', {}, {}, true),
      pod('e', {}, { phase: 'Pending' }),
      pod('f', undefined),
    ];
    expect(unreadyBridgePods(pods).map((p) => p.metadata!.name)).toEqual(['a']);
  });
});

describe('readBridgeReason and bridgeProblem', () => {
  it("reports the bridge's 503 reason as BridgeNotReady, naming the pod and container, and asks for a recheck", async () => {
    answer = {
      status: 503,
      body: '{"status":"not ready","reason":"the stdio process has not answered initialize within 30 s"}',
    };
    const r = await bridgeProblem('ns', 3001, [pod('b', { ready: true }), pod('a', {})], (_ns, p, port) => ({
      url: `${base}/${p.metadata!.name}/${port}/ready`,
    }));
    expect(r.recheck).toBe(true);
    expect(r.problem).toEqual({
      reason: BRIDGE_NOT_READY,
      message:
        "pod a: container mcp-bridge: not ready: the stdio process has not answered initialize within 30 s (the bridge's /ready)",
    });
    expect(seen.at(-1)).toBe('/a/3001/ready');
  });

  it('reports nothing (but rechecks) when /ready cannot be read or says something else; nothing to do without unready bridges', async () => {
    const t = () => ({ url: `${base}/ready` });
    answer = { status: 200, body: '{"status":"ready"}' };
    expect(await readBridgeReason(t())).toBeUndefined();
    answer = { status: 503, body: '<html>busy</html>' };
    expect(await readBridgeReason(t())).toBeUndefined();
    answer = { status: 403, body: '{"kind":"Status","message":"forbidden"}' };
    expect(await bridgeProblem('ns', 3001, [pod('a', {})], t)).toEqual({ recheck: true });
    // A closed port on loopback: connection refused, no problem reported.
    expect(await readBridgeReason({ url: 'http://127.0.0.1:1/ready' })).toBeUndefined();
    expect(await bridgeProblem('ns', 3001, [pod('b', { ready: true })], t)).toEqual({ recheck: false });
    expect(await bridgeProblem('ns', 3001, [pod('a', {})], () => undefined)).toEqual({ recheck: true });
  });
});
