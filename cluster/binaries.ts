/**
 * The control-plane binaries: built (or found cached) by `build.sh` from this folder's Go module.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ensureDebianPackages } from './packages.js';
import { BUILD_SCRIPT, BUILD_TIMEOUT_MS, CLUSTER_SRC_DIR, COMPONENTS } from './paths.js';

/** Directories of the binaries, from build.sh. */
export interface Binaries {
  /** etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kubectl (and kubelet, kube-proxy). */
  binDir: string;
  /**
   * containerd, containerd-shim-runc-v2, ctr, runc, coredns and kube-network-policies of the real node; undefined when
   * build.sh could not build them (the cluster then runs kwok's node only).
   */
  nodeBinDir?: string;
}

/** Binaries of the real node, by directory: kubelet and kube-proxy beside the control plane. */
export const NODE_BINARIES = {
  binDir: ['kubelet', 'kube-proxy'],
  nodeBinDir: ['containerd', 'containerd-shim-runc-v2', 'ctr', 'runc', 'coredns', 'kube-network-policies'],
} as const;

/** Whether every file in `names` is an executable in `dir`. */
export function allExecutable(dir: string, names: readonly string[]): boolean {
  return names.every((n) => {
    try {
      fs.accessSync(path.join(dir, n), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Builds (or finds cached) control-plane binaries by running `build.sh`, whose progress (stderr)
 * is streamed to our stderr, after the missing Debian packages are installed (cluster/packages.ts,
 * as root; otherwise the command is printed). A cold build takes 20-40 minutes; a cached one returns at once.
 *
 * @returns the directory holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
 *   kwok (the last line build.sh prints on stdout), and the real node's (its `node <dir>` line,
 *   only when all of {@link NODE_BINARIES} are there)
 * @throws Error if build.sh fails, runs longer than 90 minutes, or a control-plane binary is missing.
 */
export async function ensureBinaries(): Promise<Binaries> {
  // The Debian packages first (cluster/packages.ts): build.sh needs libseccomp for runc.
  ensureDebianPackages();
  const child = spawn('bash', [BUILD_SCRIPT], {
    cwd: CLUSTER_SRC_DIR,
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true, // own process group, so a timeout can stop `go build` too
  });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const timer = setTimeout(() => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }, BUILD_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`${BUILD_SCRIPT} failed (exit code ${code}); see its output above`);
  const lines = stdout.trim().split('\n');
  const dir = lines.pop()?.trim() ?? '';
  const nodeLine = lines.find((l) => l.startsWith('node '));
  if (!path.isAbsolute(dir)) throw new Error(`${BUILD_SCRIPT} did not print a bin dir on its last line (got "${dir}")`);
  for (const component of COMPONENTS) {
    try {
      fs.accessSync(path.join(dir, component), fs.constants.X_OK);
    } catch {
      throw new Error(`${BUILD_SCRIPT}: ${path.join(dir, component)} is missing or not executable`);
    }
  }
  const nodeDir = nodeLine?.slice('node '.length).trim();
  const nodeOk =
    nodeDir && allExecutable(dir, NODE_BINARIES.binDir) && allExecutable(nodeDir, NODE_BINARIES.nodeBinDir);
  return nodeOk ? { binDir: dir, nodeBinDir: nodeDir } : { binDir: dir };
}
