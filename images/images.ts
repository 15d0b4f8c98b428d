/**
 * The four images of the local cluster, built without a daemon (./buildah.ts) and rebuilt only
 * when their inputs change (a hash of them in the {@link INPUTS_LABEL} label):
 *
 * - {@link BASE_IMAGE} `localhost/kubemcp/node:<version>`: Node 20 for our own builds, as no
 *   registry serves `node:20-alpine` here. Made from this machine's Node (the binary running this
 *   script, from the `nodejs` Debian package), the shared libraries it links (glibc, libstdc++),
 *   its npm, Debian's static busybox as /bin/sh, the system CA bundle, and the users `node` (1000)
 *   and `nonroot` (65532). Default user root, as node:20-alpine (the Dockerfile's final stage
 *   switches to 65532).
 * - {@link KUBEMCP_IMAGE} `localhost/kubemcp/kubemcp:<package version>`: the repository's
 *   Dockerfile built by `buildah bud` with `NODE_IMAGE` set to the base above.
 * - {@link PAUSE_IMAGE} `localhost/kubemcp/pause:3.10`: the pod sandbox image containerd pins;
 *   Kubernetes' own `build/pause/linux/pause.c` (from the k8s.io/kubernetes module the cluster is
 *   built from, in the Go module cache) compiled static with gcc and the flags of its Makefile,
 *   run as 65535:65535 like registry.k8s.io/pause.
 * - {@link EVERYTHING_IMAGE} `localhost/kubemcp/everything:<version>`: the MCP reference server
 *   from npm on the base, a stdio server for the bridge's real-node tests and the demo.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockerfileContextSources } from './dockerfile.js';
import {
  INPUTS_LABEL,
  buildah,
  ensureBuildah,
  exportArchive,
  fileHash,
  inputsHash,
  inspectImage,
  run,
  type Output,
} from './buildah.js';

/** Repository root (the Dockerfile's build context). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

/** Node version of the base image: the Node running this script (must be 20.x). */
export const NODE_VERSION = process.versions.node;
/** The local Node 20 base image. */
export const BASE_IMAGE = `localhost/kubemcp/node:${NODE_VERSION}`;
/** The kubemcp image (controller and MCP server), tagged with package.json's version. */
export const KUBEMCP_IMAGE = `localhost/kubemcp/kubemcp:${pkg.version}`;
/** The pod sandbox image (the version of registry.k8s.io/pause that Kubernetes 1.36 uses). */
export const PAUSE_IMAGE = 'localhost/kubemcp/pause:3.10';
/** uid:gid the kubemcp image runs as (the Dockerfile's USER). */
export const KUBEMCP_USER = '65532:65532';

/** Bump when a recipe below changes in a way its inputs do not show. */
const RECIPE = '1';

/** One built image. */
export interface BuiltImage {
  /** Its reference, e.g. `localhost/kubemcp/kubemcp:0.1.0`. */
  ref: string;
  /** Hash of its inputs (the cache key). */
  inputs: string;
  /** Image ID in buildah's store. */
  id: string;
  /** Its OCI archive, for `ctr images import` (or `kind load image-archive`). */
  archive: string;
  /** Whether this call built it (false: the cached image had the same inputs). */
  built: boolean;
}

