/**
 * Tests of the local control plane against the real apiserver started (or reused) by
 * test/globalSetup.ts: the fake node, a Deployment driven by the real controllers, scheduler and
 * kwok, pod logs served by kwok, the server version, and garbage collection. No kubectl needed.
 */
import { randomBytes } from 'node:crypto';
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  VersionApi,
  type V1Deployment,
} from '@kubernetes/client-node';
import { KUBECONFIG_PATH, NODE_NAME, poll } from '../../cluster/index.js';

/** Polls `check` until it returns a defined value (cluster/process.ts `poll`: bounded in attempts and time). */
const eventually = <T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  intervalMs = 250,
): Promise<T> => poll(what, check, { timeoutMs, intervalMs });

/** Value of a plain or decimal-SI-suffixed quantity ("32", "1k", "2M"); NaN for anything else. */
function decimalQuantity(q: string | undefined): number {
  const m = /^(\d+)([kMG]?)$/.exec(q ?? '');
  if (!m) return NaN;
  return Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 } as Record<string, number>)[m[2] ?? '']!;
}

const kc = new KubeConfig();
kc.loadFromFile(process.env.KUBECONFIG ?? KUBECONFIG_PATH);
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const namespace = `cp-test-${randomBytes(3).toString('hex')}`;
const labels = { app: 'cp-test' };

beforeAll(async () => {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  // Pods need the namespace's default ServiceAccount (created by the serviceaccount controller).
  await eventually('ServiceAccount default in the test namespace', 30_000, async () =>
    (await core.readNamespacedServiceAccount({ name: 'default', namespace })) ? true : undefined,
  );
});

afterAll(async () => {
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
});

describe('local control plane', () => {
  test('uses the kubeconfig exported by globalSetup', () => {
    expect(process.env.KUBECONFIG).toBe(KUBECONFIG_PATH);
    expect(kc.getCurrentContext()).toBe('kubemcp');
  });

  test('reports server version v1.36.3', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe('v1.36.3');
    expect(version.major).toBe('1');
    expect(version.minor).toBe('36');
  });

  test(`node ${NODE_NAME} is Ready, labelled and sized`, async () => {
    const node = await core.readNode({ name: NODE_NAME });
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.status).toBe('True');
    expect(node.metadata?.labels?.type).toBe('kwok');
    expect(node.metadata?.annotations?.['kwok.x-k8s.io/node']).toBe('fake');
    const allocatable = node.status?.allocatable ?? {};
    // Sized for scale tests: 10,000 pods at streamable-http's default requests (200m, 256Mi).
    expect(decimalQuantity(allocatable.cpu)).toBe(2000);
    expect(allocatable.memory).toBe('4Ti');
    expect(decimalQuantity(allocatable.pods)).toBe(10_000); // the apiserver canonicalises it to "10k"
    expect(node.status?.addresses).toEqual(
      expect.arrayContaining([
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: NODE_NAME },
      ]),
    );
    // kwok renews the node's Lease; without it the node-lifecycle controller marks it Unknown after ~50 s.
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: NODE_NAME, namespace: 'kube-node-lease' });
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    expect(Date.now() - renewed).toBeLessThan(60_000);
  });

  test('a Deployment becomes Available with 2 ready pods, serves logs, and is garbage-collected', async () => {
    const deployment: V1Deployment = {
      metadata: { name: 'web', labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'web', image: 'registry.example/any:1' }] },
        },
      },
    };
    await apps.createNamespacedDeployment({ namespace, body: deployment });

    const available = await eventually('Deployment web to be Available with 2 ready replicas', 60_000, async () => {
      const d = await apps.readNamespacedDeployment({ name: 'web', namespace });
      const cond = d.status?.conditions?.find((c) => c.type === 'Available');
      return cond?.status === 'True' && d.status?.readyReplicas === 2 && d.status?.availableReplicas === 2
        ? d
        : undefined;
    });
    expect(available.status?.replicas).toBe(2);

    const pods = (await core.listNamespacedPod({ namespace, labelSelector: 'app=cp-test' })).items;
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toBe(NODE_NAME);
      expect(pod.status?.phase).toBe('Running');
      expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(pod.status?.podIP).toMatch(/^10\.244\./);
    }

    // Pod logs: apiserver -> kwok's kubelet API (TLS verified against the cluster CA).
    const firstPod = pods[0]?.metadata?.name ?? '';
    const podLog = await core.readNamespacedPodLog({ name: firstPod, namespace, container: 'web' });
    expect(podLog).toContain('kwok: this container is simulated');

    const replicaSets = (await apps.listNamespacedReplicaSet({ namespace, labelSelector: 'app=cp-test' })).items;
    expect(replicaSets).toHaveLength(1);
    expect(replicaSets[0]?.metadata?.ownerReferences?.[0]?.kind).toBe('Deployment');

    await apps.deleteNamespacedDeployment({ name: 'web', namespace, propagationPolicy: 'Background' });
    await eventually('ReplicaSet and pods of Deployment web to be garbage-collected', 60_000, async () => {
      const rs = await apps.listNamespacedReplicaSet({ namespace, labelSelector: 'app=cp-test' });
      const po = await core.listNamespacedPod({ namespace, labelSelector: 'app=cp-test' });
      return rs.items.length === 0 && po.items.length === 0 ? true : undefined;
    });
    await expect(apps.readNamespacedDeployment({ name: 'web', namespace })).rejects.toMatchObject({ code: 404 }); // ApiException
  });
});
