/**
 * The Debian packages the local cluster needs (cluster/debian-packages.txt, the one list that
 * .ci/run reads too), and their installation before the cluster's binaries are built: as root,
 * missing ones are installed with apt-get after one line saying what and why; without root, the
 * exact `apt-get install` line is printed and the cluster goes on with what it can run (kwok's
 * node only when the real node's packages are missing). Issue 20: "the two commands do all the
 * set-up".
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLUSTER_SRC_DIR } from './paths.js';

/** The package list's path. */
export const DEBIAN_PACKAGES_FILE = path.join(CLUSTER_SRC_DIR, 'debian-packages.txt');

/**
 * The packages of {@link DEBIAN_PACKAGES_FILE}: one name per line, `#` comments and blank lines skipped.
 * @throws Error when the file cannot be read.
 */
export function debianPackages(file: string = DEBIAN_PACKAGES_FILE): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** The packages of `names` that dpkg does not report as installed (all of them where there is no dpkg). */
export function missingPackages(names: readonly string[]): string[] {
  return names.filter((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status !== 0);
}

/** What {@link ensureDebianPackages} did. */
export interface PackagesOutcome {
  /** Packages installed by this call. */
  installed: string[];
  /** Packages still missing (not root, no apt-get, or apt-get failed). */
  missing: string[];
}

/**
 * Installs the missing packages of the list when this process is root and apt-get exists
 * (`apt-get update`, then `apt-get install -y`), printing one line first; otherwise prints the
 * command to run and returns what is missing. Never throws: the cluster decides what it can
 * still run (build.sh skips the real node when runc cannot be built).
 * @param log one line at a time (stderr by default).
 */
export function ensureDebianPackages(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  names: readonly string[] = debianPackages(),
): PackagesOutcome {
  const missing = missingPackages(names);
  if (!missing.length) return { installed: [], missing: [] };
  const aptGet = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (process.getuid?.() !== 0 || !aptGet) {
    log(
      `[cluster] missing Debian packages the local cluster needs (${DEBIAN_PACKAGES_FILE}); install them with: sudo apt-get install -y ${missing.join(' ')}`,
    );
    return { installed: [], missing };
  }
  log(`[cluster] installing ${missing.join(' ')} with apt-get: the local cluster's real node and images need them`);
  const opts = { stdio: ['ignore', 'ignore', 'inherit'] as ('ignore' | 'inherit')[], timeout: 15 * 60_000 };
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { ...opts, env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { ...opts, env });
  const still = missingPackages(missing);
  if (r.status !== 0 || still.length)
    log(`[cluster] apt-get install failed (exit ${r.status ?? r.signal}); still missing: ${still.join(' ')}`);
  return { installed: missing.filter((p) => !still.includes(p)), missing: still };
}
