/**
 * API discovery for the gateway (kube.ts): aggregated discovery (`apidiscovery.k8s.io/v2`,
 * KEP-3352; Kubernetes docs, "Discovery API": one request each for `/api` and `/apis`, made
 * concurrently here) and a disk cache of its result, like kubectl's discovery cache
 * (`~/.kube/cache/discovery/<host_port>/`, "kubectl ... --cache-dir"), so that a new `kubemcp
 * serve` process finds the cluster's resources without asking for them again (issue 9, "Speed and
 * memory": the first call).
 *
 * The disk cache is safe to lose and hostile until checked:
 * - one file per cluster, named by the SHA-256 of its server URL and CA certificate (two clusters
 *   on the same address, e.g. successive local clusters, do not share an entry);
 * - its directory is created 0700; an entry is used only when the directory and the file belong
 *   to this user, are not group/world accessible, the file is a regular file (opened without
 *   following a symlink), at most MAX_CACHE_BYTES, parses as JSON and every resource has the
 *   shape discovery gives (strings, booleans, string arrays), for the same server, and younger
 *   than the TTL (the gateway's in-memory discovery TTL);
 * - any failure (missing, foreign, malformed, stale, unwritable) falls back to live discovery;
 *   writes go to a 0600 temporary file renamed into place.
 * Discovery only maps names to resources: the policy is still checked on each final request
 * (kube.ts), so a cache entry cannot widen what is allowed.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ApiResource } from './kube.js';

/** Largest cache file read, in bytes (an aggregated discovery of ~60 groups is ~100 KiB). */
export const MAX_CACHE_BYTES = 8 * 1024 * 1024;

/** The default cache directory: `$XDG_CACHE_HOME/kubemcp/discovery`, else `~/.cache/kubemcp/discovery`. */
export function defaultDiscoveryCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'kubemcp', 'discovery');
}

/** The parts of an APIGroupDiscoveryList (apidiscovery.k8s.io/v2) read here. */
export interface APIGroupDiscoveryList {
  items?: Array<{
    metadata?: { name?: string };
    versions?: Array<{
      version: string;
      resources?: Array<{
        resource: string;
        responseKind?: { kind?: string };
        singularResource?: string;
        shortNames?: string[];
        categories?: string[];
        scope?: string;
        verbs?: string[];
        subresources?: Array<{ subresource: string }>;
      }>;
    }>;
  }>;
}

/**
 * The resources of one APIGroupDiscoveryList (the answer to `/api` or `/apis` with the
 * aggregated Accept header), preferred version first within each group, as the apiserver orders them.
 */
export function parseAggregated(list: APIGroupDiscoveryList | undefined): ApiResource[] {
  const out: ApiResource[] = [];
  for (const g of list?.items ?? []) {
    const group = g.metadata?.name ?? '';
    for (const v of g.versions ?? []) {
      for (const r of v.resources ?? []) {
        out.push({
          group,
          version: v.version,
          resource: r.resource,
          kind: r.responseKind?.kind ?? '',
          singular: r.singularResource ?? '',
          shortNames: r.shortNames ?? [],
          categories: r.categories ?? [],
          namespaced: r.scope === 'Namespaced',
          verbs: r.verbs ?? [],
          subresources: (r.subresources ?? []).map((x) => x.subresource),
        });
      }
    }
  }
  return out;
}

/** Told of a discovery result (see {@link onDiscovery}). */
export type DiscoveryListener = (resources: readonly ApiResource[]) => void;
const listeners = new Set<DiscoveryListener>();
let latest: readonly ApiResource[] | undefined;

/**
 * Follows the discovery results of this process without asking for one: calls `listener` at once
 * with the latest result (when there is one), then with every later one, live
 * ({@link fetchAggregated}) or read from the disk cache, until the returned function is called.
 * Results are per process, not per context (the gateway of `kubemcp serve` is one per process).
 * A listener's exception is ignored. Used by tools/registry.ts for tools that need an API group.
 */
export function onDiscovery(listener: DiscoveryListener): () => void {
  listeners.add(listener);
  if (latest) tell(listener, latest);
  return () => void listeners.delete(listener);
}

/**
 * Whether the latest discovery result of this process serves API `group`: true while there is
 * none yet (a tool that needs the group is listed until discovery says otherwise, as
 * tools/registry.ts followApiGroup does for 2025-era sessions).
 */
export function discoveryServes(group: string): boolean {
  return !latest || latest.some((r) => r.group === group);
}

function tell(listener: DiscoveryListener, resources: readonly ApiResource[]): void {
  try {
    listener(resources);
  } catch {
    /* a listener's failure is its own */
  }
}

/** Records `resources` as the latest discovery result and tells the listeners; returns them. */
function published<T extends readonly ApiResource[]>(resources: T): T {
  latest = resources;
  for (const l of [...listeners]) tell(l, resources);
  return resources;
}

/**
 * Aggregated discovery of a cluster: `/api` and `/apis` requested concurrently through `get`
 * (the gateway's request with the aggregated Accept header), core group first. The result is
 * told to {@link onDiscovery}'s listeners.
 * @throws what `get` throws (KubeError when the apiserver is unreachable or refuses).
 */
