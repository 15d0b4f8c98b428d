/** Pure logic of the controller: work queue, status computation, drift detection, foreign list entries, pod problems, handshake classification. */
import { describe, expect, it } from '@jest/globals';
import { Priority, WorkQueue, backoffMs } from '../../controller/queue.js';
import { childEventPriority, mcpServerEventPriority, podEventPriority } from '../../controller/priority.js';
import { computeStatus, mergeConditions, statusChanged, type ObservedState } from '../../controller/status.js';
import {
  APPLIED_HASH_ANNOTATION,
  applyReason,
  firstDifference,
  foreignListEntries,
  hashOf,
} from '../../controller/drift.js';
import { podProblem } from '../../controller/pods.js';
import { trimForCache } from '../../controller/transform.js';
import { classify, type HandshakeResult } from '../../controller/verify.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { parseMCPServerSpec } from '../../charts/api/validate.js';
import { desiredChildren, ownerReference, type MCPServerObject } from '../../controller/reconciler.js';
import { renderMCPServer } from '../../charts/render.js';
import type * as k8s from '@kubernetes/client-node';
import type { Sure } from '../shapes.js';

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

describe('WorkQueue priorities (controller-runtime priorityqueue ordering)', () => {
  const drain = async (q: WorkQueue) => {
    const out: string[] = [];
    while (q.depth) {
      const k = (await q.get())!;
      out.push(k);
      q.done(k);
    }
    return out;
  };

  it('hands out the highest priority first, first in first out within a priority', async () => {
    const q = new WorkQueue();
    q.add('low-1', Priority.LOW);
    q.add('n-1');
    q.add('high-1', Priority.HIGH);
    q.add('n-2', Priority.NORMAL);
    q.add('low-2', Priority.LOW);
    q.add('high-2', Priority.HIGH);
    expect(q.depth).toBe(6);
    expect(await drain(q)).toEqual(['high-1', 'high-2', 'n-1', 'n-2', 'low-1', 'low-2']);
  });

  it('a status event of one key of a burst overtakes the burst (the Ready lag case)', async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 1000; i++) q.add(`ns/mcp-${i}`); // 1,000 MCPServers created at once
    q.add('ns/mcp-999', Priority.HIGH); // its Deployment reports the pods ready
    expect(q.depth).toBe(1000);
    expect(await q.get()).toBe('ns/mcp-999');
    expect(await q.get()).toBe('ns/mcp-0');
  });

  it('raises a waiting key to a higher priority, never lowers it; duplicates coalesce', async () => {
    const q = new WorkQueue();
    q.add('a', Priority.LOW);
    q.add('b', Priority.LOW);
    q.add('c', Priority.NORMAL);
    q.add('a', Priority.HIGH); // raised
    q.add('c', Priority.LOW); // not lowered
    q.add('c', Priority.NORMAL); // coalesced, keeps its place
    expect(q.priorityOf('a')).toBe(Priority.HIGH);
    expect(q.priorityOf('c')).toBe(Priority.NORMAL);
    expect(q.depth).toBe(3);
    expect(await drain(q)).toEqual(['a', 'c', 'b']);
  });

  it('a key added while in flight comes back after done with the highest priority it was added with', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b', Priority.NORMAL);
    const k = (await q.get())!;
    expect(k).toBe('a');
    q.add('a', Priority.LOW);
    q.add('a', Priority.HIGH);
    expect(q.priorityOf('a')).toBeUndefined(); // in flight: not handed out twice
    q.done('a');
    expect(q.priorityOf('a')).toBe(Priority.HIGH);
    expect(await drain(q)).toEqual(['a', 'b']);
  });

  it('delayed and rate-limited adds keep their priority; the sooner delay and the higher priority win', async () => {
    const q = new WorkQueue();
    q.add('n');
    q.addAfter('d', 5_000, Priority.LOW);
    q.addAfter('d', 10, Priority.HIGH); // sooner and higher
    q.addAfter('d', 20_000, Priority.LOW); // later: ignored
    expect(q.addRateLimited('r', Priority.HIGH)).toBe(5);
    await new Promise((r) => setTimeout(r, 50));
    expect(q.priorityOf('d')).toBe(Priority.HIGH);
    expect(await drain(q)).toEqual(['r', 'd', 'n']); // both HIGH: first due, first out
    q.shutDown();
  });
});

