/**
 * The one list of Debian packages (cluster/debian-packages.txt): parsed as cluster/packages.ts
 * reads it, and the only list .ci/run and build.sh use (issue 20). Node alone: no cluster.
 */
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEBIAN_PACKAGES_FILE, debianPackages, ensureDebianPackages } from '../../cluster/packages.js';
import { REPO_ROOT } from '../../cluster/paths.js';

describe('the Debian package list', () => {
  it('parses names, skipping comments and blank lines', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubemcp-pkgs-'));
    try {
      const f = path.join(dir, 'p.txt');
      fs.writeFileSync(f, '# header\nopenssl\n\n  gcc  # for cgo\n#busybox\n');
      expect(debianPackages(f)).toEqual(['openssl', 'gcc']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('holds what the real node and the images need', () => {
    const pkgs = debianPackages();
    for (const p of ['openssl', 'containernetworking-plugins', 'libseccomp-dev', 'pkg-config', 'gcc', 'busybox-static'])
      expect(pkgs).toContain(p);
    expect(new Set(pkgs).size).toBe(pkgs.length);
  });

  it('is the list .ci/run and build.sh read (no second copy)', () => {
    const ci = fs.readFileSync(path.join(REPO_ROOT, '.ci/run'), 'utf8');
    expect(ci).toContain(path.relative(REPO_ROOT, DEBIAN_PACKAGES_FILE));
    expect(ci).not.toMatch(/pkgs="[a-z]/);
    expect(fs.readFileSync(path.join(REPO_ROOT, 'cluster/build.sh'), 'utf8')).toContain('debian-packages.txt');
  });

  it('installs nothing and reports nothing when no package is missing', () => {
    const lines: string[] = [];
    // `sh` is in every Debian base (essential); a package dpkg knows as installed.
    const out = ensureDebianPackages((l) => lines.push(l), fs.existsSync('/var/lib/dpkg') ? ['dash'] : []);
    expect(out).toEqual({ installed: [], missing: [] });
    expect(lines).toEqual([]);
  });
});
