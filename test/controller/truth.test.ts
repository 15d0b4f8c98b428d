/**
 * The operator tells the truth (issue 10, issue 12), on the real control plane with the real
 * kubectl: keyed-list drift owned by another manager converges to the rendered object (Service
 * port, container port, `kubectl set env`, a foreign container) with foreign fields elsewhere
 * kept; a child the apiserver refuses (a ValidatingAdmissionPolicy) shows in status at once and
 * recovers by itself; a PodDisruptionBudget follows replicas; an Unschedulable pod's scheduler
 * message is in status and `kubectl get mcps`; and protocol verification end to end through the
 * controller, with the handshakes going to real `kubemcp serve` processes on 127.0.0.1 standing
 * in for the (kwok) pods.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import type { Server } from 'node:http';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import { renderMCPServer, type KubeObject } from '../../charts/render.js';
import { Controller } from '../../controller/controller.js';
import { firstDifference, type Json } from '../../controller/drift.js';
import { readState } from '../../cluster/index.js';
import { apply, createNamespace, installCrd, kubeConfig, parseTable, waitFor } from '../kube.js';
import { byKind, MCPS_COLUMNS, type MCPS } from '../shapes.js';
import { mcpsApi } from './mcps.js';
import { closeServer, startHttp, startServe } from './servers.js';

const kc = kubeConfig();
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const policy = kc.makeApiClient(k8s.PolicyV1Api);
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
const log = pino({ level: process.env.KUBEMCP_TEST_LOG ?? 'silent' });

const kubectl = (...args: string[]) =>
  execFileSync(join(readState()!.binDir, 'kubectl'), ['--kubeconfig', process.env.KUBECONFIG!, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    stdio: 'pipe',
  });
const mk = (ns: string, name: string, spec: object) => ({
  apiVersion: 'mcp.example.com/v1alpha1',
  kind: 'MCPServer',
  metadata: { name, namespace: ns },
  spec,
});
const cond = (o: MCPS, type: string) => (o.status?.conditions ?? []).find((c) => c.type === type);
const { get: getMcps, mergePatch, waitPhase } = mcpsApi(kc);
const events = async (ns: string, name: string, reason: string) =>
  (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name},reason=${reason}` }))
    .items;
const json = (o: unknown): Json => JSON.parse(JSON.stringify(o)) as Json;

let ns: string;
let controller: Controller;

beforeAll(async () => {
  await installCrd(kc);
  ns = await createNamespace(kc, 'truth');
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
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('keyed-list drift owned by another manager converges without a spec change (issue 10, part 1)', () => {
  const spec = { image: 'img:1', transport: 'http', port: 3001, env: [{ name: 'A', value: '1' }] };
  let generation: number;
  /** The live Deployment and Service hold exactly the rendered lists and every rendered value. */
  async function converged(): Promise<boolean> {
    const rendered = renderMCPServer(mk(ns, 'lists', spec));
    const [svc, dep] = await Promise.all([
      core.readNamespacedService({ name: 'lists', namespace: ns }),
      apps.readNamespacedDeployment({ name: 'lists', namespace: ns }),
    ]);
    const want = Object.fromEntries([...rendered].reverse().map((r) => [r.kind, json(r)]));
    // (first of each kind: the Service clients reach, not the headless <name>-peers one)
    const c = dep.spec!.template.spec!.containers;
    const rd = byKind(rendered).Deployment.spec.template.spec;
    const rc: { name: string; ports?: { containerPort: number }[]; env?: { name: string }[] }[] = rd.containers;
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    // The rendered lists, entry for entry (the server container and the gateway in front of it).
    return (
      firstDifference(want.Service!, json(svc)) === undefined &&
      firstDifference(want.Deployment!, json(dep)) === undefined &&
      same(
        svc.spec!.ports!.map((p) => p.port),
        [3001],
      ) &&
      same(
        c.map((x) => x.name),
        rc.map((x) => x.name),
      ) &&
      c.every(
        (x, i) =>
          same(
            (x.ports ?? []).map((p) => p.containerPort),
            (rc[i]!.ports ?? []).map((p) => p.containerPort),
          ) &&
          same(
            (x.env ?? []).map((e) => e.name),
            (rc[i]!.env ?? []).map((e) => e.name),
          ),
      ) &&
      same(
        dep.spec!.template.spec!.volumes!.map((v) => v.name),
        (rd.volumes as { name: string }[]).map((v) => v.name),
      )
    );
  }

  beforeAll(async () => {
    await apply(objects, mk(ns, 'lists', spec));
    const o = await waitPhase(ns, 'lists', 'Ready');
    generation = o.metadata.generation!;
    // Foreign fields elsewhere, set by hand: they must survive every fix below.
    kubectl('annotate', '-n', ns, 'service/lists', 'team.example.com/owner=alice');
    kubectl('annotate', '-n', ns, 'deployment/lists', 'team.example.com/owner=alice');
  });

  afterAll(async () => {
    // The MCPServer's spec never changed; foreign annotations are still there.
    expect((await getMcps(ns, 'lists')).metadata.generation).toBe(generation);
    expect(
      (await core.readNamespacedService({ name: 'lists', namespace: ns })).metadata!.annotations![
        'team.example.com/owner'
      ],
    ).toBe('alice');
    expect(
      (await apps.readNamespacedDeployment({ name: 'lists', namespace: ns })).metadata!.annotations![
        'team.example.com/owner'
      ],
    ).toBe('alice');
  });

  it('the issue\'s Service port patch (a foreign "mcp" entry on 9999): back to the rendered 3001 entry only', async () => {
    kubectl(
      '-n',
      ns,
      'patch',
      'service',
      'lists',
      '--type=merge',
      '-p',
      '{"spec":{"ports":[{"name":"mcp","port":9999,"targetPort":"mcp"}]}}',
    );
    await waitFor('Service ports converged', converged, 30_000);
    await waitPhase(ns, 'lists', 'Ready');
    await waitFor(
      'DriftReverted event naming the port',
      async () =>
        (await events(ns, 'lists', 'DriftReverted')).some((e) => e.message!.includes('spec.ports (port=9999)')),
      15_000,
    );
  });

  it('a container port replaced by another manager: converges', async () => {
    kubectl(
      '-n',
      ns,
      'patch',
      'deployment',
      'lists',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/template/spec/containers/0/ports/0/containerPort","value":9999}]',
    );
    await waitFor('container ports converged', converged, 30_000);
    await waitPhase(ns, 'lists', 'Ready');
  });

  it('an env entry added by `kubectl set env`: removed', async () => {
    kubectl('-n', ns, 'set', 'env', 'deployment/lists', 'FOO=bar');
    await waitFor('env converged', converged, 30_000);
    // The event follows the apply that follows the fix.
    await waitFor(
      'DriftReverted event naming FOO',
      async () => (await events(ns, 'lists', 'DriftReverted')).some((e) => e.message!.includes('env (name=FOO)')),
      15_000,
    );
  });

  it('a foreign container (and its volume) added to the Deployment: removed', async () => {
    kubectl(
      '-n',
      ns,
      'patch',
      'deployment',
      'lists',
      '--type=json',
      '-p',
      JSON.stringify([
        {
          op: 'add',
          path: '/spec/template/spec/containers/-',
          value: { name: 'sidecar', image: 'busybox:1', volumeMounts: [{ name: 'extra', mountPath: '/extra' }] },
        },
        { op: 'add', path: '/spec/template/spec/volumes/-', value: { name: 'extra', emptyDir: {} } },
      ]),
    );
    await waitFor('containers converged', converged, 30_000);
    await waitPhase(ns, 'lists', 'Ready');
  });
});