describe('event priorities (controller/priority.ts)', () => {
  const mcp = (
    status?: MCPServerObject['status'],
    generation = 1,
    extra: Partial<MCPServerObject['metadata']> = {},
  ): MCPServerObject => ({
    apiVersion: 'mcp.example.com/v1alpha1',
    kind: 'MCPServer',
    metadata: { name: 'm', namespace: 'ns', uid: 'u', generation, ...extra },
    spec: { image: 'x' },
    status,
  });
  const cond = (type: string, status: 'True' | 'False', reason = type) =>
    ({ type, status, reason, message: '', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }) as never;
  const dep = (ready: number, replicas = 1, observedGeneration = 1) => ({
    metadata: { name: 'm', namespace: 'ns', generation: 1 },
    spec: { replicas: 1 },
    status: { readyReplicas: ready, replicas, observedGeneration },
  });
  const pending = {
    phase: 'Pending',
    readyReplicas: 0,
    replicas: 1,
    observedGeneration: 1,
    conditions: [cond('DeploymentReady', 'False', 'DeploymentNotReady')],
  } as MCPServerObject['status'];
  const ready = {
    phase: 'Ready',
    readyReplicas: 1,
    replicas: 1,
    observedGeneration: 1,
    conditions: [cond('DeploymentReady', 'True')],
  } as MCPServerObject['status'];

  it('MCPServer events: initial list LOW; created, deleted, edited NORMAL; echoes of status and metadata writes LOW', () => {
    expect(mcpServerEventPriority('add', mcp(), false)).toBe(Priority.LOW);
    expect(mcpServerEventPriority('add', mcp(), true)).toBe(Priority.NORMAL);
    expect(mcpServerEventPriority('delete', mcp(pending), true)).toBe(Priority.NORMAL);
    expect(mcpServerEventPriority('update', mcp(undefined), true)).toBe(Priority.NORMAL); // never reconciled (finalizer echo)
    expect(mcpServerEventPriority('update', mcp(pending, 2), true)).toBe(Priority.NORMAL); // spec edited
    expect(mcpServerEventPriority('update', mcp(pending, 1, { deletionTimestamp: new Date() }), true)).toBe(
      Priority.NORMAL,
    );
    expect(mcpServerEventPriority('update', mcp(pending, 1), true)).toBe(Priority.LOW); // our status write
  });

  it('a Deployment whose readiness the status does not show yet is HIGH; one it shows, LOW', () => {
    expect(childEventPriority('Deployment', 'update', dep(1) as never, mcp(pending))).toBe(Priority.HIGH); // pods became ready
    expect(childEventPriority('Deployment', 'update', dep(1) as never, mcp(ready))).toBe(Priority.LOW);
    expect(childEventPriority('Deployment', 'update', dep(0) as never, mcp(pending))).toBe(Priority.LOW); // still starting
    expect(childEventPriority('Deployment', 'update', dep(0) as never, mcp(ready))).toBe(Priority.HIGH); // lost its pod
    expect(childEventPriority('Deployment', 'update', dep(1, 2) as never, mcp(ready))).toBe(Priority.HIGH); // a rollout: 2 replicas
    expect(childEventPriority('Deployment', 'add', dep(0, 0, 0) as never, mcp(undefined))).toBe(Priority.LOW); // echo of our create
    expect(childEventPriority('Deployment', 'update', dep(1) as never, undefined)).toBe(Priority.LOW); // owner not cached
    expect(childEventPriority('ConfigMap', 'update', { metadata: {} }, mcp(pending))).toBe(Priority.LOW);
    expect(childEventPriority('Service', 'delete', { metadata: {} }, mcp(ready))).toBe(Priority.NORMAL); // to recreate
  });

  it('a pod problem the DeploymentReady condition does not name is HIGH', () => {
    const unschedulable = {
      metadata: { name: 'p' },
      status: {
        phase: 'Pending',
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' },
        ],
      },
    };
    const starting = { metadata: { name: 'p' }, status: { phase: 'Pending' } };
    expect(podEventPriority('update', unschedulable as never, mcp(pending))).toBe(Priority.HIGH);
    const named = { ...pending!, conditions: [cond('DeploymentReady', 'False', 'Unschedulable')] };
    expect(podEventPriority('update', unschedulable as never, mcp(named))).toBe(Priority.LOW);
    expect(podEventPriority('update', starting as never, mcp(pending))).toBe(Priority.LOW);
    expect(podEventPriority('delete', unschedulable as never, mcp(pending))).toBe(Priority.LOW);
  });
});

const spec = parseMCPServerSpec({ image: 'x', port: 3001 });
const base: ObservedState = { name: 'demo', namespace: 'default', generation: 2, spec };
const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:01:00Z';