export async function fetchAggregated(
  get: (path: '/api' | '/apis') => Promise<APIGroupDiscoveryList | undefined>,
): Promise<ApiResource[]> {
  const [core, groups] = await Promise.all([get('/api'), get('/apis')]);
  return published([...parseAggregated(core), ...parseAggregated(groups)]);
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isStrs = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);

/** Whether `r` has exactly the shape parseAggregated gives. */
function isApiResource(r: unknown): r is ApiResource {
  if (!r || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  return (
    isStr(o.group) &&
    isStr(o.version) &&
    o.version !== '' &&
    isStr(o.resource) &&
    o.resource !== '' &&
    isStr(o.kind) &&
    isStr(o.singular) &&
    typeof o.namespaced === 'boolean' &&
    isStrs(o.shortNames) &&
    isStrs(o.categories) &&
    isStrs(o.verbs) &&
    isStrs(o.subresources)
  );
}

/** What identifies a cluster for the cache: its server URL and CA certificate (PEM or file). */
export interface ClusterIdentity {
  server: string;
  caData?: string;
  caFile?: string;
}

/** A disk cache of aggregated discovery results (see the module comment). Never throws. */
export class DiscoveryDiskCache {
  private readonly uid = typeof process.getuid === 'function' ? process.getuid() : undefined;

  /**
   * @param dir cache directory (created 0700 on first write).
   * @param onError told why an entry was not used or not written (for a debug log).
   */
  constructor(
    readonly dir: string,
    private readonly onError: (message: string) => void = () => undefined,
  ) {}

  /** The cache file of a cluster. */
  fileOf(cluster: ClusterIdentity): string {
    let ca = cluster.caData ?? '';
    if (!ca && cluster.caFile) {
      try {
        ca = readFileSync(cluster.caFile, 'utf8');
      } catch {
        ca = `file:${cluster.caFile}`;
      }
    }
    const key = createHash('sha256').update(`${cluster.server}\n${ca}`).digest('hex');
    return path.join(this.dir, `${key}.json`);
  }

  /** Whether `st` belongs to this user and is not group/world accessible. */
  private private(st: { uid: number; mode: number }): boolean {
    return (this.uid === undefined || st.uid === this.uid) && (st.mode & 0o077) === 0;
  }

  /**
   * The cached resources of `cluster` when an entry passes every check and is younger than `ttlMs`
   * (told to {@link onDiscovery}'s listeners, as a live discovery is).
   * @returns `{ at, resources }` (`at`: when discovery ran, ms since the epoch), or undefined.
   */
  read(
    cluster: ClusterIdentity,
    ttlMs: number,
    now = Date.now(),
  ): { at: number; resources: ApiResource[] } | undefined {
    const file = this.fileOf(cluster);
    let fd: number | undefined;
    try {
      const dirStat = lstatSync(this.dir);
      if (!dirStat.isDirectory() || !this.private(dirStat))
        return this.fail(`${this.dir} is not a private directory of this user`);
      fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
      const st = fstatSync(fd);
      if (!st.isFile() || !this.private(st)) return this.fail(`${file} is not a private file of this user`);
      if (st.size > MAX_CACHE_BYTES) return this.fail(`${file} is larger than ${MAX_CACHE_BYTES} bytes`);
      const doc = JSON.parse(readFileSync(fd, 'utf8')) as {
        version?: unknown;
        server?: unknown;
        at?: unknown;
        resources?: unknown;
      };
      if (
        doc.version !== 1 ||
        doc.server !== cluster.server ||
        typeof doc.at !== 'number' ||
        !Array.isArray(doc.resources)
      )
        return this.fail(`${file} is not a discovery cache entry of ${cluster.server}`);
      if (doc.at > now + 60_000 || now - doc.at >= ttlMs) return undefined;
      if (doc.resources.length === 0 || !doc.resources.every(isApiResource))
        return this.fail(`${file} holds malformed resources`);
      return { at: doc.at, resources: published(doc.resources as ApiResource[]) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return this.fail(`${file}: ${(err as Error).message}`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Stores the resources of `cluster` discovered at `at` (ms since the epoch). */
  write(cluster: ClusterIdentity, at: number, resources: ApiResource[]): void {
    const file = this.fileOf(cluster);
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const dirStat = lstatSync(this.dir);
      if (!dirStat.isDirectory() || !this.private(dirStat)) {
        this.fail(`${this.dir} is not a private directory of this user; not written`);
        return;
      }
      writeFileSync(tmp, JSON.stringify({ version: 1, server: cluster.server, at, resources }), {
        mode: 0o600,
        flag: 'wx',
      });
      renameSync(tmp, file);
    } catch (err) {
      try {
        rmSync(tmp, { force: true });
      } catch {
        /* nothing was created */
      }
      this.fail(`${file}: ${(err as Error).message}`);
    }
  }

  private fail(message: string): undefined {
    this.onError(message);
    return undefined;
  }
}