describe('a child the apiserver refuses shows in status within one reconcile, and recovers by itself', () => {
  const name = `deny-blocked-${Date.now()}`;
  afterAll(async () => {
    await admission.deleteValidatingAdmissionPolicyBinding({ name }).catch(() => undefined);
    await admission.deleteValidatingAdmissionPolicy({ name }).catch(() => undefined);
  });

  it("Failed, Ready=False and ChildrenApplied=False/ApplyFailed with the apiserver's message, a Warning event; Ready again once the policy goes", async () => {
    await apply(objects, mk(ns, 'refused', { image: 'img:1' }));
    await waitPhase(ns, 'refused', 'Ready');
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: ['apps'],
                apiVersions: ['v1'],
                operations: ['CREATE', 'UPDATE'],
                resources: ['deployments'],
              },
            ],
          },
          validations: [
            {
              expression: "object.spec.template.spec.containers.all(c, !c.image.startsWith('blocked'))",
              message: 'images named blocked are not allowed here',
            },
          ],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name },
        spec: {
          policyName: name,
          validationActions: ['Deny'],
          matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
        },
      },
    });
    // The policy is in force once a dry-run of a blocked Deployment is refused.
    const probe = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'probe', namespace: ns },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'blocked:0' }] } },
      },
    };
    await waitFor(
      'policy in force',
      async () =>
        apply(objects, probe, { dryRun: true }).then(
          () => false,
          (e: { code?: number }) => e.code === 422,
        ),
      30_000,
    );

    await mergePatch(ns, 'refused', { spec: { image: 'blocked:2' } });
    const failed = await waitPhase(ns, 'refused', 'Failed', undefined, 30_000);
    expect(cond(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    const applied = cond(failed, 'ChildrenApplied');
    expect(applied).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(applied?.message).toMatch(/^Deployment refused: .*images named blocked are not allowed here/);
    // What runs is still reported as it is: the old Deployment's pods are ready.
    expect(cond(failed, 'DeploymentReady')?.status).toBe('True');
    expect(
      (await apps.readNamespacedDeployment({ name: 'refused', namespace: ns })).spec!.template.spec!.containers[0]!
        .image,
    ).toBe('img:1');
    const warnings = await events(ns, 'refused', 'ApplyFailed');
    expect(warnings[0]).toMatchObject({ type: 'Warning' });
    expect(warnings[0]!.message).toContain('images named blocked are not allowed here');
    expect(
      kubectl(
        'get',
        'mcps',
        'refused',
        '-n',
        ns,
        '-o',
        'jsonpath={.status.phase} {.status.conditions[?(@.type=="Ready")].reason}',
      ),
    ).toBe('Failed ApplyFailed');

    await admission.deleteValidatingAdmissionPolicyBinding({ name });
    const back = await waitPhase(ns, 'refused', 'Ready', (o) => cond(o, 'ChildrenApplied')?.status === 'True', 90_000);
    expect(cond(back, 'Ready')?.status).toBe('True');
    expect(
      (await apps.readNamespacedDeployment({ name: 'refused', namespace: ns })).spec!.template.spec!.containers[0]!
        .image,
    ).toBe('blocked:2');
  });
});

