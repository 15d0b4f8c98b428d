/**
 * bridge-init and the launcher on this machine's Debian busybox-static (the package `.ci/run`
 * installs with the real node's): the static-ELF check, the launcher and FIFOs bridge-init
 * installs, and the launcher's PATH resolution. In the cluster project because it needs that
 * package, not a cluster: `npx jest --selectProjects unit` needs Node alone (issue 20).
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bridgeInit, isStaticElf } from '../../gateway/init.js';
import { launchScript } from '../../gateway/wiring.js';
import { LAUNCHER_SOURCE } from './bridge-harness.js';

describe('bridge-init and the launcher (Debian busybox-static on this machine)', () => {
  it('tells a static from a dynamic executable', () => {
    expect(isStaticElf(LAUNCHER_SOURCE)).toBe(true);
    expect(isStaticElf(process.execPath)).toBe(false);
    const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-elf-'));
    try {
      writeFileSync(path.join(dir, 'script'), '#!/bin/sh\n');
      expect(() => isStaticElf(path.join(dir, 'script'))).toThrow(/not an ELF executable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('installs the launcher and FIFOs (mode 0666), is idempotent, replaces a non-FIFO, refuses a dynamic launcher', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-init-'));
    try {
      const p = bridgeInit({ dir, launcherSource: LAUNCHER_SOURCE });
      expect(lstatSync(p.stdin).isFIFO()).toBe(true);
      expect(lstatSync(p.stdout).isFIFO()).toBe(true);
      expect(statSync(p.stdin).mode & 0o777).toBe(0o666);
      expect(statSync(p.launcher).mode & 0o777).toBe(0o555);
      const ino = statSync(p.stdin).ino;
      rmSync(p.stdout);
      writeFileSync(p.stdout, 'not a fifo');
      bridgeInit({ dir, launcherSource: LAUNCHER_SOURCE });
      expect(statSync(p.stdin).ino).toBe(ino);
      expect(lstatSync(p.stdout).isFIFO()).toBe(true);
      expect(() => bridgeInit({ dir, launcherSource: process.execPath })).toThrow(
        /dynamically linked: .* static busybox/,
      );
      expect(() => bridgeInit({ dir, launcherSource: '/nonexistent/busybox' })).toThrow(
        /--launcher-source \/nonexistent\/busybox does not exist/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the launcher resolves the command through PATH (not busybox applets), passes the args as given, exits 127 when not found', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-launch-'));
    try {
      bridgeInit({ dir, launcherSource: LAUNCHER_SOURCE });
      const bin = path.join(dir, 'pathbin');
      execFileSync(LAUNCHER_SOURCE, ['mkdir', '-p', bin]);
      // A `cat` on PATH that is not busybox's applet: the launcher must run this one.
      writeFileSync(path.join(bin, 'cat'), '#!/bin/sh\necho "argv0=$0 args=$*"\n', { mode: 0o755 });
      // Run the launcher with the FIFOs replaced by regular files, to see what it execs.
      const script = launchScript(dir).replace(`<"${dir}/stdin" >"${dir}/stdout"`, '');
      const out = execFileSync(path.join(dir, 'bin/busybox'), ['sh', '-c', script, 'cat', 'a', 'b c'], {
        env: { PATH: `${bin}:/usr/bin:/bin` },
      }).toString();
      expect(out.trim()).toBe('argv0=' + path.join(bin, 'cat') + ' args=a b c');
      let status = 0;
      let stderr = '';
      try {
        execFileSync(path.join(dir, 'bin/busybox'), ['sh', '-c', script, 'no-such-mcp-server'], {
          env: { PATH: bin },
          stdio: 'pipe',
        });
      } catch (err) {
        status = (err as { status: number }).status;
        stderr = String((err as { stderr: Buffer }).stderr);
      }
      expect(status).toBe(127);
      expect(stderr).toContain('kubemcp launcher: no-such-mcp-server: not found in PATH');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
