/**
 * What a kubectl user sees, with the real kubectl built beside the control plane
 * (cluster/build.sh): `kubectl get mcps` printer columns and categories, and
 * `kubectl scale mcps` reaching the Deployment through the scale subresource and the controller.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Controller } from '../../controller/controller.js';
import { readState } from '../../cluster/index.js';
import { apply, createNamespace, installCrd, kubeConfig, parseTable, waitFor } from '../kube.js';
import { MCPS_COLUMNS } from '../shapes.js';

const kc = kubeConfig();
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
let ns: string;
let controller: Controller;
const kubectl = (...args: string[]) =>
  execFileSync(join(readState()!.binDir, 'kubectl'), ['--kubeconfig', process.env.KUBECONFIG!, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });

beforeAll(async () => {
  await installCrd(kc);
  ns = await createNamespace(kc, 'kubectl');
  controller = new Controller({
    kubeConfig: kc,
    log: pino({ level: 'silent' }),
    namespace: ns,
    resyncPeriodMs: 3_600_000,
    verify: 'off',
  });
  await controller.start();
  await apply(objects, {
    apiVersion: 'mcp.example.com/v1alpha1',
    kind: 'MCPServer',
    metadata: { name: 'cli', namespace: ns },
    spec: { image: 'img:1', port: 3001 },
  });
  await waitFor(
    'cli Ready',
    async () => kubectl('get', 'mcps', 'cli', '-n', ns, '-o', 'jsonpath={.status.phase}') === 'Ready',
    60_000,
  );
});
afterAll(async () => {
  await controller?.stop();
  await kc
    .makeApiClient(k8s.CoreV1Api)
    .deleteNamespace({ name: ns })
    .catch(() => undefined);
});

describe('kubectl', () => {
  it('`kubectl get mcps` shows Phase, Ready, Replicas, Transport, Verified, Tools, Reason, Endpoint, Auth, Age; `kubectl get ai,mcp` finds it', () => {
    const [header, row] = kubectl('get', 'mcps', '-n', ns).trim().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(MCPS_COLUMNS);
    // Verification is off here (kwok pods serve nothing): Verified says Unknown, there is no tool count.
    expect(row).toBeDefined();
    const { AGE, ...cells } = parseTable(kubectl('get', 'mcps', '-n', ns))[0]!;
    expect(AGE).toMatch(/^\d+s$/);
    expect(cells).toEqual({
      NAME: 'cli',
      PHASE: 'Ready',
      READY: '1',
      REPLICAS: '1',
      TRANSPORT: 'streamable-http',
      VERIFIED: 'Unknown',
      TOOLS: '',
      REASON: 'MCPServerReady',
      ENDPOINT: `http://cli.${ns}.svc.cluster.local:3001`,
      AUTH: 'KubernetesAuth',
    });
    expect(kubectl('get', 'ai', '-n', ns, '-o', 'name').trim()).toBe('mcpserver.mcp.example.com/cli');
    expect(kubectl('get', 'mcp', '-n', ns, '-o', 'name').trim()).toBe('mcpserver.mcp.example.com/cli');
  });

  it('`kubectl scale mcps cli --replicas=3` reaches the Deployment', async () => {
    expect(kubectl('scale', 'mcps', 'cli', '-n', ns, '--replicas=3').trim()).toBe(
      'mcpserver.mcp.example.com/cli scaled',
    );
    await waitFor(
      '3 ready replicas',
      async () => kubectl('get', 'deployment', 'cli', '-n', ns, '-o', 'jsonpath={.status.readyReplicas}') === '3',
      60_000,
    );
    await waitFor(
      'status.replicas 3',
      async () =>
        kubectl('get', 'mcps', 'cli', '-n', ns, '-o', 'jsonpath={.status.readyReplicas}/{.status.replicas}') === '3/3',
      30_000,
    );
  });

  it('`kubectl apply` of an invalid manifest is refused naming the field', () => {
    let message = '';
    try {
      execFileSync(
        join(readState()!.binDir, 'kubectl'),
        ['--kubeconfig', process.env.KUBECONFIG!, 'apply', '-n', ns, '-f', '-'],
        {
          input: JSON.stringify({
            apiVersion: 'mcp.example.com/v1alpha1',
            kind: 'MCPServer',
            metadata: { name: 'bad' },
            spec: { image: 'x', transport: 'grpc' },
          }),
          encoding: 'utf8',
          stdio: 'pipe',
          timeout: 30_000,
        },
      );
    } catch (err) {
      message = String((err as { stderr?: string }).stderr);
    }
    expect(message).toMatch(
      /spec\.transport: Unsupported value: "grpc": supported values: "stdio", "http", "streamable-http"/,
    );
  });
});