describe('PodDisruptionBudget (issue 10, part 3)', () => {
  it("replicas >= 2 get a PDB (maxUnavailable 1, the pods' selector, owned by the MCPServer); below 2 it is pruned", async () => {
    await apply(objects, mk(ns, 'pdb', { image: 'img:1', replicas: 2 }));
    const o = await waitPhase(ns, 'pdb', 'Ready', (x) => x.status.readyReplicas === 2);
    const pdb = await policy.readNamespacedPodDisruptionBudget({ name: 'pdb', namespace: ns });
    expect(pdb.spec!.maxUnavailable).toBe(1);
    expect(pdb.spec!.selector!.matchLabels).toEqual({
      'app.kubernetes.io/name': 'mcp-server',
      'app.kubernetes.io/instance': 'pdb',
    });
    expect(pdb.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'MCPServer', uid: o.metadata.uid, controller: true }),
    ]);
    const rendered = renderMCPServer(mk(ns, 'pdb', { image: 'img:1', replicas: 2 })).find(
      (r) => r.kind === 'PodDisruptionBudget',
    ) as KubeObject;
    expect(firstDifference(json(rendered), json(pdb))).toBeUndefined();
    // The disruption controller counts the pods it protects.
    await waitFor(
      'PDB status',
      async () =>
        (await policy.readNamespacedPodDisruptionBudget({ name: 'pdb', namespace: ns })).status?.expectedPods === 2,
      30_000,
    );
    kubectl('scale', 'mcps', 'pdb', '-n', ns, '--replicas=1');
    await waitFor(
      'PDB pruned',
      async () =>
        policy.readNamespacedPodDisruptionBudget({ name: 'pdb', namespace: ns }).then(
          () => false,
          (e: { code?: number }) => e.code === 404,
        ),
      30_000,
    );
    await waitPhase(ns, 'pdb', 'Ready', (x) => x.status.readyReplicas === 1);
    expect((await events(ns, 'pdb', 'Pruned'))[0]!.message).toBe(
      'Deleted PodDisruptionBudget pdb: no longer rendered by the spec',
    );
  });
});

