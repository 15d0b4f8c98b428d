/**
 * Bridged stdio MCPServers against the real control plane (kube-apiserver, controller-manager,
 * scheduler, kwok): the controller applies exactly what render produces for a bridged server
 * (init container, launcher, sidecar, Service), reports status.endpoint and url for it, verifies
 * it with an MCP handshake through a real bridge, turns a plain stdio server into a bridged one
 * and back (Service created and pruned, endpoint set and cleared, the condition saying why a
 * plain stdio server cannot be reached); the apiserver's PodSecurity admission admits the bridged
 * pod in a `restricted` namespace; the CRD refuses an empty command.
 *
 * kwok runs no containers, so the handshake cannot reach a pod: the controller's verifyTarget
 * points it at a bridge on 127.0.0.1 in front of server-everything, wired as in the pod
 * (test/mcp-server/bridge-harness.ts), standing in for the pod behind the Service.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { renderMCPServer, type KubeObject } from '../../charts/render.js';
import { Controller } from '../../controller/controller.js';
import { firstDifference } from '../../controller/drift.js';
import { apiMessage, apply, createNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';
import { byKind } from '../shapes.js';
import { exists, mcpsApi } from './mcps.js';
import { EVERYTHING, startBridged, until, type Bridged } from '../mcp-server/bridge-harness.js';

const kc = kubeConfig();
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const log = pino({ level: process.env.KUBEMCP_TEST_LOG ?? 'silent' });
const BRIDGE_IMAGE = 'localhost/kubemcp/kubemcp:test';

const { mergePatch, waitPhase } = mcpsApi(kc);

let ns: string;
let controller: Controller;
let bridged: Bridged;
const mk = (name: string, spec: object) => ({
  apiVersion: 'mcp.example.com/v1alpha1',
  kind: 'MCPServer',
  metadata: { name, namespace: ns },
  spec,
});
const SPEC = {
  image: 'localhost/kubemcp/everything:test',
  transport: 'stdio',
  port: 3001,
  command: ['node', '/app/index.js'],
  args: ['stdio'],
};

beforeAll(async () => {
  await installCrd(kc);
  bridged = await startBridged({ argv: EVERYTHING });
  await until(async () => (await bridged.ready()).status === 200, 'the local bridge to be ready', 60_000);
  ns = await createNamespace(kc, 'bridge');
  controller = new Controller({
    kubeConfig: kc,
    log,
    namespace: ns,
    workers: 2,
    resyncPeriodMs: 3_600_000,
    bridgeImage: BRIDGE_IMAGE,
    verify: 'auto',
    verifyIntervalMs: 3_600_000,
    verifyTimeoutMs: 15_000,
    verifyTarget: () => ({ url: bridged.url }),
  });
  await controller.start();
}, 120_000);
afterAll(async () => {
  await controller?.stop();
  await bridged?.close();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('a bridged stdio MCPServer', () => {
  it('becomes Ready and Verified through the bridge, with the endpoint and url of the bridge port; the children are exactly what render produces with the bridge image', async () => {
    await apply(objects, mk('everything', SPEC));
    const o = await waitPhase(ns, 'everything', 'Ready', (x) => x.status.readyReplicas === 1);
    expect(o.status.endpoint).toBe(`http://everything.${ns}.svc.cluster.local:3001`);
    expect(o.status.url).toBe(`http://everything.${ns}.svc.cluster.local:3001/mcp`);
    expect(o.status.conditions.find((c) => c.type === 'Verified')).toMatchObject({ status: 'True' });
    expect(o.status.serverInfo).toMatchObject({ name: 'mcp-servers/everything' });
    expect(o.status.tools.count).toBeGreaterThan(5);
    expect(o.status.tools.names).toContain('echo');
    expect(o.status.conditions.find((c) => c.type === 'ServiceReady')).toMatchObject({
      status: 'True',
      reason: 'ServiceReady',
    });
    expect(o.status.conditions.find((c) => c.type === 'Ready')?.message).toContain('through the in-pod bridge');

    const rendered = renderMCPServer(mk('everything', SPEC), ns, { bridgeImage: BRIDGE_IMAGE });
    // Plus the gateway's cluster-scoped ClusterRoleBinding (mode kubernetes), read without a namespace.
    expect(rendered.map((r) => r.kind)).toEqual([
      'Service',
      'Deployment',
      'NetworkPolicy',
      'Service',
      'ClusterRoleBinding',
    ]);
    for (const want of rendered) {
      const live = (await objects.read({
        apiVersion: want.apiVersion,
        kind: want.kind,
        metadata: { name: want.metadata.name, ...(want.metadata.namespace ? { namespace: ns } : {}) },
      })) as unknown as KubeObject;
      expect(firstDifference(JSON.parse(JSON.stringify(want)), JSON.parse(JSON.stringify(live)))).toBeUndefined();
    }
    const pod = (await apps.readNamespacedDeployment({ name: 'everything', namespace: ns })).spec!.template.spec!;
    expect(pod.initContainers!.map((c) => [c.name, c.image])).toEqual([['bridge-init', BRIDGE_IMAGE]]);
    expect(pod.containers.map((c) => [c.name, c.image])).toEqual([
      ['mcp-server', SPEC.image],
      ['mcp-bridge', BRIDGE_IMAGE],
    ]);
    // kwok scheduled and "ran" the pod: its init container and both containers are reported.
    const pods = await core.listNamespacedPod({
      namespace: ns,
      labelSelector: 'app.kubernetes.io/instance=everything',
    });
    expect(pods.items.length).toBeGreaterThanOrEqual(1);
    expect(pods.items[0]!.spec!.containers.map((c) => c.name)).toEqual(['mcp-server', 'mcp-bridge']);
  });

  it('removing command makes it a plain stdio server: Service pruned, endpoint cleared, conditions say why it cannot be reached; adding it back bridges again', async () => {
    await mergePatch(ns, 'everything', { spec: { command: null, args: null } });
    const plain = await waitPhase(ns, 'everything', 'Ready', (x) => x.status.endpoint === undefined);
    await waitFor(
      'Service pruned',
      async () => !(await exists(core.readNamespacedService({ name: 'everything', namespace: ns }))),
    );
    expect(plain.status.conditions.find((c) => c.type === 'ServiceReady')).toMatchObject({
      reason: 'NotRequired',
      message: expect.stringContaining('without spec.command'),
    });
    expect(plain.status.conditions.find((c) => c.type === 'Ready')?.message).toMatch(/not reachable.*set spec.command/);
    expect(plain.status.conditions.find((c) => c.type === 'Verified')).toMatchObject({
      status: 'Unknown',
      reason: 'NotApplicable',
    });
    expect(plain.status.url).toBeUndefined();
    const dep = await waitFor('Deployment without the bridge', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'everything', namespace: ns });
      return d.spec!.template.spec!.containers.length === 1 && d;
    });
    expect(dep.spec!.template.spec!.initContainers ?? []).toEqual([]);

    await mergePatch(ns, 'everything', { spec: { command: SPEC.command, args: SPEC.args } });
    const again = await waitPhase(
      ns,
      'everything',
      'Ready',
      (x) => !!x.status.endpoint && x.status.conditions.some((c) => c.type === 'Verified' && c.status === 'True'),
    );
    expect(again.status.endpoint).toBe(`http://everything.${ns}.svc.cluster.local:3001`);
    expect(await exists(core.readNamespacedService({ name: 'everything', namespace: ns }))).toBe(true);
  });
});

describe('admission', () => {
  let restricted: string;
  beforeAll(async () => {
    restricted = await createNamespace(kc, 'bridge-restricted');
    await core.patchNamespace(
      {
        name: restricted,
        body: {
          metadata: {
            labels: {
              'pod-security.kubernetes.io/enforce': 'restricted',
              'pod-security.kubernetes.io/enforce-version': 'latest',
            },
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  });
  afterAll(async () => {
    await core.deleteNamespace({ name: restricted }).catch(() => undefined);
  });

  const podOf = (spec: object, name: string): k8s.V1Pod => {
    const dep = byKind(renderMCPServer(mk(name, spec), restricted)).Deployment;
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: restricted, labels: dep.spec.template.metadata.labels },
      spec: dep.spec.template.spec,
    };
  };

  it('the restricted Pod Security Standard admits the bridged pod (init container and sidecar included)', async () => {
    const created = await core.createNamespacedPod({
      namespace: restricted,
      body: podOf(SPEC, 'bridged'),
      dryRun: 'All',
    });
    expect(created.spec!.initContainers!.map((c) => c.name)).toEqual(['bridge-init']);
    expect(created.spec!.containers.map((c) => c.name)).toEqual(['mcp-server', 'mcp-bridge']);
  });

  it('... and really enforces: a server container with a non-restricted securityContext is refused', async () => {
    const err = await core
      .createNamespacedPod({
        namespace: restricted,
        body: podOf({ ...SPEC, securityContext: { allowPrivilegeEscalation: true } }, 'loose'),
        dryRun: 'All',
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeDefined();
    expect(apiMessage(err)).toMatch(/violates PodSecurity "restricted:latest".*allowPrivilegeEscalation/);
    expect(apiMessage(err)).toContain('"mcp-server"');
    expect(apiMessage(err)).not.toContain('"mcp-bridge"');
  });

  it('the CRD refuses an empty command, naming the field', async () => {
    const err = await apply(objects, mk('empty-command', { image: 'x', transport: 'stdio', command: [] }), {
      dryRun: true,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(apiMessage(err)).toMatch(/spec\.command: Invalid value: .*should have at least 1 items/);
  });
});
