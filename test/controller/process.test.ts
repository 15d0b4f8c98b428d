/**
 * `kubemcp controller` as real processes against the real control plane: leader election
 * (only the leader reconciles; SIGKILL it and the other takes over within the lease duration),
 * graceful shutdown on SIGTERM (lease released), health and metrics endpoints.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { apply, createNamespace, installCrd, kubeConfig, waitFor } from '../kube.js';
import { mcpsApi } from './mcps.js';

const kc = kubeConfig();
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const { waitPhase } = mcpsApi(kc);
const coord = kc.makeApiClient(k8s.CoordinationV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const root = new URL('../../', import.meta.url).pathname;
const LEASE = 'kubemcp-test-lease';
const LEASE_SECONDS = 6;

interface Proc {
  child: ChildProcess;
  lines: string[];
  identity?: string;
  healthPort?: number;
  metricsPort?: number;
}
const procs: Proc[] = [];

/** Starts `kubemcp controller` (through tsx) with leader election on a short lease, in namespace `ns`. */
function startController(ns: string): Proc {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'cli.ts',
      'controller',
      '--kubeconfig',
      process.env.KUBECONFIG!,
      '--namespace',
      ns,
      '--verify',
      'off',
      '--leader-elect',
      '--leader-election-namespace',
      ns,
      '--leader-election-id',
      LEASE,
      '--lease-duration',
      String(LEASE_SECONDS),
      '--renew-deadline',
      '4',
      '--retry-period',
      '1',
      '--health-port',
      '0',
      '--metrics-port',
      '0',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const p: Proc = { child, lines: [] };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      p.lines.push(line);
      try {
        const j = JSON.parse(line) as { identity?: string; healthPort?: number; metricsPort?: number };
        if (j.identity) p.identity = j.identity;
        if (j.healthPort) [p.healthPort, p.metricsPort] = [j.healthPort, j.metricsPort];
      } catch {
        /* not JSON */
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => p.lines.push(d.toString()));
  procs.push(p);
  return p;
}
const exited = (p: Proc) =>
  new Promise<number | null>((r) =>
    p.child.exitCode !== null || p.child.signalCode !== null
      ? r(p.child.exitCode)
      : p.child.once('exit', (code) => r(code)),
  );
const holder = async (ns: string) =>
  (await coord.readNamespacedLease({ name: LEASE, namespace: ns })).spec?.holderIdentity ?? '';

let ns: string;
beforeAll(async () => {
  await installCrd(kc);
  ns = await createNamespace(kc, 'leader');
});
afterAll(async () => {
  for (const p of procs)
    if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid) process.kill(p.child.pid, 'SIGKILL');
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('two controllers with leader election', () => {
  let a: Proc;
  let b: Proc;
  let leader: Proc;
  let standby: Proc;

  it('exactly one becomes leader and reconciles; both serve health and metrics', async () => {
    a = startController(ns);
    b = startController(ns);
    // Generous: two tsx processes compiling the CLI on a loaded 2-core machine.
    await waitFor(
      'identities and ports logged',
      async () => !!(a.identity && b.identity && a.healthPort && b.healthPort),
      150_000,
    );
    const h = await waitFor('lease held', async () => (await holder(ns)) || undefined, 30_000);
    [leader, standby] = h === a.identity ? [a, b] : [b, a];
    expect([a.identity, b.identity]).toContain(h);
    expect(leader.lines.some((l) => l.includes('became leader'))).toBe(true);
    expect(standby.lines.some((l) => l.includes('became leader'))).toBe(false);
    for (const p of [a, b]) {
      expect((await fetch(`http://127.0.0.1:${p.healthPort}/healthz`)).status).toBe(200);
      // The leader is ready once its informers synced (six of them, pods included): bounded wait.
      await waitFor(
        'readyz 200',
        async () => (await fetch(`http://127.0.0.1:${p.healthPort}/readyz`)).status === 200,
        60_000,
      );
    }
    const metrics = async (p: Proc) => (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text();
    expect(await metrics(leader)).toMatch(/^kubemcp_controller_is_leader 1$/m);
    expect(await metrics(standby)).toMatch(/^kubemcp_controller_is_leader 0$/m);

    await apply(objects, {
      apiVersion: 'mcp.example.com/v1alpha1',
      kind: 'MCPServer',
      metadata: { name: 'one', namespace: ns },
      spec: { image: 'img:1' },
    });
    await waitPhase(ns, 'one', 'Ready', undefined, 60_000);
    expect(await metrics(leader)).toMatch(/^kubemcp_controller_reconcile_total\{result="success"\} [1-9]/m);
    expect(await metrics(standby)).not.toMatch(/^kubemcp_controller_reconcile_total\{result="success"\} [1-9]/m);
  }, 300_000);

  it('SIGKILL the leader: the standby takes over within the lease duration and reconciles', async () => {
    const killedAt = Date.now();
    process.kill(leader.child.pid!, 'SIGKILL');
    await waitFor(
      'standby holds the lease',
      async () => (await holder(ns)) === standby.identity,
      (LEASE_SECONDS + 6) * 1000,
      200,
    );
    const takeoverMs = Date.now() - killedAt;
    // Expiry is judged from when the standby last saw the record change (<= 1 retry period before the kill).
    expect(takeoverMs).toBeLessThan((LEASE_SECONDS + 2) * 1000);
    await apply(objects, {
      apiVersion: 'mcp.example.com/v1alpha1',
      kind: 'MCPServer',
      metadata: { name: 'two', namespace: ns },
      spec: { image: 'img:1', transport: 'stdio' },
    });
    await waitPhase(ns, 'two', 'Ready', undefined, 60_000);
  });

  it('SIGTERM: graceful shutdown releases the lease and exits 0', async () => {
    process.kill(standby.child.pid!, 'SIGTERM');
    expect(await exited(standby)).toBe(0);
    expect(await holder(ns)).toBe('');
    expect(standby.lines.some((l) => l.includes('released the leader-election lease'))).toBe(true);
  });
});