describe('why pods do not run (issue 12)', () => {
  it("Unschedulable (requests larger than the kwok node): the scheduler's message in DeploymentReady and Ready, the reason in `kubectl get mcps`", async () => {
    await apply(objects, mk(ns, 'huge', { image: 'img:1', resources: { requests: { cpu: '100000' } } }));
    const o = await waitPhase(
      ns,
      'huge',
      'Pending',
      (x) => cond(x, 'DeploymentReady')?.reason === 'Unschedulable',
      60_000,
    );
    const dr = cond(o, 'DeploymentReady');
    expect(dr?.status).toBe('False');
    expect(dr?.message).toMatch(
      /^Deployment has 0\/1 ready replicas: pod huge-[a-z0-9]+-[a-z0-9]+: 0\/\d+ nodes are available: .*Insufficient cpu/,
    );
    expect(cond(o, 'Ready')).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    const out = kubectl('get', 'mcps', 'huge', '-n', ns);
    expect(out.split('\n')[0]!.split(/\s+/)).toEqual(MCPS_COLUMNS);
    expect(parseTable(out)[0]).toMatchObject({
      NAME: 'huge',
      PHASE: 'Pending',
      READY: '0',
      REASON: 'Unschedulable',
      ENDPOINT: '',
    });
    // Fixing the spec recovers.
    await mergePatch(ns, 'huge', { spec: { resources: null } });
    await waitPhase(ns, 'huge', 'Ready');
  });
});

