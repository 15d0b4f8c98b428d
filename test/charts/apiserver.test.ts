/**
 * The MCPServer API and every synthesized object against the real kube-apiserver of the local
 * control plane (cluster/): the CRD installs, the seeds' samples are accepted verbatim,
 * invalid objects are refused with messages naming the field, everything passes a server-side
 * dry-run apply, and a rendered Deployment becomes Available (kwok runs its pods).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { App } from 'cdk8s';
import { parse } from 'yaml';
import { CRD_NAME } from '../../charts/api/crd.js';
import { OperatorChart } from '../../charts/operator.js';
import { renderMCPServer, type KubeObject } from '../../charts/render.js';
import { loadSamples } from '../../charts/samples.js';
import type { MCPServerInput } from '../../charts/api/schema.js';
import { apiMessage, apply, createNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';
import type { MCPS } from '../shapes.js';

const kc = kubeConfig();
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
let ns: string;

const mcps = (name: string, spec: unknown) => ({
  apiVersion: 'mcp.example.com/v1alpha1',
  kind: 'MCPServer',
  metadata: { name },
  spec,
});

beforeAll(async () => {
  await installCrd(kc);
  ns = await createNamespace(kc, 'api');
});
afterAll(async () => {
  await kc
    .makeApiClient(k8s.CoreV1Api)
    .deleteNamespace({ name: ns })
    .catch(() => undefined);
});

describe('the MCPServer CRD on a real apiserver', () => {
  it('installs with the schema it was given (x-kubernetes-* kept) and serves mcps/ai/mcp names', async () => {
    const crd = await ext.readCustomResourceDefinition({ name: CRD_NAME });
    const spec = crd.spec.versions[0]!.schema!.openAPIV3Schema!.properties!.spec!;
    expect(spec.properties!.resources!.properties!.limits!.additionalProperties).toMatchObject({
      'x-kubernetes-int-or-string': true,
    });
    expect(crd.spec.names.shortNames).toEqual(['mcps']);
    expect(crd.status?.acceptedNames?.categories).toEqual(['ai', 'mcp']);
  });

  it('accepts every seed sample verbatim and applies the defaults', async () => {
    for (const s of loadSamples()) {
      const obj = parse(s.text) as { metadata: { namespace?: string } };
      // The samples name their namespace (default, mcp-system) or none; a dry run needs it to exist.
      obj.metadata.namespace ??= 'default';
      if (obj.metadata.namespace === 'mcp-system') {
        await apply(objects, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mcp-system' } });
      }
      const out = await apply<MCPS>(objects, obj, { dryRun: true });
      expect(out.spec.image).toBe((s.manifest as MCPServerInput).spec.image);
      expect(out.spec.transport).toBe('streamable-http');
    }
    const created = await apply<MCPS>(objects, {
      ...mcps('defaults', { image: 'x:1' }),
      metadata: { name: 'defaults', namespace: ns },
    });
    expect(created.spec).toEqual({ image: 'x:1', transport: 'streamable-http', port: 8080, replicas: 1, path: '/mcp' });
  });

  const invalid: Array<[string, string, unknown, RegExp]> = [
    ['bad transport', 'bad-transport', { image: 'x', transport: 'grpc' }, /spec\.transport: Unsupported value: "grpc"/],
    [
      'port 0',
      'port-zero',
      { image: 'x', port: 0 },
      /spec\.port: Invalid value: 0: spec\.port in body should be greater than or equal to 1/,
    ],
    [
      'port 70000',
      'port-big',
      { image: 'x', port: 70000 },
      /spec\.port: Invalid value: 70000: spec\.port in body should be less than or equal to 65535/,
    ],
    ['missing image', 'no-image', { transport: 'http' }, /spec\.image: Required value/],
    [
      'empty image',
      'empty-image',
      { image: '' },
      /spec\.image: Invalid value: "": spec\.image in body should be at least 1 chars long/,
    ],
    [
      'negative replicas',
      'neg-replicas',
      { image: 'x', replicas: -1 },
      /spec\.replicas: Invalid value: -1: spec\.replicas in body should be greater than or equal to 0/,
    ],
    [
      'image not a string',
      'image-number',
      { image: 42 },
      /spec\.image: Invalid value: "integer": spec\.image in body must be of type string/,
    ],
    [
      'port as string',
      'port-string',
      { image: 'x', port: '8080' },
      /spec\.port: Invalid value: "string": spec\.port in body must be of type integer/,
    ],
    [
      'replicas fractional',
      'replicas-frac',
      { image: 'x', replicas: 1.5 },
      /spec\.replicas: Invalid value: "float64": spec\.replicas in body must be of type int32/,
    ],
    [
      'config value not a string',
      'config-int',
      { image: 'x', config: { A: 1 } },
      /spec\.config\.A: Invalid value: "integer": spec\.config\.A in body must be of type string/,
    ],
    [
      'config not a map',
      'config-list',
      { image: 'x', config: ['a'] },
      /spec\.config: Invalid value: "array": spec\.config in body must be of type object/,
    ],
    [
      'unknown cpu quantity',
      'bad-cpu',
      { image: 'x', resources: { limits: { cpu: 'lots' } } },
      /spec\.resources\.limits\.cpu: Invalid value: "lots": spec\.resources\.limits\.cpu in body should match/,
    ],
    [
      'unknown memory quantity',
      'bad-mem',
      { image: 'x', resources: { requests: { memory: '1 GB' } } },
      /spec\.resources\.requests\.memory: Invalid value: "1 GB"/,
    ],
    [
      'env not a list',
      'env-map',
      { image: 'x', env: { A: 'b' } },
      /spec\.env: Invalid value: "object": spec\.env in body must be of type array/,
    ],
    ['env without name', 'env-noname', { image: 'x', env: [{ value: 'v' }] }, /spec\.env\[0\]\.name: Required value/],
    [
      'runAsUser not an integer',
      'sc-user',
      { image: 'x', securityContext: { runAsUser: 'root' } },
      /spec\.securityContext\.runAsUser: Invalid value: "string"/,
    ],
    [
      'seccompProfile without type',
      'sc-seccomp',
      { image: 'x', securityContext: { seccompProfile: {} } },
      /spec\.securityContext\.seccompProfile\.type: Required value/,
    ],
    ['spec missing', 'no-spec', undefined, /spec: Required value/],
    [
      'name not a DNS-1035 label',
      '1-starts-with-digit',
      { image: 'x' },
      /metadata\.name: Invalid value: .*DNS-1035 label/,
    ],
  ];
  it.each(invalid)('refuses %s, naming the field', async (_label, name, spec, message) => {
    const obj = { ...mcps(name, spec), metadata: { name, namespace: ns } };
    if (spec === undefined) delete (obj as { spec?: unknown }).spec;
    // A create (POST), as `kubectl create` sends: the apiserver answers 422 with field causes.
    const err = await objects.create(obj as k8s.KubernetesObject).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect((err as { code?: number }).code).toBe(422);
    expect(apiMessage(err)).toMatch(message);
    await expect(
      custom.getNamespacedCustomObject({
        group: 'mcp.example.com',
        version: 'v1alpha1',
        namespace: ns,
        plural: 'mcpservers',
        name,
      }),
    ).rejects.toMatchObject({ code: 404 });
  });
  it('has at least 15 invalid cases', () => expect(invalid.length).toBeGreaterThanOrEqual(15));
  it('server-side apply refuses a wrong type too, naming the field (the apiserver answers 500 for an untypeable apply patch)', async () => {
    const err = await apply(objects, {
      ...mcps('ssa-wrong-type', { image: 42 }),
      metadata: { name: 'ssa-wrong-type', namespace: ns },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(apiMessage(err)).toMatch(/\.spec\.image: expected string/);
  });
  it('server-side apply refuses a value out of bounds with 422 naming the field', async () => {
    const err = await apply(objects, {
      ...mcps('ssa-port', { image: 'x', port: 0 }),
      metadata: { name: 'ssa-port', namespace: ns },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code?: number }).code).toBe(422);
    expect(apiMessage(err)).toMatch(/spec\.port: Invalid value: 0/);
  });
});

describe('every synthesized object passes a server-side dry-run apply', () => {
  it('the operator chart', async () => {
    const operator = new OperatorChart(new App({ outdir: '/dev/null' }), 'operator').toJson() as KubeObject[];
    // The namespace must exist for the namespaced objects' dry run; the CRD is already installed.
    await apply(
      objects,
      operator.find((o) => o.kind === 'Namespace')!,
    );
    for (const o of operator) {
      const out = await apply<KubeObject>(objects, o, { dryRun: true });
      expect(`${out.kind}/${out.metadata.name}`).toBe(`${o.kind}/${o.metadata.name}`);
    }
  });
  it('the children of every seed sample, and of each transport', async () => {
    const manifests = [
      ...loadSamples().map((s) => s.manifest),
      mcps('stdio-one', { image: 'x', transport: 'stdio', config: { A: 'b' } }),
      mcps('http-one', {
        image: 'x',
        transport: 'http',
        env: [{ name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } }],
      }),
    ];
    let count = 0;
    for (const m of manifests) {
      for (const o of renderMCPServer(m, ns)) {
        const out = await apply<KubeObject>(objects, o, { dryRun: true });
        // Namespaced children land in ns; the gateway's ClusterRoleBinding is cluster-scoped.
        expect(out.metadata.namespace).toBe(o.kind === 'ClusterRoleBinding' ? undefined : ns);
        count++;
      }
    }
    expect(count).toBeGreaterThanOrEqual(15);
  });
});

describe('a rendered Deployment runs on the control plane', () => {
  it('the seed basic sample becomes Available (kwok makes its pod Ready)', async () => {
    const basic = loadSamples().find((s) => s.id === 'seed001-basic')!;
    for (const o of renderMCPServer(basic.manifest, ns)) await apply(objects, o);
    const dep = await waitFor(
      'Deployment basic-mcpserver Available',
      async () => {
        const d = await apps.readNamespacedDeployment({ name: 'basic-mcpserver', namespace: ns });
        return (
          d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') &&
          d.status.readyReplicas === 1 &&
          d
        );
      },
      90_000,
      500,
    );
    expect(dep.spec!.template.spec!.containers[0]!.image).toBe('mcp-k8s-server:latest');
    const pods = await kc
      .makeApiClient(k8s.CoreV1Api)
      .listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/instance=basic-mcpserver' });
    expect(pods.items).toHaveLength(1);
    expect(pods.items[0]!.status!.phase).toBe('Running');
  });
});