describe('computeStatus (seed 003 updateStatusFromResources)', () => {
  it('Pending while the Deployment is not ready; no endpoint', () => {
    const s = computeStatus(
      {
        ...base,
        deployment: { replicas: 1, readyReplicas: 0, generation: 1, observedGeneration: 1 },
        service: { clusterIP: '10.96.0.5' },
      },
      undefined,
      T0,
    );
    expect(s.phase).toBe('Pending');
    expect(s.endpoint).toBeUndefined();
    expect(s.conditions!.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      message: 'Deployment is not ready',
    });
    expect(s.observedGeneration).toBe(2);
    expect(s.selector).toBe('app.kubernetes.io/name=mcp-server,app.kubernetes.io/instance=demo');
  });

  it('Ready with its conditions True, Verified Unknown when verification is off, the seed endpoint and the MCP url', () => {
    const s = computeStatus(
      {
        ...base,
        deployment: { replicas: 1, readyReplicas: 1, generation: 1, observedGeneration: 1 },
        service: { clusterIP: '10.96.0.5' },
      },
      undefined,
      T0,
    );
    expect(s.phase).toBe('Ready');
    expect(s.endpoint).toBe('http://demo.default.svc.cluster.local:3001');
    expect(s.url).toBe('http://demo.default.svc.cluster.local:3001/mcp');
    expect(s.conditions!.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'MCPServerReady'],
      ['DeploymentReady', 'True', 'DeploymentReady'],
      ['ServiceReady', 'True', 'ServiceReady'],
      ['ChildrenApplied', 'True', 'ChildrenApplied'],
      ['Verified', 'Unknown', 'VerificationDisabled'],
      ['ConfigurationValid', 'True', 'ConfigurationValid'],
      ['AuthEnabled', 'True', 'KubernetesAuth'],
    ]);
    expect(s.conditions!.find((c) => c.type === 'AuthEnabled')!.message).toBe(
      'Callers need a Kubernetes token for audience "http://demo.default.svc.cluster.local:3001/mcp" and RBAC create mcpservers/proxy "demo" in namespace "default" (API group mcp.example.com) (ClusterRole kubemcp:mcpserver-caller, aggregated into edit and admin). NetworkPolicy demo admits only the gateway\'s port, from every pod and address (spec.allowFrom narrows it), where the cluster enforces NetworkPolicy; every tool to every caller let in',
    );
    expect(s.serverInfo).toBeUndefined();
    expect(s.tools).toBeUndefined();
    expect(s.readyReplicas).toBe(1);
  });

  it('AuthEnabled=False with reason AuthDisabled for spec.auth.mode none, extra audiences named otherwise', () => {
    const obs = {
      ...base,
      deployment: { replicas: 1, readyReplicas: 1, generation: 1, observedGeneration: 1 },
      service: { clusterIP: '10.96.0.5' },
    };
    const none = computeStatus({ ...obs, spec: { ...base.spec!, auth: { mode: 'none' } } }, undefined, T0);
    expect(none.conditions!.find((c) => c.type === 'AuthEnabled')).toMatchObject({
      status: 'False',
      reason: 'AuthDisabled',
      message: expect.stringContaining('anyone who reaches the Service'),
    });
    const extra = computeStatus(
      { ...obs, spec: { ...base.spec!, auth: { mode: 'kubernetes', audiences: ['https://mcp.example.com/kube'] } } },
      undefined,
      T0,
    );
    expect(extra.conditions!.find((c) => c.type === 'AuthEnabled')!.message).toContain(
      '"http://demo.default.svc.cluster.local:3001/mcp" or "https://mcp.example.com/kube"',
    );
    const oidc = computeStatus(
      { ...obs, spec: { ...base.spec!, auth: { mode: 'oidc', oidc: { issuer: 'https://issuer.example' } } } },
      undefined,
      T0,
    );
    expect(oidc.conditions!.find((c) => c.type === 'AuthEnabled')).toMatchObject({
      status: 'True',
      reason: 'OIDCAuth',
      message: expect.stringMatching(/issuer "https:\/\/issuer\.example".* user oidc:<sub> or a group oidc:<groups>/),
    });
    const narrowed = computeStatus(
      {
        ...obs,
        spec: {
          ...base.spec!,
          allowFrom: [{ podSelector: { matchLabels: { role: 'agent' } } }],
          auth: { mode: 'kubernetes', tools: [{ names: ['list-pods'] }] },
        },
      },
      undefined,
      T0,
    );
    expect(narrowed.conditions!.find((c) => c.type === 'AuthEnabled')!.message).toMatch(
      /from the 1 spec\.allowFrom peer and the operator's pods, .*; tools limited per caller by 1 spec\.auth\.tools rule$/,
    );
    // stdio without the bridge has no gateway and no condition.
    const stdio = computeStatus(
      { ...obs, spec: { ...base.spec!, transport: 'stdio' }, service: undefined },
      undefined,
      T0,
    );
    expect(stdio.conditions!.some((c) => c.type === 'AuthEnabled')).toBe(false);
  });

  it('Failed with ConfigurationValid=False for an invalid spec', () => {
    const s = computeStatus(
      {
        ...base,
        spec: undefined,
        invalid: 'spec.replicas: stdio transport does not support multiple replicas (requested: 2)',
      },
      undefined,
      T0,
    );
    expect(s.phase).toBe('Failed');
    expect(s.conditions!.find((c) => c.type === 'ConfigurationValid')).toMatchObject({
      status: 'False',
      reason: 'InvalidConfiguration',
      message: expect.stringContaining('stdio'),
    });
  });

  it('stdio needs no Service and has no endpoint; its conditions say it cannot be reached and why', () => {
    const s = computeStatus(
      {
        ...base,
        spec: parseMCPServerSpec({ image: 'x', transport: 'stdio' }),
        deployment: { replicas: 1, readyReplicas: 1 },
      },
      undefined,
      T0,
    );
    expect(s.phase).toBe('Ready');
    expect(s.endpoint).toBeUndefined();
    expect(s.conditions!.find((c) => c.type === 'ServiceReady')).toMatchObject({
      status: 'True',
      reason: 'NotRequired',
      message: expect.stringContaining('without spec.command'),
    });
    const ready = s.conditions!.find((c) => c.type === 'Ready')!;
    expect(ready.message).toMatch(
      /not reachable: stdio transport without spec.command.*nothing outside can reach it.*set spec.command/,
    );
  });

  it('bridged stdio (command set) needs its Service, and then has the endpoint of the bridge port', () => {
    const spec = parseMCPServerSpec({ image: 'x', transport: 'stdio', port: 3001, command: ['node', 'srv.js'] });
    const pending = computeStatus({ ...base, spec, deployment: { replicas: 1, readyReplicas: 1 } }, undefined, T0);
    expect(pending.phase).toBe('Pending');
    expect(pending.endpoint).toBeUndefined();
    const s = computeStatus(
      { ...base, spec, deployment: { replicas: 1, readyReplicas: 1 }, service: { clusterIP: '10.96.0.7' } },
      undefined,
      T0,
    );
    expect(s.phase).toBe('Ready');
    expect(s.endpoint).toBe(`http://${base.name}.${base.namespace}.svc.cluster.local:3001`);
    expect(s.conditions!.find((c) => c.type === 'Ready')!.message).toContain('through the in-pod bridge');
    expect(s.conditions!.find((c) => c.type === 'ServiceReady')).toMatchObject({
      status: 'True',
      reason: 'ServiceReady',
    });
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
    expect(
      mergeConditions(first.conditions, [{ type: 'Ready', status: 'True', reason: 'X', message: 'y' }], 3, T1)[0]!
        .lastTransitionTime,
    ).toBe(T0);
  });
});

