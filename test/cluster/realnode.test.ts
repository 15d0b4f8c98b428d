/**
 * The real node of the local cluster (cluster/realnode/), against the running cluster of
 * test/globalSetup.ts: the node registers and becomes Ready; pods are placed by namespace (kwok's
 * node by default, the real node from a realNodeNamespace); a busybox pod really runs there;
 * `kubectl logs` and `kubectl exec` work through the apiserver (which reaches the kubelet);
 * a Service's cluster DNS name resolves in a pod (CoreDNS); a pod's HTTP server answers through a
 * ClusterIP Service (kube-proxy) and through the apiserver's service proxy; pods reach the
 * apiserver through the `kubernetes` Service.
 *
 * Skipped, with the reason printed, only where the machine lacks what the real node needs
 * (docs/local-cluster.md); a real node that should have started but failed makes these
 * tests fail with the recorded reason.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import {
  BUSYBOX_IMAGE,
  CONTAINERD_SOCKET,
  FIRST_SERVICE_IP,
  KUBECONFIG_PATH,
  NODE_NAME,
  REAL_NODE_NAME,
  ensureBusyboxImage,
  poll,
  readState,
  realNodeNamespace,
  realNodeStatus,
} from '../../cluster/index.js';

const execFileAsync = promisify(execFile);
const status = realNodeStatus();
const skip = !status.available && status.reason?.kind === 'unsupported';
if (skip) process.stderr.write(`SKIPPED real-node tests: ${status.reason?.message}\n`);
const describeReal = skip ? describe.skip : describe;

const kc = new KubeConfig();
kc.loadFromFile(process.env.KUBECONFIG ?? KUBECONFIG_PATH);
const core = kc.makeApiClient(CoreV1Api);
const suffix = randomBytes(3).toString('hex');
const realNs = `realnode-${suffix}`;
const kwokNs = `kwoknode-${suffix}`;

/** Runs the cluster's kubectl (built by cluster/build.sh) with a 60 s bound; returns stdout. */
async function kubectl(...args: string[]): Promise<string> {
  const state = readState()!;
  const { stdout } = await execFileAsync(
    path.join(state.binDir, 'kubectl'),
    ['--kubeconfig', KUBECONFIG_PATH, ...args],
    { timeout: 60_000 },
  );
  return stdout;
}

/** Polls `check` every 500 ms until it returns a defined value (cluster/process.ts `poll`: bounded in attempts and time). */
const eventually = <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> =>
  poll(what, check, { timeoutMs, intervalMs: 500 });