describe('protocol verification through the controller (handshakes to real MCP servers on 127.0.0.1 standing in for the kwok pods)', () => {
  let vns: string;
  let vc: Controller;
  let full: Awaited<ReturnType<typeof startServe>>;
  let readOnly: Awaited<ReturnType<typeof startServe>>;
  let page: { url: string; server: Server };
  const targets: Record<string, string> = {};

  beforeAll(async () => {
    [full, readOnly] = await Promise.all([startServe(), startServe(['--read-only'])]);
    page = await startHttp((res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
    targets.good = full.url;
    targets.plain = page.url;
    vns = await createNamespace(kc, 'verified');
    vc = new Controller({
      kubeConfig: kc,
      log,
      namespace: vns,
      resyncPeriodMs: 3_600_000,
      verify: 'auto',
      verifyIntervalMs: 3_600_000,
      verifyTimeoutMs: 15_000,
      verifyTarget: (_ns, name) => ({ url: targets[name]! }),
    });
    await vc.start();
  }, 300_000);
  afterAll(async () => {
    await vc?.stop();
    full?.stop();
    readOnly?.stop();
    if (page) await closeServer(page.server);
    await core.deleteNamespace({ name: vns }).catch(() => undefined);
  });

  const realTools = async (url: string) => {
    const client = new Client({ name: 'test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    const tools = (await client.listTools()).tools.map((t) => t.name);
    await client.close();
    return tools;
  };
  const handshakes = async () => (await vc.metrics.handshakes.get()).values.reduce((n, v) => n + v.value, 0);

  it('an MCP server: Ready with Verified=True, serverInfo, its real tool count and names, status.url; kubectl shows Verified and Tools', async () => {
    await apply(objects, mk(vns, 'good', { image: 'img:1', port: 3001 }));
    const o = await waitPhase(vns, 'good', 'Ready', (x) => cond(x, 'Verified')?.status === 'True');
    const tools = await realTools(full.url);
    expect(o.status.tools).toMatchObject({ count: tools.length, names: tools.slice(0, 20) });
    expect(o.status.serverInfo).toMatchObject({
      name: expect.any(String),
      protocolVersion: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
      capabilities: expect.arrayContaining(['tools']),
    });
    expect(o.status.url).toBe(`http://good.${vns}.svc.cluster.local:3001/mcp`);
    expect(o.status.endpoint).toBe(`http://good.${vns}.svc.cluster.local:3001`);
    expect(cond(o, 'Ready')).toMatchObject({ status: 'True' });
    expect(parseTable(kubectl('get', 'mcps', 'good', '-n', vns))[0]).toMatchObject({
      NAME: 'good',
      PHASE: 'Ready',
      VERIFIED: 'True',
      TOOLS: String(tools.length),
      REASON: 'MCPServerReady',
    });
  });

  it('scaling re-verifies (new ready pod); a changed tool list emits a Normal ToolsChanged event', async () => {
    const before = await handshakes();
    targets.good = readOnly.url; // the "new version" of the server has fewer tools
    await mergePatch(vns, 'good', { spec: { replicas: 2 } });
    const readOnlyTools = await realTools(readOnly.url);
    const o = await waitPhase(
      vns,
      'good',
      'Ready',
      (x) => x.status.readyReplicas === 2 && x.status.tools?.count === readOnlyTools.length,
    );
    expect(await handshakes()).toBeGreaterThan(before);
    expect(cond(o, 'Verified')?.status).toBe('True');
    const changed = await waitFor(
      'ToolsChanged event',
      async () => (await events(vns, 'good', 'ToolsChanged'))[0],
      15_000,
    );
    expect(changed.type).toBe('Normal');
    expect(changed.message).toMatch(/^Tool list changed: \d+ -> \d+ tools \((added|removed) /);
  });

  it('a server that is up but not MCP: not Ready, Verified=False/ProtocolError, phase Failed', async () => {
    await apply(objects, mk(vns, 'plain', { image: 'img:1', port: 3001 }));
    const o = await waitPhase(vns, 'plain', 'Failed', (x) => cond(x, 'Verified')?.status === 'False');
    expect(cond(o, 'Verified')).toMatchObject({
      reason: 'ProtocolError',
      message: expect.stringContaining('text/html'),
    });
    expect(cond(o, 'Ready')).toMatchObject({ status: 'False', reason: 'ProtocolError' });
    expect(cond(o, 'DeploymentReady')?.status).toBe('True');
    expect(o.status.endpoint).toBeUndefined();
    expect(o.status.tools).toBeUndefined();
  });

  it('a stdio MCPServer is not handshaken', async () => {
    const before = await handshakes();
    await apply(objects, mk(vns, 'stdio', { image: 'img:1', transport: 'stdio' }));
    const o = await waitPhase(vns, 'stdio', 'Ready');
    expect(cond(o, 'Verified')).toMatchObject({ status: 'Unknown', reason: 'NotApplicable' });
    expect(o.status.url).toBeUndefined();
    expect(await handshakes()).toBe(before);
  });
});