describe('drift detection', () => {
  const obj: MCPServerObject = {
    apiVersion: 'mcp.example.com/v1alpha1',
    kind: 'MCPServer',
    metadata: { name: 'demo', namespace: 'ns', uid: '1234' },
    spec: { image: 'x', replicas: 2, resources: { limits: { cpu: '0.5' } } },
  };
  const [svc, dep] = desiredChildren(obj) as [Sure<k8s.V1Service>, Sure<k8s.V1Deployment>];

  it('desired children are exactly the render output plus owner reference and hash annotation', () => {
    const all = renderMCPServer(
      { apiVersion: obj.apiVersion, kind: obj.kind, metadata: { name: 'demo' }, spec: obj.spec },
      'ns',
    );
    // The gateway's ClusterRoleBinding is rendered for GitOps but applied apart, unowned.
    expect(all.filter((c) => c.kind === 'ClusterRoleBinding').map((c) => c.metadata.name)).toEqual([
      'kubemcp:gateway:ns:demo',
    ]);
    const rendered = all.filter((c) => c.kind !== 'ClusterRoleBinding');
    expect(desiredChildren(obj)).toHaveLength(rendered.length);
    for (const [i, child] of desiredChildren(obj).entries()) {
      const { ownerReferences, annotations, ...meta } = child.metadata as Sure<k8s.V1ObjectMeta>;
      expect({ ...child, metadata: meta }).toEqual(rendered[i]);
      expect(ownerReferences).toEqual([ownerReference(obj)]);
      expect(ownerReferences[0]).toMatchObject({
        controller: true,
        blockOwnerDeletion: true,
        uid: '1234',
        kind: 'MCPServer',
      });
      expect(annotations[APPLIED_HASH_ANNOTATION]).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('a live object equal to desired needs no apply, even with server defaults and foreign fields', () => {
    const live = structuredClone(dep);
    live.metadata.annotations.foreign = 'kept';
    live.metadata.resourceVersion = '42';
    live.spec.template.spec.containers[0].terminationMessagePath = '/dev/termination-log';
    live.spec.template.spec.containers[0].resources.limits.cpu = '500m'; // canonicalized by the apiserver
    (live.spec.template.spec.containers[0].env as k8s.V1EnvVar[]).push({ name: 'EXTRA', value: 'added by someone' });
    (live as k8s.V1Deployment).status = { readyReplicas: 2 };
    expect(applyReason(dep, live)).toBeUndefined();
  });

  it('finds edits of owned fields, removals, and spec changes', () => {
    expect(applyReason(dep, undefined)).toBe('created');
    const edited = structuredClone(dep);
    edited.spec.replicas = 5;
    expect(applyReason(dep, edited)).toBe('drift at spec.replicas');
    const envEdited = structuredClone(dep);
    envEdited.spec.template.spec.containers[0].env.find((e) => e.name === 'MCP_PORT')!.value = '1';
    expect(applyReason(dep, envEdited)).toMatch(
      /^drift at spec\.template\.spec\.containers\[name=mcp-server\]\.env\[name=MCP_PORT\]\.value$/,
    );
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

describe('apply failures, pod problems and verification in status (issue 10, issue 12)', () => {
  const ready = {
    ...base,
    deployment: { replicas: 1, readyReplicas: 1, generation: 1, observedGeneration: 1 },
    service: { clusterIP: '10.96.0.5' },
  };
  const cond = (s: ReturnType<typeof computeStatus>, type: string) => s.conditions!.find((c) => c.type === type)!;

  it('a refused child: Failed, Ready=False and ChildrenApplied=False with reason ApplyFailed and the apiserver message; recovers', () => {
    const msg = 'admission webhook "x" denied the request: no';
    const s = computeStatus(
      { ...ready, applyFailures: [{ kind: 'Deployment', name: 'demo', message: msg }] },
      undefined,
      T0,
    );
    expect(s.phase).toBe('Failed');
    expect(cond(s, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ApplyFailed',
      message: `Applying children failed: Deployment demo: ${msg}`,
    });
    expect(cond(s, 'ChildrenApplied')).toMatchObject({
      status: 'False',
      reason: 'ApplyFailed',
      message: `Deployment demo: ${msg}`,
    });
    expect(cond(s, 'DeploymentReady').status).toBe('True'); // the old pods still run: the status says so
    expect(s.endpoint).toBeUndefined();
    const back = computeStatus(ready, s, T1);
    expect(back.phase).toBe('Ready');
    expect(cond(back, 'ChildrenApplied')).toMatchObject({ status: 'True', lastTransitionTime: T1 });
  });

  it('a pod problem is the reason of DeploymentReady and Ready while the Deployment is not ready', () => {
    const pods = { reason: 'Unschedulable', message: 'pod demo-1: 0/1 nodes are available: 1 Insufficient cpu.' };
    const s = computeStatus({ ...ready, deployment: { replicas: 1, readyReplicas: 0 }, pods }, undefined, T0);
    expect(s.phase).toBe('Pending');
    expect(cond(s, 'DeploymentReady')).toMatchObject({
      status: 'False',
      reason: 'Unschedulable',
      message: `Deployment has 0/1 ready replicas: ${pods.message}`,
    });
    expect(cond(s, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Unschedulable',
      message: `Deployment is not ready: ${pods.message}`,
    });
    // Once ready, a stale problem (e.g. an old pod's) is not reported.
    expect(cond(computeStatus({ ...ready, pods }, undefined, T0), 'DeploymentReady').reason).toBe('DeploymentReady');
  });

  const ok: HandshakeResult = {
    ok: true,
    reason: 'Verified',
    message: 'MCP handshake succeeded',
    durationMs: 5,
    serverInfo: {
      name: 'kubemcp',
      version: '0.1.0',
      protocolVersion: '2025-11-25',
      capabilities: ['prompts', 'resources', 'tools'],
    },
    tools: { count: 2, names: ['a', 'b'], hash: '0123456789abcdef' },
    prompts: { count: 1 },
  };
  it('HTTP with verification: Ready needs Verified=True; serverInfo, tools and prompts from the handshake', () => {
    const s = computeStatus({ ...ready, verify: { state: 'checked', result: ok, inFlight: false } }, undefined, T0);
    expect(s.phase).toBe('Ready');
    expect(cond(s, 'Verified')).toMatchObject({ status: 'True', reason: 'Verified' });
    expect(s).toMatchObject({ serverInfo: ok.serverInfo, tools: ok.tools, prompts: { count: 1 } });
    expect(s.resources).toBeUndefined();
    for (const [verify, reason] of [
      [{ state: 'waiting' }, 'WaitingForPods'],
      [{ state: 'checked', inFlight: true }, 'Verifying'],
    ] as const) {
      const p = computeStatus({ ...ready, verify }, undefined, T0);
      expect(p.phase).toBe('Pending');
      expect(cond(p, 'Verified')).toMatchObject({ status: 'Unknown', reason });
      expect(cond(p, 'Ready')).toMatchObject({ status: 'False', reason });
    }
  });

  it('a failed handshake: Verified=False with its reason; ProtocolError/AuthRequired Failed, others Pending; discovery kept from the last success', () => {
    const first = computeStatus({ ...ready, verify: { state: 'checked', result: ok, inFlight: false } }, undefined, T0);
    for (const [reason, phase] of [
      ['ProtocolError', 'Failed'],
      ['AuthRequired', 'Failed'],
      ['Timeout', 'Pending'],
      ['ConnectionFailed', 'Pending'],
      ['HTTPError', 'Pending'],
    ] as const) {
      const s = computeStatus(
        {
          ...ready,
          verify: { state: 'checked', result: { ok: false, reason, message: 'm', durationMs: 1 }, inFlight: false },
        },
        first,
        T1,
      );
      expect(s.phase).toBe(phase);
      expect(cond(s, 'Verified')).toMatchObject({ status: 'False', reason, message: 'm' });
      expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason, message: 'MCP handshake: m' });
      expect(s.tools).toEqual(ok.tools);
    }
  });

  it('stdio is not handshaken', () => {
    const s = computeStatus(
      {
        ...base,
        spec: parseMCPServerSpec({ image: 'x', transport: 'stdio' }),
        deployment: { replicas: 1, readyReplicas: 1 },
        verify: { state: 'waiting' },
      },
      undefined,
      T0,
    );
    expect(s.phase).toBe('Ready');
    expect(cond(s, 'Verified')).toMatchObject({ status: 'Unknown', reason: 'NotApplicable' });
    expect(s.url).toBeUndefined();
  });
});

describe('foreign list entries (issue 10, part 1)', () => {
  const obj: MCPServerObject = {
    apiVersion: 'mcp.example.com/v1alpha1',
    kind: 'MCPServer',
    metadata: { name: 'demo', namespace: 'ns', uid: '1' },
    spec: { image: 'x', port: 3001 },
  };
  const [svc, dep] = desiredChildren(obj).map((c) => JSON.parse(JSON.stringify(c)));

  it("the issue's Service port patch: the foreign 9999 entry goes, the rendered 3001 entry comes back", () => {
    const live = structuredClone(svc);
    live.spec.clusterIP = '10.0.0.1';
    live.spec.ports = [{ name: 'mcp', port: 9999, targetPort: 'mcp', protocol: 'TCP' }];
    const { found, replace } = foreignListEntries(svc, live);
    expect(found).toEqual([{ pointer: '/spec/ports', path: 'spec.ports', entries: ['port=9999'] }]);
    expect(replace).toEqual([{ pointer: '/spec/ports', value: svc.spec.ports }]);
  });

  it('env, container ports, volumeMounts: the innermost list is replaced, live values of wanted entries kept', () => {
    const live = structuredClone(dep);
    const c = live.spec.template.spec.containers[0];
    c.terminationMessagePath = '/dev/termination-log';
    c.env.push({ name: 'FOO', value: 'bar' });
    c.ports.push({ name: 'extra', containerPort: 9999, protocol: 'TCP' });
    live.spec.template.spec.volumes.push({ name: 'cache', emptyDir: {} });
    live.spec.template.spec.tolerations = [{ key: 'k', operator: 'Exists' }]; // a list render does not set: kept
    const { found, replace } = foreignListEntries(dep, live);
    expect(found.map((f) => `${f.path} ${f.entries}`)).toEqual([
      'spec.template.spec.containers[name=mcp-server].env name=FOO',
      'spec.template.spec.containers[name=mcp-server].ports containerPort=9999',
      'spec.template.spec.volumes name=cache',
    ]);
    expect(replace.map((r) => r.pointer)).toEqual([
      '/spec/template/spec/containers/0/env',
      '/spec/template/spec/containers/0/ports',
      '/spec/template/spec/volumes',
    ]);
    expect(replace[0]!.value).toEqual(dep.spec.template.spec.containers[0].env);
  });

  it('a foreign container: the containers list is replaced (with the wanted container as live), nested fixes folded in', () => {
    const live = structuredClone(dep);
    live.spec.template.spec.containers[0].env.push({ name: 'FOO', value: 'bar' });
    live.spec.template.spec.containers[0].terminationMessagePolicy = 'File';
    live.spec.template.spec.containers.unshift({ name: 'sidecar', image: 'busybox' });
    const { replace } = foreignListEntries(dep, live);
    expect(replace.map((r) => r.pointer)).toEqual(['/spec/template/spec/containers']);
    const value = replace[0]!.value as Sure<k8s.V1Container[]>;
    expect(value.map((c) => c.name)).toEqual(['mcp-server', 'mcp-gateway']);
    expect(value[0].terminationMessagePolicy).toBe('File');
    expect(value[0].env).toEqual(dep.spec.template.spec.containers[0].env);
  });

  it('an enforced list the desired object does not set (the init container of a server that lost its bridge) is emptied with the volumes it mounts', () => {
    const mk = (spec: object) => ({ ...obj, spec });
    const json = (o: unknown) => JSON.parse(JSON.stringify(o));
    const bridgedDep = json(
      desiredChildren(mk({ image: 'x', transport: 'stdio', command: ['node', 's.js'] })).find(
        (o) => o.kind === 'Deployment',
      ),
    );
    const plainDep = json(desiredChildren(mk({ image: 'x', transport: 'stdio' })).find((o) => o.kind === 'Deployment'));
    const { found, replace } = foreignListEntries(plainDep, structuredClone(bridgedDep));
    const paths = found.map((f) => `${f.path} ${f.entries}`);
    expect(paths).toHaveLength(4);
    expect(paths).toEqual(
      expect.arrayContaining([
        'spec.template.spec.containers[name=mcp-server].volumeMounts mountPath=/bridge',
        'spec.template.spec.containers name=mcp-bridge',
        'spec.template.spec.volumes name=bridge,name=session-keys',
        'spec.template.spec.initContainers name=bridge-init',
      ]),
    );
    expect(replace.find((r) => r.pointer === '/spec/template/spec/initContainers')!.value).toEqual([]);
  });

  it('nothing foreign: nothing to replace (ownerReferences and annotations of others are never touched)', () => {
    const live = structuredClone(dep);
    live.metadata.ownerReferences.push({ apiVersion: 'v1', kind: 'X', name: 'y', uid: '2' });
    live.metadata.annotations.foreign = 'kept';
    expect(foreignListEntries(dep, live)).toEqual({ found: [], replace: [] });
  });
});

describe('podProblem (issue 12)', () => {
  // Fixtures carry only the status fields podProblem reads.
  const pod = (name: string, status: object): k8s.V1Pod => ({ metadata: { name }, status: status as k8s.V1PodStatus });
  const waiting = (reason: string, message = '', extra: object = {}) => ({
    containerStatuses: [
      { name: 'mcp-server', ready: false, restartCount: 3, state: { waiting: { reason, message } }, ...extra },
    ],
  });

  it("Unschedulable with the scheduler's message", () => {
    const p = podProblem([
      pod('a', {
        phase: 'Pending',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: '0/1 nodes are available: 1 Insufficient cpu.',
          },
        ],
      }),
    ]);
    expect(p).toEqual({ reason: 'Unschedulable', message: 'pod a: 0/1 nodes are available: 1 Insufficient cpu.' });
  });
  it('image pull reasons, CrashLoopBackOff, OOMKilled (current or the cause of the back-off)', () => {
    for (const r of ['ImagePullBackOff', 'ErrImagePull', 'ErrImageNeverPull']) {
      expect(podProblem([pod('a', waiting(r, `Back-off pulling image "x"`))])).toEqual({
        reason: r,
        message: `pod a: container mcp-server: ${r}: Back-off pulling image "x"`,
      });
    }
    const crash = podProblem([
      pod(
        'a',
        waiting('CrashLoopBackOff', 'back-off 40s', { lastState: { terminated: { exitCode: 1, reason: 'Error' } } }),
      ),
    ]);
    expect(crash).toEqual({
      reason: 'CrashLoopBackOff',
      message: 'pod a: container mcp-server: CrashLoopBackOff (last exit code 1, Error, 3 restarts): back-off 40s',
    });
    const oomLoop = podProblem([
      pod(
        'a',
        waiting('CrashLoopBackOff', 'back-off', { lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }),
      ),
    ]);
    expect(oomLoop!.reason).toBe('OOMKilled');
    expect(oomLoop!.message).toContain('exit code 137');
    const oomNow = podProblem([
      pod('a', {
        containerStatuses: [
          { name: 'mcp-server', restartCount: 0, state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } },
        ],
      }),
    ]);
    expect(oomNow!.reason).toBe('OOMKilled');
  });
  it('ranks causes, counts pods sharing the top one, ignores terminating and healthy pods', () => {
    const unsched = {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'no' }],
    };
    const p = podProblem([
      pod('b', waiting('CrashLoopBackOff')),
      pod('c', unsched),
      pod('d', unsched),
      { ...pod('e', waiting('ErrImagePull')), metadata: { name: 'e', deletionTimestamp: new Date() } },
    ]);
    expect(p).toEqual({ reason: 'Unschedulable', message: 'pod c: no (and 1 more pod)' });
    expect(
      podProblem([
        pod('ok', {
          phase: 'Running',
          containerStatuses: [{ name: 'x', ready: true, restartCount: 0, state: { running: {} } }],
        }),
      ]),
    ).toBeUndefined();
    expect(podProblem([])).toBeUndefined();
  });
});

