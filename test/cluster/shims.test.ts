/**
 * cluster/realnode's killShims, which `cluster:down` / `demo:down` run after stopping containerd
 * (issue 20: four containerd-shim-runc-v2 processes of a stopped cluster were left running). A
 * stand-in shim (sh with a shim's argv[0] and `-address <socket>`, a child under it) is found by
 * its socket, killed with its child, and a shim of another socket is left alone. Node alone.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { killShims, shimPids } from '../../cluster/realnode/index.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A process whose argv is `containerd-shim-runc-v2 -c <script> x -address <socket>`, with a `sleep` child. */
function fakeShim(socket: string): ChildProcess {
  const c = spawn('sh', ['-c', 'sleep 30 & wait', 'x', '-address', socket], {
    argv0: 'containerd-shim-runc-v2',
    stdio: 'ignore',
  });
  started.push(c);
  return c;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('killShims', () => {
  it("kills the shims of this node's socket and what runs under them, not another node's", async () => {
    const mine = `/tmp/kubemcp-shim-test-${process.pid}/containerd.sock`;
    const other = `${mine}.other`;
    const a = fakeShim(mine);
    const b = fakeShim(other);
    // Wait (bounded) until sh has started its sleep child.
    for (let i = 0; i < 50 && shimPids(mine).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    expect(shimPids(mine)).toEqual([a.pid]);
    const exited = new Promise((r) => a.once('exit', r));
    const out = await killShims(mine);
    expect(out).toEqual({ killed: 1, left: [] });
    await exited;
    expect(a.signalCode).toBe('SIGKILL');
    expect(shimPids(mine)).toEqual([]);
    expect(alive(b.pid!)).toBe(true);
    expect(shimPids(other)).toEqual([b.pid]);
    b.kill('SIGKILL');
  });
});
