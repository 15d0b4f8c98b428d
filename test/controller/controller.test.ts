/**
 * The controller against the real control plane (kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok running): lifecycle of the seed basic sample, spec changes, drift,
 * steady state without writes, deletion with the finalizer, invalid objects.
 * The controller runs in-process, watching only this file's namespaces.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { parse } from 'yaml';
import { loadSamples } from '../../charts/samples.js';
import { renderMCPServer, type KubeObject } from '../../charts/render.js';
import { Controller } from '../../controller/controller.js';
import { firstDifference } from '../../controller/drift.js';
import { FIELD_MANAGER } from '../../controller/reconciler.js';
import { apply, createNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';
import type { MCPS } from '../shapes.js';
import { exists, mcpsApi } from './mcps.js';
import { AUDIT_LOG_PATH } from '../../cluster/index.js';
import { readFileSync, statSync } from 'node:fs';

const kc = kubeConfig();
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const log = pino({ level: process.env.KUBEMCP_TEST_LOG ?? 'silent' });
const G = { group: 'mcp.example.com', version: 'v1alpha1', plural: 'mcpservers' };

const { get: getMcps, mergePatch, waitPhase } = mcpsApi(kc);

let ns: string;
let controller: Controller;
let defaultController: Controller;

beforeAll(async () => {
  await installCrd(kc);
  ns = await createNamespace(kc, 'ctl');
  controller = new Controller({
    kubeConfig: kc,
    log,
    namespace: ns,
    workers: 2,
    resyncPeriodMs: 3_600_000,
    verify: 'off',
  });
  await controller.start();
});
afterAll(async () => {
  await controller?.stop();
  await defaultController?.stop();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('seed basic sample, verbatim, in namespace default', () => {
  const basic = loadSamples().find((s) => s.id === 'seed001-basic')!;
  const phases: string[] = [];
  let informer: k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>;

  beforeAll(async () => {
    defaultController = new Controller({
      kubeConfig: kc,
      log,
      namespace: 'default',
      workers: 1,
      resyncPeriodMs: 3_600_000,
      verify: 'off',
    });
    await defaultController.start();
    informer = k8s.makeInformer(
      kc,
      '/apis/mcp.example.com/v1alpha1/namespaces/default/mcpservers',
      () => custom.listNamespacedCustomObject({ ...G, namespace: 'default' }) as never,
    );
    const record = (o: k8s.KubernetesObject) => {
      const p = (o as MCPS).status?.phase;
      if (o.metadata?.name === 'basic-mcpserver' && p && phases.at(-1) !== p) phases.push(p);
    };
    informer.on('add', record);
    informer.on('update', record);
    await informer.start();
    await custom
      .deleteNamespacedCustomObject({ ...G, namespace: 'default', name: 'basic-mcpserver' })
      .catch(() => undefined);
    await waitFor('old basic-mcpserver gone', async () => !(await exists(getMcps('default', 'basic-mcpserver'))));
    await objects.create(parse(basic.text));
  });
  afterAll(async () => {
    await informer?.stop();
  });

  it('goes Pending -> Ready with readyReplicas 1, the seed endpoint, its conditions True (Verified Unknown: off), observedGeneration', async () => {
    const o = await waitPhase('default', 'basic-mcpserver', 'Ready', (x) => x.status.readyReplicas === 1);
    expect(phases[0]).toBe('Pending');
    expect(phases).toContain('Ready');
    expect(o.status.endpoint).toBe('http://basic-mcpserver.default.svc.cluster.local:3001');
    expect(o.status.replicas).toBe(1);
    expect(o.status.observedGeneration).toBe(o.metadata.generation);
    expect(Object.fromEntries(o.status.conditions.map((c) => [c.type, c.status]))).toEqual({
      Ready: 'True',
      DeploymentReady: 'True',
      ServiceReady: 'True',
      ChildrenApplied: 'True',
      Verified: 'Unknown',
      ConfigurationValid: 'True',
      AuthEnabled: 'True',
    });
    expect(o.metadata.finalizers).toContain('mcp.example.com/finalizer');
  });

  it('applies exactly what `kubemcp render` / synth produce for the same spec, plus the owner reference', async () => {
    const o = await getMcps('default', 'basic-mcpserver');
    const rendered = renderMCPServer(basic.manifest);
    // The gateway's ClusterRoleBinding (mode kubernetes, the default) is cluster-scoped: no
    // owner reference; it names its MCPServer in an annotation and goes in the finalizer.
    expect(rendered.map((r) => r.kind)).toEqual([
      'ConfigMap',
      'Service',
      'Deployment',
      'NetworkPolicy',
      'Service',
      'ClusterRoleBinding',
    ]);
    const crb = rendered.find((r) => r.kind === 'ClusterRoleBinding')!;
    const liveCrb = (await objects.read({
      apiVersion: crb.apiVersion,
      kind: crb.kind,
      metadata: { name: crb.metadata.name },
    })) as unknown as KubeObject;
    expect(firstDifference(JSON.parse(JSON.stringify(crb)), JSON.parse(JSON.stringify(liveCrb)))).toBeUndefined();
    expect(
      (liveCrb.metadata.managedFields as k8s.V1ManagedFieldsEntry[])
        .filter((m) => m.manager === FIELD_MANAGER)
        .map((m) => m.operation),
    ).toEqual(['Apply']);
    expect(liveCrb.metadata.ownerReferences).toBeUndefined();
    for (const want of rendered.filter((r) => r !== crb)) {
      const live = (await objects.read({
        apiVersion: want.apiVersion,
        kind: want.kind,
        metadata: { name: want.metadata.name, namespace: 'default' },
      })) as unknown as KubeObject;
      // Every field render sets is live with the rendered value ...
      expect(firstDifference(JSON.parse(JSON.stringify(want)), JSON.parse(JSON.stringify(live)))).toBeUndefined();
      // ... owned by the controller's one field manager through apply ...
      const mine = (live.metadata.managedFields as k8s.V1ManagedFieldsEntry[]).filter(
        (m) => m.manager === FIELD_MANAGER,
      );
      expect(mine.map((m) => m.operation)).toEqual(['Apply']);
      // ... and the only additions are the controller owner reference and the applied-hash annotation.
      expect(live.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'mcp.example.com/v1alpha1',
          kind: 'MCPServer',
          name: 'basic-mcpserver',
          uid: o.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(
        Object.keys(live.metadata.annotations as object).filter((k) => k !== 'deployment.kubernetes.io/revision'),
      ).toEqual(['mcp.example.com/applied-hash']);
    }
  });
});

const mk = (name: string, spec: object) => ({
  apiVersion: 'mcp.example.com/v1alpha1',
  kind: 'MCPServer',
  metadata: { name, namespace: ns },
  spec,
});
const readDep = (name: string) => apps.readNamespacedDeployment({ name, namespace: ns });

describe('spec changes reach the children', () => {
  it('replicas 1 -> 3, then kubectl scale (scale subresource) to 2', async () => {
    await apply(objects, mk('scaled', { image: 'img:1', replicas: 1 }));
    await waitPhase(ns, 'scaled', 'Ready');
    await mergePatch(ns, 'scaled', { spec: { replicas: 3 } });
    let o = await waitPhase(ns, 'scaled', 'Ready', (x) => x.status.readyReplicas === 3);
    expect((await readDep('scaled')).spec!.replicas).toBe(3);
    // What `kubectl scale mcps scaled --replicas=2` does: PATCH .../mcpservers/scaled/scale.
    await custom.patchNamespacedCustomObjectScale(
      { ...G, namespace: ns, name: 'scaled', body: { spec: { replicas: 2 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    o = await waitPhase(ns, 'scaled', 'Ready', (x) => x.status.readyReplicas === 2 && x.status.replicas === 2);
    expect(o.spec.replicas).toBe(2);
    expect((await readDep('scaled')).spec!.replicas).toBe(2);
    const scale = (await custom.getNamespacedCustomObjectScale({ ...G, namespace: ns, name: 'scaled' })) as k8s.V1Scale;
    expect(scale.status).toMatchObject({
      replicas: 2,
      selector: 'app.kubernetes.io/name=mcp-server,app.kubernetes.io/instance=scaled',
    });
  });

  it('image change rolls the Deployment', async () => {
    await mergePatch(ns, 'scaled', { spec: { image: 'img:2' } });
    await waitPhase(ns, 'scaled', 'Ready', (x) => x.status.readyReplicas === 2);
    expect((await readDep('scaled')).spec!.template.spec!.containers[0]!.image).toBe('img:2');
  });

  it('config added, changed, removed: the ConfigMap follows and is pruned', async () => {
    await mergePatch(ns, 'scaled', { spec: { config: { LOG_LEVEL: 'info' } } });
    const cm = await waitFor('ConfigMap created', () =>
      core.readNamespacedConfigMap({ name: 'scaled-config', namespace: ns }),
    );
    expect(cm.data!.LOG_LEVEL).toBe('info');
    expect(cm.metadata!.ownerReferences![0]!.kind).toBe('MCPServer');
    await mergePatch(ns, 'scaled', { spec: { config: { LOG_LEVEL: 'debug' } } });
    await waitFor(
      'ConfigMap changed',
      async () =>
        (await core.readNamespacedConfigMap({ name: 'scaled-config', namespace: ns })).data!.LOG_LEVEL === 'debug',
    );
    const env = (await readDep('scaled')).spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'MCP_CONFIG_FILE')?.value).toBe('/etc/mcp/config.json');
    await mergePatch(ns, 'scaled', { spec: { config: null } });
    await waitFor(
      'ConfigMap pruned',
      async () => !(await exists(core.readNamespacedConfigMap({ name: 'scaled-config', namespace: ns }))),
    );
    await waitFor(
      'config mount removed',
      async () =>
        !(await readDep('scaled')).spec!.template.spec!.containers[0]!.env!.some((e) => e.name === 'MCP_CONFIG_FILE'),
    );
    await waitPhase(ns, 'scaled', 'Ready');
  });

  it('transport to stdio: Service pruned, no probes, endpoint cleared', async () => {
    await apply(objects, mk('to-stdio', { image: 'img:1', transport: 'http', port: 3001 }));
    await waitPhase(ns, 'to-stdio', 'Ready');
    expect(await exists(core.readNamespacedService({ name: 'to-stdio', namespace: ns }))).toBe(true);
    await mergePatch(ns, 'to-stdio', { spec: { transport: 'stdio' } });
    const o = await waitPhase(ns, 'to-stdio', 'Ready', (x) => x.status.endpoint === undefined);
    await waitFor(
      'Service pruned',
      async () => !(await exists(core.readNamespacedService({ name: 'to-stdio', namespace: ns }))),
    );
    const c = (await readDep('to-stdio')).spec!.template.spec!.containers[0]!;
    expect(c.livenessProbe).toBeUndefined();
    expect(c.readinessProbe).toBeUndefined();
    expect(c.ports).toBeUndefined();
    expect(o.status.conditions.find((x) => x.type === 'ServiceReady')?.reason).toBe('NotRequired');
  });

  it('stdio with replicas 2: Failed, ConfigurationValid=False, the running Deployment left intact', async () => {
    await mergePatch(ns, 'to-stdio', { spec: { replicas: 2 } });
    const o = await waitPhase(ns, 'to-stdio', 'Failed');
    const cv = o.status.conditions.find((c) => c.type === 'ConfigurationValid');
    expect(cv).toMatchObject({ status: 'False', reason: 'InvalidConfiguration' });
    expect(cv?.message).toContain('stdio transport does not support multiple replicas (requested: 2)');
    const dep = await readDep('to-stdio');
    expect(dep.spec!.replicas).toBe(1);
    const events = await core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: 'involvedObject.name=to-stdio,reason=InvalidConfiguration',
    });
    expect(events.items.length).toBeGreaterThanOrEqual(1);
    // Fixing the spec recovers.
    await mergePatch(ns, 'to-stdio', { spec: { replicas: 1 } });
    await waitPhase(ns, 'to-stdio', 'Ready');
  });
});

describe('drift', () => {
  beforeAll(async () => {
    await apply(objects, mk('drift', { image: 'img:1', replicas: 2, config: { A: '1' } }));
    await waitPhase(ns, 'drift', 'Ready', (x) => x.status.readyReplicas === 2);
  });

  it('a deleted Deployment is recreated', async () => {
    const before = await readDep('drift');
    await apps.deleteNamespacedDeployment({ name: 'drift', namespace: ns });
    const after = await waitFor('Deployment recreated', async () => {
      const d = await readDep('drift').catch(() => undefined);
      return d && d.metadata!.uid !== before.metadata!.uid && d;
    });
    expect(after.spec!.replicas).toBe(2);
    await waitPhase(ns, 'drift', 'Ready', (x) => x.status.readyReplicas === 2);
  });

  it('an edited owned field is put back; a foreign annotation survives', async () => {
    const d = await readDep('drift');
    d.spec!.replicas = 4; // like `kubectl edit`: an update by another manager
    d.metadata!.annotations = { ...d.metadata!.annotations, 'team.example.com/owner': 'alice' };
    await apps.replaceNamespacedDeployment({ name: 'drift', namespace: ns, body: d });
    await waitFor('replicas reverted to 2', async () => (await readDep('drift')).spec!.replicas === 2);
    const cm = await core.readNamespacedConfigMap({ name: 'drift-config', namespace: ns });
    cm.data!.A = 'tampered';
    await core.replaceNamespacedConfigMap({ name: 'drift-config', namespace: ns, body: cm });
    await waitFor(
      'ConfigMap data reverted',
      async () => (await core.readNamespacedConfigMap({ name: 'drift-config', namespace: ns })).data!.A === '1',
    );
    controller.resync();
    await new Promise((r) => setTimeout(r, 1000));
    expect((await readDep('drift')).metadata!.annotations!['team.example.com/owner']).toBe('alice');
  });
});

describe('steady state', () => {
  it('after convergence, resyncs send zero write requests', async () => {
    await waitPhase(ns, 'drift', 'Ready', (x) => x.status.readyReplicas === 2);
    const writes = async () => (await controller.metrics.writeRequests.get()).values.reduce((n, v) => n + v.value, 0);
    const reconciles = async () =>
      (await controller.metrics.reconcileTotal.get()).values.reduce((n, v) => n + v.value, 0);
    // Let in-flight convergence (status of the rollouts above) settle first.
    await waitFor('quiet controller', async () => {
      const w = await writes();
      await new Promise((r) => setTimeout(r, 1500));
      return (await writes()) === w && controller.queue.depth === 0;
    });
    const w0 = await writes();
    const r0 = await reconciles();
    const auditFrom = statSync(AUDIT_LOG_PATH).size;
    for (let i = 0; i < 5; i++) {
      controller.resync();
      await waitFor('queue drained', async () => controller.queue.depth === 0, 10_000, 50);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await reconciles()) - r0).toBeGreaterThanOrEqual(5 * 3); // 3 MCPServers in the namespace, 5 resyncs
    // Counted by the controller ...
    expect((await writes()) - w0).toBe(0);
    // ... and by the apiserver: its audit log records every write request (cluster/).
    const audit = readFileSync(AUDIT_LOG_PATH)
      .subarray(auditFrom)
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map(
        (l) => JSON.parse(l) as { stage: string; verb: string; objectRef?: { namespace?: string; resource?: string } },
      );
    const writesInNamespace = audit.filter((e) => e.stage === 'ResponseComplete' && e.objectRef?.namespace === ns);
    expect(writesInNamespace.map((e) => `${e.verb} ${e.objectRef!.resource}`)).toEqual([]);
  });
});

describe('deletion', () => {
  it('the finalizer runs, children go, the MCPServer disappears', async () => {
    const o = await getMcps(ns, 'drift');
    await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, name: 'drift' });
    await waitFor('MCPServer gone', async () => !(await exists(getMcps(ns, 'drift'))), 60_000);
    await waitFor(
      'children gone',
      async () => {
        const [d, s, c] = await Promise.all([
          exists(readDep('drift')),
          exists(core.readNamespacedService({ name: 'drift', namespace: ns })),
          exists(core.readNamespacedConfigMap({ name: 'drift-config', namespace: ns })),
        ]);
        return !d && !s && !c;
      },
      60_000,
    );
    const events = await core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: `involvedObject.uid=${o.metadata.uid},reason=Deleting`,
    });
    expect(events.items).toHaveLength(1);
  });
});

describe('invalid objects the CRD lets through', () => {
  it('never crash the controller: each is reported Failed and others keep reconciling', async () => {
    const errors = async () => (await controller.metrics.reconcileErrors.get()).values[0]?.value ?? 0;
    const errorsBefore = await errors();
    await apply(objects, mk('bad-key', { image: 'img:1', config: { 'config.json': 'x' } }));
    await apply(
      objects,
      mk('bad-env', {
        image: 'img:1',
        env: [
          { name: 'A', value: '1' },
          { name: 'A', value: '2' },
        ],
      }),
    );
    for (const name of ['bad-key', 'bad-env']) {
      const o = await waitPhase(ns, name, 'Failed');
      expect(o.status.conditions.find((c) => c.type === 'ConfigurationValid')?.status).toBe('False');
    }
    await apply(objects, mk('after-bad', { image: 'img:1' }));
    await waitPhase(ns, 'after-bad', 'Ready');
    // Invalid specs are a status, not an error: nothing was retried.
    expect((await errors()) - errorsBefore).toBe(0);
  });
});
