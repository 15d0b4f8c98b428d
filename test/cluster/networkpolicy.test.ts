/**
 * NetworkPolicy is enforced on the local cluster's real node (cluster/components/
 * kube-network-policies.ts): a busybox server pod with two ports answers a client pod of its own
 * namespace and one of another namespace on both; a NetworkPolicy admitting ingress on one port
 * only drops the other (for both clients) while the admitted port still answers; deleting the
 * policy opens it again. The enforcement lives in the node's network namespace only.
 *
 * Skipped, with the reason printed, only where the machine cannot run the real node.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, NetworkingV1Api, type V1Pod } from '@kubernetes/client-node';
import {
  BUSYBOX_IMAGE,
  CONTAINERD_SOCKET,
  KUBECONFIG_PATH,
  ensureBusyboxImage,
  poll,
  readState,
  realNodeNamespace,
  realNodeStatus,
} from '../../cluster/index.js';

const execFileAsync = promisify(execFile);
const status = realNodeStatus();
const skip = !status.available && status.reason?.kind === 'unsupported';
if (skip) process.stderr.write(`SKIPPED real-node NetworkPolicy tests: ${status.reason?.message}\n`);
const describeReal = skip ? describe.skip : describe;

const kc = new KubeConfig();
kc.loadFromFile(process.env.KUBECONFIG ?? KUBECONFIG_PATH);
const core = kc.makeApiClient(CoreV1Api);
const net = kc.makeApiClient(NetworkingV1Api);
const suffix = randomBytes(3).toString('hex');
const ns = `netpol-${suffix}`;
const otherNs = `netpol-other-${suffix}`;

/** Runs the cluster's kubectl with a 60 s bound; returns stdout. */
async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(
    path.join(readState()!.binDir, 'kubectl'),
    ['--kubeconfig', KUBECONFIG_PATH, ...args],
    { timeout: 60_000 },
  );
  return stdout;
}

const securityContext = {
  runAsNonRoot: true,
  runAsUser: 65534,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

/** A busybox pod running `script`; `Never` pull: the image was imported into containerd. */
function busyboxPod(name: string, script: string, labels: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name, labels },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: BUSYBOX_IMAGE,
          imagePullPolicy: 'Never',
          command: ['/bin/busybox', 'sh', '-c', script],
          securityContext,
          volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
        },
      ],
      volumes: [{ name: 'tmp', emptyDir: {} }],
    },
  };
}

async function readyPod(namespace: string, name: string): Promise<V1Pod> {
  return poll(
    `pod ${namespace}/${name} Ready`,
    async () => {
      const p = await core.readNamespacedPod({ name, namespace });
      return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

/**
 * `ok` when `client` (namespace/name) gets an HTTP answer from `ip:port` within 3 s, else
 * `blocked`. busybox-static's wget crashes in these pods (static glibc's NSS, see
 * realnode.test.ts), so the request is written with its nc.
 */
async function reach(client: [string, string], ip: string, port: number): Promise<'ok' | 'blocked'> {
  const out = await kubectl(
    'exec',
    '-n',
    client[0],
    client[1],
    '--',
    '/bin/busybox',
    'sh',
    '-c',
    `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 3 ${ip} ${port} 2>/dev/null || true`,
  );
  return /^HTTP\/1\.[01] 200/.test(out) ? 'ok' : 'blocked';
}

describeReal('NetworkPolicy on the real node (kube-network-policies)', () => {
  let ip = '';
  const clients: Array<[string, string]> = [
    [ns, 'client'],
    [otherNs, 'client'],
  ];
  const both = async (port: number) => Promise.all(clients.map((c) => reach(c, ip, port)));

  beforeAll(async () => {
    if (!status.available) throw new Error(`the real node is not available: ${status.reason?.message}`);
    const state = readState()!;
    await ensureBusyboxImage(path.join(state.realNode!.nodeBinDir!, 'ctr'), CONTAINERD_SOCKET, os.tmpdir());
    for (const n of [ns, otherNs]) await core.createNamespace({ body: realNodeNamespace(n) });
    await core.createNamespacedPod({
      namespace: ns,
      body: busyboxPod(
        'server',
        'mkdir -p /tmp/a /tmp/b && echo a > /tmp/a/index.html && echo b > /tmp/b/index.html && ' +
          '/bin/busybox httpd -p 8080 -h /tmp/a && exec /bin/busybox httpd -f -p 8081 -h /tmp/b',
        { app: 'server' },
      ),
    });
    for (const n of [ns, otherNs])
      await core.createNamespacedPod({ namespace: n, body: busyboxPod('client', 'exec /bin/busybox sleep 3600') });
    ip = (await readyPod(ns, 'server')).status!.podIP!;
    for (const n of [ns, otherNs]) await readyPod(n, 'client');
  }, 180_000);

  afterAll(async () => {
    for (const n of [ns, otherNs]) await core.deleteNamespace({ name: n }).catch(() => undefined);
  });

  it('without a policy both ports answer both clients', async () => {
    expect(await both(8080)).toEqual(['ok', 'ok']);
    expect(await both(8081)).toEqual(['ok', 'ok']);
  }, 60_000);

  it('a policy admitting ingress on 8080 only: 8081 is dropped for both clients, 8080 still answers; deleted, 8081 answers again', async () => {
    await net.createNamespacedNetworkPolicy({
      namespace: ns,
      body: {
        metadata: { name: 'only-8080' },
        spec: {
          podSelector: { matchLabels: { app: 'server' } },
          policyTypes: ['Ingress'],
          ingress: [{ ports: [{ port: 8080, protocol: 'TCP' }] }],
        },
      },
    });
    // The agent applies a policy within moments of its watch event (bounded wait).
    await poll(
      '8081 dropped for both clients',
      async () => ((await both(8081)).every((r) => r === 'blocked') ? true : undefined),
      {
        timeoutMs: 30_000,
        intervalMs: 1000,
      },
    );
    expect(await both(8080)).toEqual(['ok', 'ok']);
    await net.deleteNamespacedNetworkPolicy({ name: 'only-8080', namespace: ns });
    await poll('8081 open again', async () => ((await both(8081)).every((r) => r === 'ok') ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 1000,
    });
  }, 120_000);

  it("the rules live in the node's network namespace, not in the host's", async () => {
    const state = readState()!;
    const netns = state.realNode!.network!.netns;
    const tables = async (argv: string[]) => (await execFileAsync(argv[0]!, argv.slice(1), { timeout: 10_000 })).stdout;
    expect(await tables(['ip', 'netns', 'exec', netns, 'nft', 'list', 'tables'])).toContain(
      'table inet kube-network-policies',
    );
    expect(await tables(['nft', 'list', 'tables'])).not.toContain('kube-network-policies');
  });
});
