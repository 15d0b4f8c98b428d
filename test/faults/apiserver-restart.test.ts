/**
 * Faults: the controller survives a kube-apiserver restart (its watches fail and are restarted
 * with backoff) and converges afterwards. Runs after all other suites, alone (test/run.ts),
 * because it takes the apiserver away from everyone for a few seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Controller } from '../../controller/controller.js';
import { restartComponent } from '../../cluster/index.js';
import { apply, createNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';

const kc = kubeConfig();
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const lines: string[] = [];
const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
let ns: string;
let controller: Controller;

const status = async (name: string) =>
  (
    (await custom.getNamespacedCustomObject({
      group: 'mcp.example.com',
      version: 'v1alpha1',
      plural: 'mcpservers',
      namespace: ns,
      name,
    })) as { status?: { phase?: string; readyReplicas?: number } }
  ).status;

beforeAll(async () => {
  await installCrd(kc);
  ns = await createNamespace(kc, 'faults');
  controller = new Controller({ kubeConfig: kc, log, namespace: ns, resyncPeriodMs: 3_600_000, verify: 'off' });
  await controller.start();
});
afterAll(async () => {
  await controller?.stop();
  await kc
    .makeApiClient(k8s.CoreV1Api)
    .deleteNamespace({ name: ns })
    .catch(() => undefined);
});

describe('kube-apiserver restart', () => {
  it('the controller keeps running, restarts its watches and converges on changes made after', async () => {
    await apply(objects, {
      apiVersion: 'mcp.example.com/v1alpha1',
      kind: 'MCPServer',
      metadata: { name: 'survivor', namespace: ns },
      spec: { image: 'img:1' },
    });
    await waitFor('survivor Ready', async () => (await status('survivor'))?.phase === 'Ready', 60_000);

    await restartComponent('kube-apiserver', { downMs: 3000, log: () => undefined });
    await waitFor(
      'a watch failure logged',
      async () => lines.some((l) => l.includes('restarting the informer')),
      30_000,
    );

    // Changes after the restart reach the children: the informers are watching again.
    await custom.patchNamespacedCustomObject(
      {
        group: 'mcp.example.com',
        version: 'v1alpha1',
        plural: 'mcpservers',
        namespace: ns,
        name: 'survivor',
        body: { spec: { replicas: 2 } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await apply(objects, {
      apiVersion: 'mcp.example.com/v1alpha1',
      kind: 'MCPServer',
      metadata: { name: 'newcomer', namespace: ns },
      spec: { image: 'img:1', transport: 'http' },
    });
    // The controller's part: the change reached the Deployment (its informers watch again) ...
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    await waitFor(
      'the survivor Deployment at 2 replicas',
      async () => (await apps.readNamespacedDeployment({ name: 'survivor', namespace: ns })).spec?.replicas === 2,
      90_000,
    );
    // ... and status follows the pods, once kwok (which restarts its own watches after the
    // apiserver came back) has made the second one ready: bounded, naming the last state.
    await waitFor(
      'survivor scaled to 2',
      async () => {
        const s = await status('survivor');
        if (s?.readyReplicas === 2) return true;
        throw new Error(`status readyReplicas ${s?.readyReplicas}, phase ${s?.phase}`);
      },
      180_000,
    );
    await waitFor('newcomer Ready', async () => (await status('newcomer'))?.phase === 'Ready', 90_000);
    expect(controller.hasSynced).toBe(true);
  }, 420_000);
});
