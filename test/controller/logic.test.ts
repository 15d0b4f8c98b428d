/** Pure logic of the controller: work queue, status computation, drift detection. */
import { describe, expect, it } from '@jest/globals';
import { WorkQueue, backoffMs } from '../../controller/queue.js';
import { computeStatus, mergeConditions, statusChanged, type ObservedState } from '../../controller/status.js';
import { APPLIED_HASH_ANNOTATION, applyReason, firstDifference, hashOf } from '../../controller/drift.js';
import { parseMCPServerSpec } from '../../charts/api/validate.js';
import { desiredChildren, ownerReference, type MCPServerObject } from '../../controller/reconciler.js';
import { renderMCPServer } from '../../charts/render.js';

describe('WorkQueue (client-go workqueue semantics)', () => {
  it('coalesces duplicates and hands keys out in order', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    q.done('a');
    q.done('b');
    expect(q.depth).toBe(0);
  });

  it('never hands out a key that is in flight; a key added meanwhile comes back after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const k = await q.get();
    q.add('a'); // changed while processing
    expect(q.depth).toBe(0);
    let second: string | undefined = 'pending';
    const p = q.get().then((v) => (second = v));
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBe('pending');
    q.done(k!);
    await p;
    expect(second).toBe('a');
  });

  it('backs off per key: 5 ms doubling to 1000 s, reset by forget', () => {
    expect([0, 1, 2, 3].map((n) => backoffMs(n))).toEqual([5, 10, 20, 40]);
    expect(backoffMs(30)).toBe(1_000_000);
    const q = new WorkQueue();
    expect(q.addRateLimited('a')).toBe(5);
    expect(q.addRateLimited('a')).toBe(10);
    expect(q.retries('a')).toBe(2);
    q.forget('a');
    expect(q.addRateLimited('a')).toBe(5);
    q.shutDown();
  });

  it('addAfter delivers later; shutDown releases waiting getters and drops delayed keys', async () => {
    const q = new WorkQueue();
    q.addAfter('late', 20);
    expect(q.depth).toBe(0);
    expect(await q.get()).toBe('late');
    q.done('late');
    q.addAfter('never', 10_000);
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.add('x');
    expect(await q.get()).toBeUndefined();
  });
});

const spec = parseMCPServerSpec({ image: 'x', port: 3001 });
const base: ObservedState = { name: 'demo', namespace: 'default', generation: 2, spec };
const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:01:00Z';

describe('computeStatus (seed 003 updateStatusFromResources)', () => {
  it('Pending while the Deployment is not ready; no endpoint', () => {
    const s = computeStatus({ ...base, deployment: { replicas: 1, readyReplicas: 0, generation: 1, observedGeneration: 1 }, service: { clusterIP: '10.96.0.5' } }, undefined, T0);
    expect(s.phase).toBe('Pending');
    expect(s.endpoint).toBeUndefined();
    expect(s.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', message: 'Deployment is not ready' });
    expect(s.observedGeneration).toBe(2);
    expect(s.selector).toBe('app.kubernetes.io/name=mcp-server,app.kubernetes.io/instance=demo');
  });

  it('Ready with all four conditions True and the seed endpoint', () => {
    const s = computeStatus({ ...base, deployment: { replicas: 1, readyReplicas: 1, generation: 1, observedGeneration: 1 }, service: { clusterIP: '10.96.0.5' } }, undefined, T0);
    expect(s.phase).toBe('Ready');
    expect(s.endpoint).toBe('http://demo.default.svc.cluster.local:3001');
    expect(s.conditions!.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'True'], ['DeploymentReady', 'True'], ['ServiceReady', 'True'], ['ConfigurationValid', 'True'],
    ]);
    expect(s.readyReplicas).toBe(1);
  });

  it('Failed with ConfigurationValid=False for an invalid spec', () => {
    const s = computeStatus({ ...base, spec: undefined, invalid: 'spec.replicas: stdio transport does not support multiple replicas (requested: 2)' }, undefined, T0);
    expect(s.phase).toBe('Failed');
    expect(s.conditions!.find((c) => c.type === 'ConfigurationValid')).toMatchObject({ status: 'False', reason: 'InvalidConfiguration', message: expect.stringContaining('stdio') });
  });

  it('stdio needs no Service and has no endpoint; its conditions say it cannot be reached and why', () => {
    const s = computeStatus({ ...base, spec: parseMCPServerSpec({ image: 'x', transport: 'stdio' }), deployment: { replicas: 1, readyReplicas: 1 } }, undefined, T0);
    expect(s.phase).toBe('Ready');
    expect(s.endpoint).toBeUndefined();
    expect(s.conditions!.find((c) => c.type === 'ServiceReady')).toMatchObject({ status: 'True', reason: 'NotRequired', message: expect.stringContaining('without spec.command') });
    const ready = s.conditions!.find((c) => c.type === 'Ready')!;
    expect(ready.message).toMatch(/not reachable: stdio transport without spec.command.*nothing outside can reach it.*set spec.command/);
  });

  it('bridged stdio (command set) needs its Service, and then has the endpoint of the bridge port', () => {
    const spec = parseMCPServerSpec({ image: 'x', transport: 'stdio', port: 3001, command: ['node', 'srv.js'] });
    const pending = computeStatus({ ...base, spec, deployment: { replicas: 1, readyReplicas: 1 } }, undefined, T0);
    expect(pending.phase).toBe('Pending');
    expect(pending.endpoint).toBeUndefined();
    const s = computeStatus({ ...base, spec, deployment: { replicas: 1, readyReplicas: 1 }, service: { clusterIP: '10.96.0.7' } }, undefined, T0);
    expect(s.phase).toBe('Ready');
    expect(s.endpoint).toBe(`http://${base.name}.${base.namespace}.svc.cluster.local:3001`);
    expect(s.conditions!.find((c) => c.type === 'Ready')!.message).toContain('through the in-pod bridge');
    expect(s.conditions!.find((c) => c.type === 'ServiceReady')).toMatchObject({ status: 'True', reason: 'ServiceReady' });
  });

  it('lastTransitionTime changes only on transitions; an unchanged status is not a change', () => {
    const obs = { ...base, deployment: { replicas: 1, readyReplicas: 1 }, service: { clusterIP: '10.96.0.5' } };
    const first = computeStatus(obs, undefined, T0);
    const again = computeStatus(obs, first, T1);
    expect(statusChanged(first, again)).toBe(false);
    const down = computeStatus({ ...obs, deployment: { replicas: 1, readyReplicas: 0 } }, first, T1);
    expect(down.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime).toBe(T1);
    expect(down.conditions!.find((c) => c.type === 'ServiceReady')!.lastTransitionTime).toBe(T0);
    expect(down.lastTransitionTime).toBe(T1);
    expect(mergeConditions(first.conditions, [{ type: 'Ready', status: 'True', reason: 'X', message: 'y' }], 3, T1)[0]!.lastTransitionTime).toBe(T0);
  });
});

