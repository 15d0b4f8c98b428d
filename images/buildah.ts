/**
 * buildah without a daemon: every call uses the project's own image store (vfs storage driver
 * under {@link BUILDAH_ROOT}, so nothing needs overlayfs, a daemon or the host's
 * /var/lib/containers), chroot isolation (no OCI runtime, host network for `RUN npm ci`), and a
 * bounded time. Debian's `buildah` package (bookworm: 1.28) is enough; {@link ensureBuildah}
 * installs it with apt-get when this process is root, as the issue 8 notes ("Images without a
 * daemon") describe.
 *
 * @module
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Cache root shared with the control-plane binaries: `~/.cache/kubemcp`. */
export const CACHE_DIR = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'kubemcp');
/** buildah's image store (`--root`); layers are plain directories (vfs). */
export const BUILDAH_ROOT = path.join(CACHE_DIR, 'buildah', 'root');
/** buildah's run state (`--runroot`). */
export const BUILDAH_RUNROOT = path.join(CACHE_DIR, 'buildah', 'run');
/** OCI archives of built images, one per image and inputs hash: `<name>-<hash12>.oci.tar`. */
export const ARCHIVE_DIR = path.join(CACHE_DIR, 'images');
/** Image label holding the hash of everything an image was built from (the cache key). */
export const INPUTS_LABEL = 'io.kubemcp.inputs';

/** Bound of one buildah call that builds (npm ci inside the build runs for minutes on 2 cores). */
const BUILD_TIMEOUT_MS = 30 * 60_000;
/** Bound of a short buildah call (inspect, from, copy, config, commit, push). */
const SHORT_TIMEOUT_MS = 5 * 60_000;

/** Where a command's output goes: `inherit` streams to our stderr (CLI), `pipe` captures it (tests). */
export type Output = 'inherit' | 'pipe';

/**
 * Runs `cmd args` and returns its stdout; stderr (and stdout, when `output` is `inherit`) goes to
 * our stderr. @throws Error naming the command, its exit status and the tail of its output.
 */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; output?: Output; cwd?: string; capture?: boolean } = {},
): string {
  const captureStdout = opts.capture ?? true;
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? SHORT_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
    stdio: [
      'ignore',
      captureStdout ? 'pipe' : opts.output === 'inherit' ? 2 : 'pipe',
      opts.output === 'inherit' ? 2 : 'pipe',
    ],
  });
  if (r.error) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}${tail ? `:\n${tail}` : ''}`);
  }
  return r.stdout ?? '';
}

/** Whether `cmd` is found on PATH. */
export function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Makes sure the Debian packages the image build needs are installed: `buildah` (builds, pushes
 * OCI archives) and `busybox-static` (the base image's /bin/sh). Installs them with apt-get when
 * missing and running as root.
 * @throws Error naming the missing packages and the command to install them, when not root.
 */
export function ensureBuildah(output: Output = 'inherit'): void {
  const missing: string[] = [];
  if (!onPath('buildah')) missing.push('buildah');
  if (!fs.existsSync('/bin/busybox')) missing.push('busybox-static');
  if (!missing.length) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `images: missing ${missing.join(', ')}; install with: sudo apt-get install -y ${missing.join(' ')}`,
    );
  }
  run('apt-get', ['install', '-y', '-qq', ...missing], { output, timeoutMs: 10 * 60_000 });
  if (!onPath('buildah')) throw new Error('images: apt-get installed buildah but it is not on PATH');
}

/** Runs buildah with the project's store and returns stdout (see {@link run}). */
export function buildah(args: string[], opts: { output?: Output; long?: boolean; cwd?: string } = {}): string {
  return run('buildah', ['--root', BUILDAH_ROOT, '--runroot', BUILDAH_RUNROOT, '--storage-driver', 'vfs', ...args], {
    output: opts.output,
    cwd: opts.cwd,
    timeoutMs: opts.long ? BUILD_TIMEOUT_MS : SHORT_TIMEOUT_MS,
  });
}

/** What {@link inspectImage} reports of a stored image. */
export interface StoredImage {
  /** Image ID (sha256 hex of its config). */
  id: string;
  /** Its labels (`org.opencontainers.image.*`, {@link INPUTS_LABEL}, ...). */
  labels: Record<string, string>;
  /** `user` of its config ("65532:65532"), empty for root. */
  user: string;
  /** Its entrypoint and cmd. */
  entrypoint: string[];
  cmd: string[];
}

/** The stored image `ref`, or undefined when the store has no such image. */
export function inspectImage(ref: string): StoredImage | undefined {
  const r = spawnSync(
    'buildah',
    [
      '--root',
      BUILDAH_ROOT,
      '--runroot',
      BUILDAH_RUNROOT,
      '--storage-driver',
      'vfs',
      'inspect',
      '--type',
      'image',
      ref,
    ],
    { encoding: 'utf8', timeout: SHORT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) return undefined;
  const j = JSON.parse(r.stdout) as {
    FromImageID: string;
    OCIv1: { config?: { Labels?: Record<string, string>; User?: string; Entrypoint?: string[]; Cmd?: string[] } };
  };
  const c = j.OCIv1.config ?? {};
  return {
    id: j.FromImageID,
    labels: c.Labels ?? {},
    user: c.User ?? '',
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
  };
}

/** sha256 hex of a file's bytes. */
export function fileHash(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * sha256 hex over files and directories (walked in sorted order; each file's relative path and
 * bytes count) and extra strings. Used as an image's cache key ({@link INPUTS_LABEL}).
 */
export function inputsHash(root: string, entries: string[], extra: string[] = []): string {
  const h = createHash('sha256');
  const add = (rel: string): void => {
    const abs = path.join(root, rel);
    const st = fs.statSync(abs);
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(abs).sort()) add(path.join(rel, e));
    } else {
      h.update(`file ${rel} ${st.size}\n`);
      h.update(fs.readFileSync(abs));
    }
  };
  for (const e of entries) add(e);
  for (const x of extra) h.update(`extra ${x}\n`);
  return h.digest('hex');
}

/**
 * Writes the stored image `ref` as an OCI archive (`oci-archive:FILE:REF`, the reference kept in
 * the archive's index so `ctr images import` names the image) at `<ARCHIVE_DIR>/<name>-<hash12>.oci.tar`,
 * unless that file exists. @returns the archive's path.
 */
export function exportArchive(ref: string, inputs: string, output: Output): string {
  fs.mkdirSync(ARCHIVE_DIR, { recursive: true });
  const name = ref.replace(/^localhost\//, '').replace(/[/:]/g, '-');
  const file = path.join(ARCHIVE_DIR, `${name}-${inputs.slice(0, 12)}.oci.tar`);
  if (fs.existsSync(file)) return file;
  // One temporary file per process: two test files may export the same image at once.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  buildah(['push', '--quiet', ref, `oci-archive:${tmp}:${ref}`], { output, long: true });
  fs.renameSync(tmp, file);
  return file;
}

/** The manifest digest (`sha256:...`) recorded in an OCI archive's index.json. */
export function archiveDigest(file: string): string {
  const index = JSON.parse(run('tar', ['-xOf', file, 'index.json'])) as { manifests: { digest: string }[] };
  const d = index.manifests[0]?.digest;
  if (!d) throw new Error(`${file}: index.json lists no manifest`);
  return d;
}
