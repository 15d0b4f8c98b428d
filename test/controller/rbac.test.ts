/**
 * The operator chart's RBAC is enough for the controller, and no more than it needs: the
 * controller runs with a token of the chart's ServiceAccount (TokenRequest API), with leader
 * election in mcp-system, and reconciles an MCPServer to Ready; the same identity is refused
 * what the chart does not grant (Secrets, writing Pods, other namespaces' Leases).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { App } from 'cdk8s';
import { pino } from 'pino';
import { CONTROLLER_NAME, OPERATOR_NAMESPACE, OperatorChart } from '../../charts/operator.js';
import type { KubeObject } from '../../charts/render.js';
import { Controller } from '../../controller/controller.js';
import { LeaderElector } from '../../controller/leader.js';
import {
  apiMessage,
  apply,
  createNamespace,
  kubeConfig,
  serviceAccountToken,
  tokenKubeConfig,
  waitFor,
} from '../kube.js';
import { mcpsApi } from './mcps.js';

const admin = kubeConfig();
const objects = k8s.KubernetesObjectApi.makeApiClient(admin);
const lines: string[] = [];
/** An RBAC denial of the chart's ServiceAccount, however many times its quotes were JSON-escaped. */
const DENIAL = /forbidden: User \W*system:serviceaccount:mcp-system:kubemcp-controller\W* cannot/;
const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
let ns: string;
let sa: k8s.KubeConfig;
let controller: Controller | undefined;
let leader: LeaderElector | undefined;

/** A KubeConfig for the chart's ServiceAccount: the admin's cluster and CA, a bound token. */
async function serviceAccountConfig(): Promise<k8s.KubeConfig> {
  return tokenKubeConfig(
    admin,
    await serviceAccountToken(admin, OPERATOR_NAMESPACE, CONTROLLER_NAME, [], 3600),
    'controller',
  );
}

beforeAll(async () => {
  for (const o of new OperatorChart(new App({ outdir: '/dev/null' }), 'operator').toJson() as KubeObject[]) {
    if (o.kind !== 'Deployment') await apply(objects, o);
  }
  await waitFor('CRD established', async () =>
    (
      await admin
        .makeApiClient(k8s.ApiextensionsV1Api)
        .readCustomResourceDefinition({ name: 'mcpservers.mcp.example.com' })
    ).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'),
  );
  ns = await createNamespace(admin, 'rbac');
  sa = await serviceAccountConfig();
});
afterAll(async () => {
  await controller?.stop();
  await leader?.stop();
  await admin
    .makeApiClient(k8s.CoreV1Api)
    .deleteNamespace({ name: ns })
    .catch(() => undefined);
});

describe('the controller under the operator chart RBAC', () => {
  it('wins the Lease in mcp-system and reconciles an MCPServer to Ready', async () => {
    let leading = false;
    leader = new LeaderElector({
      kubeConfig: sa,
      namespace: OPERATOR_NAMESPACE,
      leaseName: `rbac-test-${Date.now()}`,
      identity: 'rbac-test',
      log,
      timings: { retryPeriodMs: 500 },
      onStartedLeading: () => (leading = true),
      onStoppedLeading: () => (leading = false),
    });
    leader.start();
    await waitFor('leadership with the ServiceAccount', async () => leading, 20_000);
    // Watches all namespaces (needs the ClusterRole's list/watch), but reconciles only this suite's
    // MCPServer: other suites' MCPServers (the real-node operator's) are never touched.
    const selector = `kubemcp.test/suite=rbac-${ns}`;
    controller = new Controller({
      kubeConfig: sa,
      log,
      workers: 2,
      resyncPeriodMs: 3_600_000,
      verify: 'off',
      selector,
    });
    await controller.start();
    await apply(objects, {
      apiVersion: 'mcp.example.com/v1alpha1',
      kind: 'MCPServer',
      metadata: { name: 'rbac', namespace: ns, labels: { 'kubemcp.test/suite': `rbac-${ns}` } },
      spec: { image: 'img:1', config: { A: '1' } },
    });
    const { waitPhase } = mcpsApi(admin);
    await waitPhase(ns, 'rbac', 'Ready', undefined, 90_000);
    const events = await admin
      .makeApiClient(k8s.CoreV1Api)
      .listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=rbac,reason=Created' });
    // Events are allowed too: one per reconcile names every child it created.
    expect(events.items.map((e) => e.message).join('\n')).toMatch(
      /Created ConfigMap rbac-config, Service rbac, Deployment rbac/,
    );
    // It watches every namespace, so it also meets other suites' objects (some in namespaces being
    // deleted, which the apiserver refuses with 403 "being terminated" until they are gone); what
    // must never appear is an RBAC denial of its own identity.
    const denials = lines.filter((l) => DENIAL.test(l));
    expect(denials).toEqual([]);
  });

  it('is refused what the chart does not grant', async () => {
    const core = sa.makeApiClient(k8s.CoreV1Api);
    const secrets = await core.listNamespacedSecret({ namespace: ns }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(secrets).toMatchObject({ code: 403 });
    expect(apiMessage(secrets)).toMatch(DENIAL); // the pattern the first test looks for in the logs
    expect(JSON.stringify({ body: JSON.stringify({ message: apiMessage(secrets) }) })).toMatch(DENIAL);
    // Pods: read only (their states explain a Deployment that is not ready), never written.
    await expect(core.listNamespacedPod({ namespace: ns })).resolves.toBeDefined();
    await expect(
      core.createNamespacedPod({
        namespace: ns,
        body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'c', image: 'i' }] } },
      }),
    ).rejects.toMatchObject({ code: 403 });
    await expect(core.deleteCollectionNamespacedPod({ namespace: ns })).rejects.toMatchObject({ code: 403 });
    await expect(sa.makeApiClient(k8s.CoordinationV1Api).listNamespacedLease({ namespace: ns })).rejects.toMatchObject({
      code: 403,
    });
    await expect(
      sa.makeApiClient(k8s.CustomObjectsApi).deleteNamespacedCustomObject({
        group: 'mcp.example.com',
        version: 'v1alpha1',
        plural: 'mcpservers',
        namespace: ns,
        name: 'rbac',
      }),
    ).rejects.toMatchObject({ code: 403 });
  });
});
