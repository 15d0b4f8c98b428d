/**
 * `npm run demo:down` leaves nothing running (issue 20): with a pod running on the real node, the
 * demo's own `down` command (`tsx demo.ts down`, what `npm run demo:down` runs) stops the cluster,
 * and then nothing of it is left: no process the cluster recorded, no containerd shim of its
 * socket, no process of a container it ran, no network namespace or host interface of the real
 * node, no mount under the cluster's directory. Then the cluster is started again (the same
 * `clusterUp` the test setup uses), so whoever runs the tests gets it back.
 *
 * A fault test that stops everything: its name has "restart" in it, so test/sequencer.cjs runs it
 * after every other test. Skipped, with the reason printed, where the machine cannot run the real node.
 */
import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import {
  CLUSTER_DIR,
  CONTAINERD_SOCKET,
  REPO_ROOT,
  clusterUp,
  isProcessRunning,
  readState,
  realNodeNamespace,
  realNodeStatus,
} from '../../cluster/index.js';
import { shimPids } from '../../cluster/realnode/index.js';
import { ensureImagesLoaded } from '../../images/cluster.js';
import { KUBEMCP_IMAGE } from '../../images/images.js';
import { kubeConfig, waitFor } from '../kube.js';

const run = promisify(execFile);
const status = realNodeStatus();
const skip = !status.available && status.reason?.kind === 'unsupported';
if (skip) process.stderr.write(`SKIPPED demo:down leftovers test: ${status.reason?.message}\n`);
const describeReal = skip ? describe.skip : describe;

/**
 * Whether `pid` runs: it exists and is not a zombie. A process down killed is a zombie until its
 * parent (here pid 1 of the machine, once its starter is gone) reaps it: it holds no memory, file,
 * socket or mount then, only its pid entry, and `kill(pid, 0)` still succeeds on it (the first
 * run of this test counted those as left).
 */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
};
/** Mount points under `dir` in this mount namespace (/proc/self/mountinfo, field 5). */
const mountsUnder = (dir: string) =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
/** Pids of the processes running under `shim` (its descendants, from /proc). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

describeReal('npm run demo:down leaves nothing of the cluster running', () => {
  it('after down: no process, shim, container, netns, interface or mount of the cluster; then it starts again', async () => {
    // A pod on the real node, so that there are containers, shims and a pod network namespace.
    ensureImagesLoaded({ output: 'pipe', log: () => undefined });
    const kc = kubeConfig();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const ns = `down-${process.pid}`;
    await core.createNamespace({ body: realNodeNamespace(ns) });
    await waitFor(
      `default ServiceAccount in ${ns}`,
      async () =>
        (await core.readNamespacedServiceAccount({ name: 'default', namespace: ns }).catch(() => undefined)) !==
        undefined,
      120_000,
    );
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'sleeper' },
        spec: {
          containers: [
            {
              name: 'main',
              image: KUBEMCP_IMAGE,
              imagePullPolicy: 'Never',
              command: ['node', '-e', 'setInterval(() => {}, 1000)'],
              resources: { requests: { cpu: '10m', memory: '32Mi' } },
            },
          ],
        },
      },
    });
    await waitFor(
      'the pod running',
      async () => (await core.readNamespacedPod({ name: 'sleeper', namespace: ns })).status?.phase === 'Running',
      180_000,
      1000,
    );

    const state = readState()!;
    const net = state.realNode?.network;
    expect(net).toBeDefined();
    const shims = shimPids(CONTAINERD_SOCKET);
    expect(shims.length).toBeGreaterThan(0);
    const containerPids = shims.flatMap(descendants);
    expect(containerPids.length).toBeGreaterThan(0);
    expect(fs.existsSync(`/run/netns/${net!.netns}`)).toBe(true);
    expect(fs.existsSync(`/sys/class/net/${net!.hostIf}`)).toBe(true);
    expect(mountsUnder(CLUSTER_DIR).length).toBeGreaterThan(0); // the pods' netns, volumes, rootfs
    const recorded = state.processes.map((p) => p.pid);

    // Exactly what `npm run demo:down` runs.
    const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
    const { stdout, stderr } = await run(tsx, ['demo.ts', 'down'], { cwd: REPO_ROOT, timeout: 240_000 });
    process.stderr.write(`demo:down: ${(stdout + stderr).trim().split('\n').slice(-3).join(' | ')}\n`);

    const left = {
      processes: recorded.filter(alive),
      shims: shimPids(CONTAINERD_SOCKET),
      containerProcesses: containerPids.filter(alive),
      netns: fs.existsSync(`/run/netns/${net!.netns}`) ? [net!.netns] : [],
      interfaces: fs.existsSync(`/sys/class/net/${net!.hostIf}`) ? [net!.hostIf] : [],
      mounts: mountsUnder(CLUSTER_DIR),
    };
    if (Object.values(left).some((v) => v.length))
      process.stderr.write(
        `left after demo:down: ${JSON.stringify(left)} (${left.processes
          .concat(left.containerProcesses)
          .map((p) => {
            try {
              return `${p}: ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 120)}`;
            } catch {
              return `${p}: gone`;
            }
          })
          .join('; ')})\n`,
      );
    expect(left).toEqual({ processes: [], shims: [], containerProcesses: [], netns: [], interfaces: [], mounts: [] });
    expect(state.processes.every((p) => !isProcessRunning(p))).toBe(true);

    // Back up for whoever runs the tests (globalTeardown stops it if this run started it).
    await clusterUp({ log: () => undefined });
    expect(readState()?.realNode?.network).toBeDefined();
  }, 900_000);
});