/** Options of {@link buildImages}. */
export interface BuildOptions {
  /** Where build output goes (default `inherit`: our stderr). */
  output?: Output;
  /** Rebuild even when the inputs did not change. */
  force?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** Returns the cached image when its inputs label equals `inputs` (and `force` is off). */
function cached(ref: string, inputs: string, force: boolean | undefined): string | undefined {
  if (force) return undefined;
  const img = inspectImage(ref);
  return img && img.labels[INPUTS_LABEL] === inputs ? img.id : undefined;
}

/** Commits a working container made from `scratch` with `rootfs` copied to `/`, and the config. */
function commitScratch(ref: string, rootfs: string, config: string[], output: Output): string {
  return commitFrom('scratch', ref, rootfs, '/', config, output);
}

/**
 * Commits a working container made from the stored image `from` (`scratch` for none) with the
 * directory `src` copied to `dest` (owned by root, modes kept), and the config.
 */
function commitFrom(from: string, ref: string, src: string, dest: string, config: string[], output: Output): string {
  const ctr = buildah(['from', '--quiet', ...(from === 'scratch' ? [] : ['--pull=never']), from]).trim();
  try {
    buildah(['copy', '--quiet', ctr, src, dest], { long: true });
    buildah(['config', ...config, ctr]);
    buildah(['commit', '--quiet', '--rm', ctr, ref], { output, long: true });
  } catch (e) {
    try {
      buildah(['rm', ctr]);
    } catch {
      /* the working container is gone already */
    }
    throw e;
  }
  const img = inspectImage(ref);
  if (!img) throw new Error(`images: ${ref} is not in the store after commit`);
  return img.id;
}

/** The shared libraries `bin` links, from ldd (absolute paths, the loader included). */
function sharedLibraries(bin: string): string[] {
  const out = run('ldd', [bin]);
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  if (!libs.size) throw new Error(`images: ldd found no shared libraries of ${bin}`);
  return [...libs].sort();
}

/** Copies `src` (following symlinks) to the same absolute path under `root`. */
function copyInto(root: string, src: string, dest = src): void {
  const to = path.join(root, dest);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.cpSync(fs.realpathSync(src), to, { recursive: true, dereference: true, preserveTimestamps: true });
}

/**
 * Builds (or finds cached) {@link BASE_IMAGE} from this machine's Node.
 * @throws Error when this Node is not 20.x, or npm, busybox or the CA bundle is missing.
 */
export function buildBase(opts: BuildOptions = {}): BuiltImage {
  const output = opts.output ?? 'inherit';
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (process.versions.node.split('.')[0] !== '20') {
    throw new Error(
      `images: the base image is Node 20, but this Node is ${process.versions.node} (install Debian/NodeSource nodejs 20)`,
    );
  }
  const node = fs.realpathSync(process.execPath);
  const npmDir = path.resolve(path.dirname(node), '../lib/node_modules/npm');
  const busybox = '/bin/busybox';
  const caBundle = '/etc/ssl/certs/ca-certificates.crt';
  for (const [what, p] of [
    ['npm', path.join(npmDir, 'package.json')],
    ['busybox (apt-get install busybox-static)', busybox],
    ['CA bundle (ca-certificates)', caBundle],
  ] as const) {
    if (!fs.existsSync(p)) throw new Error(`images: ${what} not found at ${p}`);
  }
  const libs = sharedLibraries(node);
  const npmVersion = (JSON.parse(fs.readFileSync(path.join(npmDir, 'package.json'), 'utf8')) as { version: string })
    .version;
  const config = [
    '--env',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--env',
    `NODE_VERSION=${NODE_VERSION}`,
    '--env',
    'NPM_CONFIG_UPDATE_NOTIFIER=false',
    '--cmd',
    'node',
    '--label',
    'org.opencontainers.image.title=kubemcp-node-base',
    '--label',
    `org.opencontainers.image.description=Node ${NODE_VERSION} with npm ${npmVersion} and busybox, from the build machine`,
  ];
  const inputs = inputsHash(
    '/',
    [],
    [
      RECIPE,
      `config ${JSON.stringify(config)}`,
      `node ${fileHash(node)}`,
      `npm ${npmVersion}`,
      `busybox ${fileHash(busybox)}`,
      `ca ${fileHash(caBundle)}`,
      ...libs.map((l) => `lib ${l} ${fileHash(l)}`),
    ],
  );
  let id = cached(BASE_IMAGE, inputs, opts.force);
  const built = !id;
  if (!id) {
    log(`images: building ${BASE_IMAGE} from ${node} (Node ${NODE_VERSION}, npm ${npmVersion})`);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kubemcp-base-'));
    try {
      copyInto(root, node, '/usr/bin/node');
      for (const l of libs) copyInto(root, l);
      copyInto(root, npmDir, '/usr/lib/node_modules/npm');
      fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/bin/npm'));
      fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/bin/npx'));
      copyInto(root, busybox, '/bin/busybox');
      const applets = run(busybox, ['--list'])
        .split('\n')
        .filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
      for (const a of applets) fs.symlinkSync('busybox', path.join(root, 'bin', a));
      fs.symlinkSync('/bin/env', path.join(root, 'usr/bin/env')); // npm's #!/usr/bin/env node
      copyInto(root, caBundle);
      fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
      fs.writeFileSync(
        path.join(root, 'etc/passwd'),
        'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n',
      );
      fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnonroot:x:65532:\n');
      fs.writeFileSync(path.join(root, 'etc/nsswitch.conf'), 'hosts: files dns\npasswd: files\ngroup: files\n');
      for (const [d, owner] of [
        ['root', 0],
        ['home/node', 1000],
        ['home/nonroot', 65532],
      ] as const) {
        fs.mkdirSync(path.join(root, d), { recursive: true });
        fs.chownSync(path.join(root, d), owner, owner);
      }
      fs.mkdirSync(path.join(root, 'tmp'));
      fs.chmodSync(path.join(root, 'tmp'), 0o1777);
      id = commitScratch(BASE_IMAGE, root, [...config, '--label', `${INPUTS_LABEL}=${inputs}`], output);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  return { ref: BASE_IMAGE, inputs, id, archive: exportArchive(BASE_IMAGE, inputs, output), built };
}

/**
 * The inputs of the kubemcp image: the Dockerfile, its .dockerignore, and the files and folders
 * of the build context that its COPY lines use (parsed from the Dockerfile, so a new COPY line is
 * an input without another edit here).
 */
export const DOCKERFILE_INPUTS = [
  'Dockerfile',
  '.dockerignore',
  ...dockerfileContextSources(fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')),
];

/**
 * Builds (or finds cached) {@link KUBEMCP_IMAGE}: `buildah bud` of the repository's Dockerfile,
 * `NODE_IMAGE` = the base image, `NODE_EXTRA_CA_CERTS` = the base's CA bundle (so `npm ci`
 * inside the build trusts this machine's TLS proxy, build stage only), `--pull=never`, and no
 * intermediate layer images (with the vfs driver each one is a full copy of the file tree, about
 * 0.5 GB); the image it replaces is removed ({@link pruneDangling}).
 * @throws Error when the build fails (the tail of buildah's output in the message).
 */
export function buildKubemcp(base: BuiltImage, opts: BuildOptions = {}): BuiltImage {
  const output = opts.output ?? 'inherit';
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const bud = [
    'bud',
    '--isolation',
    'chroot',
    '--network',
    'host',
    '--layers=false',
    '--pull=never',
    '--build-arg',
    `NODE_IMAGE=${BASE_IMAGE}`,
    '--build-arg',
    'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
    '-f',
    'Dockerfile',
    '-t',
    KUBEMCP_IMAGE,
  ];
  const inputs = inputsHash(REPO_ROOT, DOCKERFILE_INPUTS, [RECIPE, `base ${base.id}`, `bud ${JSON.stringify(bud)}`]);
  let id = cached(KUBEMCP_IMAGE, inputs, opts.force);
  const built = !id;
  if (!id) {
    log(`images: building ${KUBEMCP_IMAGE} from Dockerfile (buildah bud, base ${BASE_IMAGE})`);
    buildah([...bud, '--label', `${INPUTS_LABEL}=${inputs}`, '.'], { output, long: true, cwd: REPO_ROOT });
    const img = inspectImage(KUBEMCP_IMAGE);
    if (!img) throw new Error(`images: ${KUBEMCP_IMAGE} is not in the store after the build`);
    id = img.id;
    pruneDangling(log);
  }
  return { ref: KUBEMCP_IMAGE, inputs, id, archive: exportArchive(KUBEMCP_IMAGE, inputs, output), built };
}

/**
 * Removes untagged images from the store (`buildah rmi --prune`): the previous build of a tag and
 * anything a failed build left. Tagged images stay. Best effort: an image still used by a working
 * container (another build running on the same store) is kept, and its error only logged.
 */
export function pruneDangling(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  try {
    buildah(['rmi', '--prune']);
  } catch (e) {
    log(
      `images: pruning untagged images: ${(e instanceof Error ? e.message : String(e)).split('\n').find((l) => /error|in use/i.test(l)) ?? 'failed'}`,
    );
  }
}

/** Directory of the k8s.io/kubernetes module the cluster is built from, in the Go module cache. */
export function kubernetesModuleDir(): string {
  const gomod = fs.readFileSync(path.join(REPO_ROOT, 'cluster', 'go.mod'), 'utf8');
  const m = /^\s*k8s\.io\/kubernetes\s+(v\S+)/m.exec(gomod);
  if (!m?.[1]) throw new Error('images: cluster/go.mod does not require k8s.io/kubernetes');
  const go = ['go', '/usr/local/go/bin/go'].find((g) => spawnSync(g, ['version'], { stdio: 'ignore' }).status === 0);
  if (!go) throw new Error('images: go not found (needed to locate k8s.io/kubernetes for pause.c)');
  const out = run(go, ['mod', 'download', '-json', `k8s.io/kubernetes@${m[1]}`], {
    cwd: path.join(REPO_ROOT, 'cluster'),
    timeoutMs: 15 * 60_000,
  });
  const dir = (JSON.parse(out) as { Dir?: string }).Dir;
  if (!dir) throw new Error(`images: go mod download k8s.io/kubernetes@${m[1]} gave no directory`);
  return dir;
}

/**
 * Builds (or finds cached) {@link PAUSE_IMAGE}: pause.c compiled with
 * `gcc -Os -Wall -Werror -static -DVERSION=...` (build/pause/Makefile's CFLAGS) into `/pause`,
 * entrypoint `/pause`, user 65535:65535.
 * @throws Error when gcc or the static C library (libc6-dev) is missing.
 */
export function buildPause(opts: BuildOptions = {}): BuiltImage {
  const output = opts.output ?? 'inherit';
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const src = path.join(kubernetesModuleDir(), 'build/pause/linux/pause.c');
  const version = PAUSE_IMAGE.split(':')[1] ?? '3.10';
  const cflags = ['-Os', '-Wall', '-Werror', '-static', `-DVERSION=v${version}-kubemcp`];
  const gcc = run('gcc', ['--version']).split('\n')[0] ?? '';
  const config = [
    '--entrypoint',
    '["/pause"]',
    '--user',
    '65535:65535',
    '--label',
    'org.opencontainers.image.title=pause',
  ];
  const inputs = inputsHash(
    '/',
    [],
    [RECIPE, `pause.c ${fileHash(src)}`, cflags.join(' '), gcc, `config ${JSON.stringify(config)}`],
  );
  let id = cached(PAUSE_IMAGE, inputs, opts.force);
  const built = !id;
  if (!id) {
    log(`images: building ${PAUSE_IMAGE} from ${src}`);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kubemcp-pause-'));
    try {
      run('gcc', [...cflags, '-o', path.join(root, 'pause'), src]);
      run('strip', [path.join(root, 'pause')]);
      id = commitScratch(PAUSE_IMAGE, root, [...config, '--label', `${INPUTS_LABEL}=${inputs}`], output);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  return { ref: PAUSE_IMAGE, inputs, id, archive: exportArchive(PAUSE_IMAGE, inputs, output), built };
}

/** npm package of {@link EVERYTHING_IMAGE}: the MCP reference server (stdio by default). */
export const EVERYTHING_PACKAGE = '@modelcontextprotocol/server-everything';

/**
 * The version of {@link EVERYTHING_PACKAGE} the tests use: the one package-lock.json pins for the
 * devDependency (test/mcp-server runs the same version without a cluster).
 * @throws Error when package-lock.json does not list it.
 */
export function everythingVersion(): string {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages?: Record<string, { version?: string }>;
  };
  const v = lock.packages?.[`node_modules/${EVERYTHING_PACKAGE}`]?.version;
  if (!v)
    throw new Error(
      `images: package-lock.json does not pin ${EVERYTHING_PACKAGE} (npm install --save-dev ${EVERYTHING_PACKAGE})`,
    );
  return v;
}

/**
 * A stdio MCP server nobody here wrote, for the bridge's real-node tests and the demo:
 * `localhost/kubemcp/everything:<version>` ({@link EVERYTHING_PACKAGE} at {@link everythingVersion}).
 */
export const EVERYTHING_IMAGE = `localhost/kubemcp/everything:${everythingVersion()}`;
/** The server's executable in {@link EVERYTHING_IMAGE} (on the image's PATH; `#!/usr/bin/env node`). */
export const EVERYTHING_BIN = 'mcp-server-everything';

/**
 * Builds (or finds cached) {@link EVERYTHING_IMAGE}: {@link EVERYTHING_PACKAGE} installed on this
 * machine with `npm install --prefix <scratch dir> --omit=dev --ignore-scripts` at the pinned
 * version (buildah builds have no network by default, and the base's npm would need this
 * machine's TLS proxy), copied to `/app` of {@link BASE_IMAGE}. `/app/node_modules/.bin` is on
 * PATH (`command: [mcp-server-everything]`), the entrypoint is `mcp-server-everything`, cmd
 * `stdio`, user 65532:65532 (any non-root uid works: the files are world-readable and the server
 * writes nothing), so it runs under the restricted Pod Security Standard with a read-only root.
 * The cache key is the version, the base's ID and the recipe (npm resolves the package's own
 * dependencies when the image is first built).
 * @throws Error when npm cannot install the package (registry unreachable) or buildah fails.
 */
export function buildEverything(base: BuiltImage, opts: BuildOptions = {}): BuiltImage {
  const output = opts.output ?? 'inherit';
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const version = everythingVersion();
  const config = [
    '--env',
    'PATH=/app/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--env',
    'NODE_ENV=production',
    '--workingdir',
    '/app',
    '--user',
    '65532:65532',
    '--entrypoint',
    JSON.stringify([EVERYTHING_BIN]),
    '--cmd',
    'stdio',
    '--label',
    'org.opencontainers.image.title=mcp-server-everything',
    '--label',
    `org.opencontainers.image.description=${EVERYTHING_PACKAGE}@${version} (npm) on ${BASE_IMAGE}`,
  ];
  const inputs = inputsHash(
    '/',
    [],
    [RECIPE, `package ${EVERYTHING_PACKAGE}@${version}`, `base ${base.id}`, `config ${JSON.stringify(config)}`],
  );
  let id = cached(EVERYTHING_IMAGE, inputs, opts.force);
  const built = !id;
  if (!id) {
    log(
      `images: building ${EVERYTHING_IMAGE} (npm install ${EVERYTHING_PACKAGE}@${version} on this machine, base ${BASE_IMAGE})`,
    );
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kubemcp-everything-'));
    try {
      const app = path.join(root, 'app');
      fs.mkdirSync(app);
      fs.writeFileSync(
        path.join(app, 'package.json'),
        `${JSON.stringify({ name: 'everything-image', private: true }, null, 2)}\n`,
      );
      run(
        'npm',
        [
          'install',
          '--prefix',
          app,
          '--omit=dev',
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          '--save-exact',
          `${EVERYTHING_PACKAGE}@${version}`,
        ],
        { output, timeoutMs: 10 * 60_000 },
      );
      const bin = path.join(app, 'node_modules/.bin', EVERYTHING_BIN);
      if (!fs.existsSync(bin)) throw new Error(`images: npm install ${EVERYTHING_PACKAGE}@${version} made no ${bin}`);
      run('chmod', ['-R', 'a+rX', app]);
      id = commitFrom(
        BASE_IMAGE,
        EVERYTHING_IMAGE,
        app,
        '/app',
        [...config, '--label', `${INPUTS_LABEL}=${inputs}`],
        output,
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  return { ref: EVERYTHING_IMAGE, inputs, id, archive: exportArchive(EVERYTHING_IMAGE, inputs, output), built };
}

/** The images {@link buildImages} returns. */
export interface ImageSet {
  base: BuiltImage;
  kubemcp: BuiltImage;
  pause: BuiltImage;
  /** The stdio test server ({@link EVERYTHING_IMAGE}). */
  everything: BuiltImage;
}

/**
 * Builds (or finds cached) the base, kubemcp, pause and everything images and their OCI archives; installs
 * buildah first when missing (root only). A warm call (nothing changed) takes a few seconds.
 */
export function buildImages(opts: BuildOptions = {}): ImageSet {
  ensureBuildah(opts.output ?? 'inherit');
  const base = buildBase(opts);
  if (base.built) pruneDangling(opts.log);
  const kubemcp = buildKubemcp(base, opts);
  const pause = buildPause(opts);
  const everything = buildEverything(base, opts);
  return { base, kubemcp, pause, everything };
}