describe('handshake failure classification', () => {
  it('401/403 AuthRequired with the WWW-Authenticate hint; 503 Status from the service proxy ConnectionFailed; other HTTP errors; refused connections; timeouts; the rest ProtocolError', () => {
    expect(classify(new Error('x'), { status: 401, wwwAuthenticate: 'Bearer realm="kubemcp"' }, 1000)).toEqual({
      ok: false,
      reason: 'AuthRequired',
      message: 'HTTP 401: the server requires authorization; WWW-Authenticate: Bearer realm="kubemcp"',
    });
    expect(classify(new Error('x'), { status: 403 }, 1000).reason).toBe('AuthRequired');
    const proxy = classify(
      new Error('x'),
      { status: 503, body: JSON.stringify({ kind: 'Status', message: 'no endpoints available for service "demo"' }) },
      1000,
    );
    expect(proxy).toMatchObject({
      reason: 'ConnectionFailed',
      message: expect.stringContaining('no endpoints available for service "demo"'),
    });
    expect(classify(new Error('x'), { status: 404, body: 'Not Found' }, 1000)).toMatchObject({
      reason: 'HTTPError',
      message: 'HTTP 404: Not Found',
    });
    expect(
      classify(
        Object.assign(new TypeError('fetch failed'), {
          cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' },
        }),
        undefined,
        1000,
      ).reason,
    ).toBe('ConnectionFailed');
    expect(classify(new McpError(ErrorCode.RequestTimeout, 'Request timed out'), { status: 200 }, 1000)).toMatchObject({
      reason: 'Timeout',
      message: 'no complete MCP handshake within 1000 ms',
    });
    expect(classify(new Error('Unexpected content type: text/html'), { status: 200 }, 1000)).toMatchObject({
      reason: 'ProtocolError',
      message: 'not an MCP server: Unexpected content type: text/html',
    });
  });
});

