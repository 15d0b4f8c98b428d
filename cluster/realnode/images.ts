/**
 * Small OCI images for the real node, built without a daemon or registry: a root filesystem of a
 * few local files is packed (tar) into an OCI image layout archive
 * (https://github.com/opencontainers/image-spec/blob/main/image-layout.md) and imported into
 * containerd's `k8s.io` namespace with `ctr images import`, where the CRI (and so pods with
 * `imagePullPolicy: Never|IfNotPresent`) finds it.
 *
 * - {@link PAUSE_IMAGE}: Kubernetes' own pause.c (from the k8s.io/kubernetes Go module in the
 *   module cache), compiled static with gcc; the sandbox image pinned in containerd.
 *   `npm run images` may replace it with its own build of the same source under the same name.
 * - {@link BUSYBOX_IMAGE}: Debian's busybox-static (`/bin/busybox`: sh, wget, nslookup, httpd),
 *   for tests that need a shell, an HTTP server and a DNS client in a pod.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLUSTER_SRC_DIR, PAUSE_IMAGE } from '../paths.js';
import { run } from './exec.js';

/** A busybox image for tests: `/bin/busybox` from Debian's busybox-static, run as uid 65534. */
export const BUSYBOX_IMAGE = 'localhost/kubemcp/busybox:1.35';
/** Where Debian's busybox-static installs its binary. */
const BUSYBOX_BIN = '/bin/busybox';

/** What goes into an image: files copied into its root filesystem and its default process. */
export interface ImageSpec {
  /** Full reference, e.g. `localhost/kubemcp/pause:3.10`. */
  name: string;
  /** Absolute host file -> path inside the image (mode kept). */
  files: Record<string, string>;
  /** Empty directories to create in the image (e.g. `/tmp`). */
  dirs?: string[];
  entrypoint: string[];
  /** `uid:gid` the image runs as (OCI config `User`). */
  user?: string;
}

const sha256 = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex');

/**
 * Writes an OCI image layout archive (uncompressed single layer) for `spec` to `archive`.
 * @throws Error if a file is missing or tar fails.
 */