const securityContext = {
  runAsNonRoot: true,
  runAsUser: 65534,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

/** A busybox pod running `script` with sh; `Never` pull: the image was imported into containerd. */
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

async function runningPod(namespace: string, name: string): Promise<V1Pod> {
  return eventually(`pod ${namespace}/${name} Running and Ready`, 90_000, async () => {
    const p = await core.readNamespacedPod({ name, namespace });
    if (p.status?.phase === 'Failed') throw new Error(`pod failed: ${JSON.stringify(p.status.containerStatuses)}`);
    return p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
      ? p
      : undefined;
  });
}

describeReal('real node', () => {
  let serverPod: V1Pod;
  let clusterIP = '';

  beforeAll(async () => {
    if (!status.available) throw new Error(`the real node is not available: ${status.reason?.message}`);
    const state = readState()!;
    await ensureBusyboxImage(path.join(state.realNode!.nodeBinDir!, 'ctr'), CONTAINERD_SOCKET, os.tmpdir());
    await core.createNamespace({ body: realNodeNamespace(realNs) });
    await core.createNamespace({ body: { metadata: { name: kwokNs } } });
    for (const namespace of [realNs, kwokNs]) {
      await eventually(`ServiceAccount default in ${namespace}`, 30_000, async () =>
        (await core.readNamespacedServiceAccount({ name: 'default', namespace })) ? true : undefined,
      );
    }
    await core.createNamespacedPod({
      namespace: realNs,
      body: busyboxPod(
        'web',
        'mkdir -p /tmp/www && echo hello-from-the-real-node > /tmp/www/index.html && echo web started && exec /bin/busybox httpd -f -v -p 8080 -h /tmp/www',
        { app: 'web' },
      ),
    });
    await core.createNamespacedPod({
      namespace: realNs,
      body: busyboxPod('client', 'echo client started; exec /bin/busybox sleep 3600'),
    });
    const svc = await core.createNamespacedService({
      namespace: realNs,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
    });
    clusterIP = svc.spec!.clusterIP!;
    serverPod = await runningPod(realNs, 'web');
    await runningPod(realNs, 'client');
  }, 180_000);

  afterAll(async () => {
    for (const name of [realNs, kwokNs]) await core.deleteNamespace({ name }).catch(() => undefined);
  });

  test(`node ${REAL_NODE_NAME} is Ready, labelled type=real, with its veth address as InternalIP`, async () => {
    const node = await core.readNode({ name: REAL_NODE_NAME });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.metadata?.labels?.type).toBe('real');
    const nodeIp = readState()!.realNode!.network!.nodeIp;
    expect(node.status?.addresses).toEqual(expect.arrayContaining([{ type: 'InternalIP', address: nodeIp }]));
    expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/v?2\./);
    expect(node.status?.nodeInfo?.kubeletVersion).toBe('v1.36.3');
  });

  test('pods go to the real node only from a realNodeNamespace, else to kwok', async () => {
    expect(serverPod.spec?.nodeName).toBe(REAL_NODE_NAME);
    expect(serverPod.spec?.nodeSelector).toEqual({ type: 'real' });
    expect(
      serverPod.status?.podIP?.startsWith(
        readState()!.realNode!.network!.podCidr.split('.').slice(0, 3).join('.') + '.',
      ),
    ).toBe(true);
    await core.createNamespacedPod({ namespace: kwokNs, body: busyboxPod('elsewhere', 'sleep 1') });
    const pod = await eventually('pod in a plain namespace to be scheduled', 60_000, async () => {
      const p = await core.readNamespacedPod({ name: 'elsewhere', namespace: kwokNs });
      return p.spec?.nodeName ? p : undefined;
    });
    expect(pod.spec?.nodeSelector).toEqual({ type: 'kwok' });
    expect(pod.spec?.nodeName).toBe(NODE_NAME);
  });

  test('kubectl logs and kubectl exec reach the container through the apiserver and the kubelet', async () => {
    expect(await kubectl('-n', realNs, 'logs', 'web')).toContain('web started');
    expect((await kubectl('-n', realNs, 'exec', 'client', '--', '/bin/busybox', 'echo', 'exec works')).trim()).toBe(
      'exec works',
    );
    expect(await kubectl('-n', realNs, 'exec', 'client', '--', '/bin/busybox', 'id', '-u')).toContain('65534');
  });

  test("a Service's cluster DNS name resolves in a pod (CoreDNS behind kube-dns)", async () => {
    const out = await kubectl(
      '-n',
      realNs,
      'exec',
      'client',
      '--',
      '/bin/busybox',
      'nslookup',
      `web.${realNs}.svc.cluster.local`,
    );
    expect(out).toContain(clusterIP);
  });

  // busybox-static's wget crashes here (exit 139: static glibc's NSS), so HTTP requests are written
  // with its nc; names are resolved with its own nslookup above.
  /** Sends `GET <path> HTTP/1.0` to ip:port from the client pod with nc; returns the raw response. */
  const httpFromPod = (ip: string, port: number, reqPath: string): Promise<string> =>
    kubectl(
      '-n',
      realNs,
      'exec',
      'client',
      '--',
      '/bin/busybox',
      'sh',
      '-c',
      `printf 'GET ${reqPath} HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 10 ${ip} ${port}`,
    );

  test("a pod's HTTP server answers through its ClusterIP Service (kube-proxy)", async () => {
    const out = await httpFromPod(clusterIP, 80, '/');
    expect(out).toMatch(/^HTTP\/1\.[01] 200/);
    expect(out).toContain('hello-from-the-real-node');
  });

  test("a pod's HTTP server answers through the apiserver's service proxy and pod proxy", async () => {
    expect((await kubectl('get', '--raw', `/api/v1/namespaces/${realNs}/services/web:http/proxy/`)).trim()).toBe(
      'hello-from-the-real-node',
    );
    expect((await kubectl('get', '--raw', `/api/v1/namespaces/${realNs}/pods/web:8080/proxy/`)).trim()).toBe(
      'hello-from-the-real-node',
    );
  });

  test('a pod reaches the apiserver through the kubernetes Service', async () => {
    // Plain HTTP to the apiserver's TLS port: Go's TLS server answers it with a fixed 400 text,
    // which only the apiserver (via kube-proxy and the host's DNAT) can have sent.
    const out = await httpFromPod(FIRST_SERVICE_IP, 443, '/version');
    expect(out).toContain('Client sent an HTTP request to an HTTPS server');
  });
});