describe('informer cache transforms (controller/transform.ts)', () => {
  const fullPod = () => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'p',
      namespace: 'ns',
      uid: 'u',
      resourceVersion: '7',
      labels: { 'app.kubernetes.io/instance': 'm' },
      annotations: { a: 'b' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'r' }],
      managedFields: [{ manager: 'kube-controller-manager' }],
      deletionTimestamp: new Date(0),
    },
    spec: { containers: [{ name: 'mcp-server', image: 'x' }], volumes: [{ name: 'v' }] },
    status: {
      phase: 'Pending',
      hostIP: '10.0.0.1',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'no' }],
      containerStatuses: [
        { name: 'mcp-server', ready: false, restartCount: 1, state: { waiting: { reason: 'CrashLoopBackOff' } } },
      ],
    },
  });

  it('a pod keeps what podProblem and the ready-pod list read, and loses its spec', () => {
    const live = fullPod();
    const trimmed = trimForCache('Pod', fullPod() as unknown as k8s.V1Pod);
    expect(trimmed.spec).toBeUndefined();
    expect(trimmed.metadata).toEqual({
      name: 'p',
      namespace: 'ns',
      uid: 'u',
      resourceVersion: '7',
      labels: { 'app.kubernetes.io/instance': 'm' },
      deletionTimestamp: new Date(0),
    });
    expect(trimmed.status).toEqual({
      phase: 'Pending',
      conditions: live.status.conditions,
      containerStatuses: live.status.containerStatuses,
    });
    const alive = (p: k8s.V1Pod) => ({ ...p, metadata: { ...p.metadata, deletionTimestamp: undefined } });
    expect(podProblem([alive(trimmed)])).toEqual(podProblem([alive(live as unknown as k8s.V1Pod)]));
    expect(podProblem([alive(trimmed)])!.reason).toBe('Unschedulable');
  });

  it('a Deployment keeps its spec and replica counts, not managedFields or status conditions; other kinds keep all but managedFields', () => {
    const dep = trimForCache('Deployment', {
      metadata: { name: 'd', managedFields: [{}] },
      spec: { replicas: 1 },
      status: { replicas: 1, readyReplicas: 1, observedGeneration: 2, conditions: [{ type: 'Available' }] },
    } as never) as unknown;
    expect(dep).toEqual({
      metadata: { name: 'd' },
      spec: { replicas: 1 },
      status: { replicas: 1, readyReplicas: 1, observedGeneration: 2 },
    });
    const cm = trimForCache('ConfigMap', {
      metadata: { name: 'c', managedFields: [{}], annotations: { x: 'y' } },
      data: { a: 'b' },
    } as never) as unknown;
    expect(cm).toEqual({ metadata: { name: 'c', annotations: { x: 'y' } }, data: { a: 'b' } });
  });
});