export async function writeOciArchive(spec: ImageSpec, archive: string): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kubemcp-image-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    fs.mkdirSync(rootfs);
    for (const d of spec.dirs ?? []) fs.mkdirSync(path.join(rootfs, d), { recursive: true, mode: 0o1777 });
    for (const [src, dest] of Object.entries(spec.files)) {
      const target = path.join(rootfs, dest);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(src, target);
      fs.chmodSync(target, fs.statSync(src).mode & 0o777);
    }
    const layerTar = path.join(work, 'layer.tar');
    await run('tar', [
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--mtime=@0',
      '--sort=name',
      '-C',
      rootfs,
      '-cf',
      layerTar,
      '.',
    ]);
    const layout = path.join(work, 'layout');
    const blobs = path.join(layout, 'blobs', 'sha256');
    fs.mkdirSync(blobs, { recursive: true });
    const putBlob = (buf: Buffer): { digest: string; size: number } => {
      const hex = sha256(buf);
      fs.writeFileSync(path.join(blobs, hex), buf);
      return { digest: `sha256:${hex}`, size: buf.length };
    };
    const layer = putBlob(fs.readFileSync(layerTar));
    const config = putBlob(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { Entrypoint: spec.entrypoint, ...(spec.user ? { User: spec.user } : {}), Env: ['PATH=/bin'] },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
        }),
      ),
    );
    const manifest = putBlob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        }),
      ),
    );
    const tag = spec.name.slice(spec.name.lastIndexOf(':') + 1);
    fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    fs.writeFileSync(
      path.join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            platform: { architecture: 'amd64', os: 'linux' },
            annotations: { 'io.containerd.image.name': spec.name, 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', layout, '-cf', archive, '.']);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Imports an image archive (OCI layout or docker-archive tar) into containerd's `k8s.io`
 * namespace (the CRI's) through `ctr`.
 * @param ctr path of the ctr binary; `socket` containerd's socket
 * @throws Error quoting ctr's stderr.
 */
export async function importImage(ctr: string, socket: string, archive: string): Promise<void> {
  await run(ctr, ['--address', socket, '--namespace', 'k8s.io', 'images', 'import', '--local', archive], {
    timeoutMs: 120_000,
  });
}

/** Whether containerd's `k8s.io` namespace has image `name`. */
export async function hasImage(ctr: string, socket: string, name: string): Promise<boolean> {
  const out = await run(ctr, ['--address', socket, '--namespace', 'k8s.io', 'images', 'ls', '-q']);
  return out.split('\n').some((l) => l.trim() === name);
}

/**
 * Compiles Kubernetes' pause.c (build/pause/linux/pause.c of the k8s.io/kubernetes module this
 * folder's go.mod requires; `go mod download` fetches it from the Go module proxy) with
 * `gcc -Os -static`, as its Makefile does, into `out`.
 * @throws Error when go, the module or gcc (with a static libc) is missing.
 */
export async function buildPause(out: string): Promise<void> {
  const goBin = fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
  const gomod = fs.readFileSync(path.join(CLUSTER_SRC_DIR, 'go.mod'), 'utf8');
  const version = /k8s\.io\/kubernetes (v[0-9.]+)/.exec(gomod)?.[1];
  if (!version) throw new Error(`no k8s.io/kubernetes version in ${CLUSTER_SRC_DIR}/go.mod`);
  const info = JSON.parse(
    await run(goBin, ['mod', 'download', '-json', `k8s.io/kubernetes@${version}`], { timeoutMs: 600_000 }),
  ) as { Dir?: string };
  const src = path.join(info.Dir ?? '', 'build', 'pause', 'linux', 'pause.c');
  if (!fs.existsSync(src)) throw new Error(`pause.c not found at ${src}`);
  await run('gcc', ['-Os', '-Wall', '-static', `-DVERSION=${PAUSE_IMAGE.split(':').pop()}-kubemcp`, '-o', out, src], {
    timeoutMs: 120_000,
  });
}

/**
 * Loads {@link PAUSE_IMAGE} into containerd unless it is there: builds pause (cached in
 * `cacheDir`), packs it as an image running as 65535 (as upstream's) and imports it.
 * @throws Error from {@link buildPause} or {@link importImage}.
 */
export async function ensurePauseImage(ctr: string, socket: string, cacheDir: string): Promise<void> {
  if (await hasImage(ctr, socket, PAUSE_IMAGE)) return;
  const bin = path.join(cacheDir, 'pause');
  if (!fs.existsSync(bin)) {
    await buildPause(`${bin}.tmp`);
    fs.renameSync(`${bin}.tmp`, bin);
  }
  const archive = path.join(cacheDir, 'pause.oci.tar');
  await writeOciArchive(
    { name: PAUSE_IMAGE, files: { [bin]: '/pause' }, entrypoint: ['/pause'], user: '65535:65535' },
    archive,
  );
  await importImage(ctr, socket, archive);
}

/**
 * Loads {@link BUSYBOX_IMAGE} into containerd unless it is there (Debian's busybox-static).
 * @throws Error when /bin/busybox is missing (apt-get install busybox-static) or the import fails.
 */
export async function ensureBusyboxImage(ctr: string, socket: string, workDir: string): Promise<void> {
  if (await hasImage(ctr, socket, BUSYBOX_IMAGE)) return;
  if (!fs.existsSync(BUSYBOX_BIN)) throw new Error(`${BUSYBOX_BIN} is missing: apt-get install busybox-static`);
  const archive = path.join(workDir, 'busybox.oci.tar');
  await writeOciArchive(
    {
      name: BUSYBOX_IMAGE,
      files: { [BUSYBOX_BIN]: '/bin/busybox' },
      dirs: ['/tmp', '/www'],
      entrypoint: ['/bin/busybox'],
      user: '65534:65534',
    },
    archive,
  );
  await importImage(ctr, socket, archive);
}