describe('drift detection', () => {
  const obj: MCPServerObject = {
    apiVersion: 'mcp.example.com/v1alpha1',
    kind: 'MCPServer',
    metadata: { name: 'demo', namespace: 'ns', uid: '1234' },
    spec: { image: 'x', replicas: 2, resources: { limits: { cpu: '0.5' } } },
  };
  const [svc, dep] = desiredChildren(obj) as any[];

  it('desired children are exactly the render output plus owner reference and hash annotation', () => {
    const rendered = renderMCPServer({ apiVersion: obj.apiVersion, kind: obj.kind, metadata: { name: 'demo' }, spec: obj.spec }, 'ns');
    for (const [i, child] of desiredChildren(obj).entries()) {
      const { ownerReferences, annotations, ...meta } = child.metadata as any;
      expect({ ...child, metadata: meta }).toEqual(rendered[i]);
      expect(ownerReferences).toEqual([ownerReference(obj)]);
      expect(ownerReferences[0]).toMatchObject({ controller: true, blockOwnerDeletion: true, uid: '1234', kind: 'MCPServer' });
      expect(annotations[APPLIED_HASH_ANNOTATION]).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('a live object equal to desired needs no apply, even with server defaults and foreign fields', () => {
    const live = structuredClone(dep);
    live.metadata.annotations.foreign = 'kept';
    live.metadata.resourceVersion = '42';
    live.spec.template.spec.containers[0].terminationMessagePath = '/dev/termination-log';
    live.spec.template.spec.containers[0].resources.limits.cpu = '500m'; // canonicalized by the apiserver
    live.spec.template.spec.containers[0].env.push({ name: 'EXTRA', value: 'added by someone' });
    live.status = { readyReplicas: 2 };
    expect(applyReason(dep, live)).toBeUndefined();
  });

  it('finds edits of owned fields, removals, and spec changes', () => {
    expect(applyReason(dep, undefined)).toBe('created');
    const edited = structuredClone(dep);
    edited.spec.replicas = 5;
    expect(applyReason(dep, edited)).toBe('drift at spec.replicas');
    const envEdited = structuredClone(dep);
    envEdited.spec.template.spec.containers[0].env.find((e: any) => e.name === 'MCP_PORT').value = '1';
    expect(applyReason(dep, envEdited)).toMatch(/^drift at spec\.template\.spec\.containers\[name=mcp-server\]\.env\[name=MCP_PORT\]\.value$/);
    const labelGone = structuredClone(svc);
    delete labelGone.metadata.labels['app.kubernetes.io/component'];
    expect(applyReason(svc, labelGone)).toBe('drift at metadata.labels.app.kubernetes.io/component');
    const old = structuredClone(dep);
    old.metadata.annotations[APPLIED_HASH_ANNOTATION] = 'older';
    expect(applyReason(dep, old)).toBe('desired state changed');
  });

  it('hashOf ignores key order; firstDifference compares atomic lists whole', () => {
    expect(hashOf({ a: 1, b: [1, 2] })).toBe(hashOf({ b: [1, 2], a: 1 }));
    expect(firstDifference({ drop: ['ALL'] }, { drop: ['ALL', 'NET_RAW'] })).toBe('drop');
    expect(firstDifference({ a: '1' }, { a: 1 })).toBe('a');
  });
});
