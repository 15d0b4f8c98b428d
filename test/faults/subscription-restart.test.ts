/**
 * Faults, issue 9 item 6: a resource subscription of `kubemcp serve` survives a kube-apiserver
 * restart. Its watch fails, is re-opened with backoff (from its resourceVersion, relisting on
 * 410), the subscriber gets notifications/resources/updated after the recovery (so it re-reads),
 * and changes made afterwards notify again. Runs alone with the other fault suites (test/run.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { restartComponent } from '../../cluster/index.js';
import { createNamespace, kubeConfig, waitFor } from '../kube.js';
import { startHttpServer, type HttpServer, callTool } from '../mcp-server/helpers.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const lines: string[] = [];
let ns: string;
let s: HttpServer;

beforeAll(async () => {
  ns = await createNamespace(kc, 'faults-sub');
  s = await startHttpServer(
    {},
    {},
    {
      log: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }),
      hubOptions: { backoffBaseMs: 200, backoffMaxMs: 2000 },
    },
  );
});
afterAll(async () => {
  await s?.close();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('kube-apiserver restart under a subscription', () => {
  it('the watch is re-established, the subscriber is told to re-read, and later changes notify', async () => {
    const c = await s.connect();
    const uri = `k8s://namespace/${ns}/pods`;
    let seen = 0;
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      if (n.params.uri === uri) seen++;
    });
    await c.subscribeResource({ uri });
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'before' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    });
    await waitFor('notification before the restart', async () => seen > 0, 20_000, 100);

    const beforeRestart = seen;
    await restartComponent('kube-apiserver', { downMs: 3000, log: () => undefined });
    // The recovery itself notifies: the client re-reads what it may have missed.
    await waitFor('notification after recovery', async () => seen > beforeRestart, 60_000, 100);
    expect(lines.some((l) => /watch (re-open )?failed/.test(l))).toBe(true);
    expect(lines.some((l) => l.includes('watch re-established'))).toBe(true);

    const afterRecovery = seen;
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'after' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    });
    await waitFor('notification for a change after the restart', async () => seen > afterRecovery, 30_000, 100);
    // The session's tools work again too.
    const r = await callTool(c, 'list-resources', { kind: 'pods', namespace: ns });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent.rows.map((row: string[]) => row[0]).sort()).toEqual(['after', 'before']);
    expect(s.running.watches()).toBe(1);
  });
});
