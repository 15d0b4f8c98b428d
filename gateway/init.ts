/**
 * `kubemcp bridge-init`: what the init container of a bridged pod does (gateway/wiring.ts).
 * It copies a statically linked busybox (the launcher) into the shared emptyDir and creates the
 * two FIFOs there, readable and writable by every container of the pod whatever their uids
 * (mode 0666; only the pod's containers mount the volume).
 *
 * Node has no mkfifo(3), so the FIFOs are made by the launcher itself (`busybox mkfifo`). Running
 * it again (a restarted pod keeps its emptyDir) keeps existing FIFOs and replaces anything else.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  closeSync,
  renameSync,
  unlinkSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { LAUNCHER_SOURCES, bridgePaths, type BridgePaths } from './wiring.js';

/**
 * Whether the ELF file at `path` is statically linked (has no PT_INTERP program header, so it
 * runs in any image, even one without a libc). Reads the ELF header (System V ABI, gABI ch. 4-5).
 * @throws Error when the file is not an ELF executable.
 */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path} is not an ELF executable`);
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? h.readBigUInt64LE(0x20) : h.readBigUInt64BE(0x20)) : u32(h, 0x1c);
    const phentsize = u16(h, is64 ? 0x36 : 0x2a);
    const phnum = u16(h, is64 ? 0x38 : 0x2c);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (u32(ph, i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

/** Options of {@link bridgeInit}. */
export interface BridgeInitOptions {
  /** The shared directory (the emptyDir mount). */
  dir: string;
  /** The static busybox to copy; default: the first of {@link LAUNCHER_SOURCES} that exists. */
  launcherSource?: string;
}

/**
 * Installs the launcher and creates the FIFOs in `dir`.
 * @returns the paths.
 * @throws Error naming the file when no static busybox is found or a step fails.
 */
export function bridgeInit(opts: BridgeInitOptions): BridgePaths {
  const paths = bridgePaths(opts.dir);
  const source = opts.launcherSource ?? LAUNCHER_SOURCES.find((p) => existsSync(p));
  if (!source)
    throw new Error(
      `no static busybox found (looked for ${LAUNCHER_SOURCES.join(', ')}); install busybox-static in the image or pass --launcher-source`,
    );
  if (!existsSync(source)) throw new Error(`--launcher-source ${source} does not exist`);
  if (!isStaticElf(source))
    throw new Error(
      `${source} is dynamically linked: the launcher must run in any image, so it must be a static busybox (busybox-static)`,
    );
  mkdirSync(dirname(paths.launcher), { recursive: true });
  const tmp = `${paths.launcher}.tmp`;
  copyFileSync(source, tmp);
  chmodSync(tmp, 0o555);
  renameSync(tmp, paths.launcher);
  for (const fifo of [paths.stdin, paths.stdout]) {
    let st;
    try {
      st = lstatSync(fifo);
    } catch {
      st = undefined;
    }
    if (st?.isFIFO()) continue;
    if (st) unlinkSync(fifo);
    execFileSync(paths.launcher, ['mkfifo', '-m', '0666', fifo], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  return paths;
}
