/**
 * API discovery (mcp-server/discovery.ts): the disk cache's checks on a real file system (a
 * temporary directory: ownership, modes, symlinks, shape, server, TTL, CA), and the gateway
 * against the local control plane: live aggregated discovery written to the cache, a second
 * gateway (a new process's) resolving from it, concurrent callers sharing one discovery, and no
 * cache at all when the policy has a namespace allow-list or a kind deny-list.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  chmodSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DiscoveryDiskCache, defaultDiscoveryCacheDir, parseAggregated } from '../../mcp-server/discovery.js';
import { KubeGateway, type ApiResource } from '../../mcp-server/kube.js';
import { Policy } from '../../mcp-server/policy.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'kubemcp-discovery-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const POD: ApiResource = {
  group: '',
  version: 'v1',
  resource: 'pods',
  kind: 'Pod',
  singular: 'pod',
  shortNames: ['po'],
  categories: ['all'],
  namespaced: true,
  verbs: ['get', 'list'],
  subresources: ['log', 'status'],
};
const CLUSTER = { server: 'https://127.0.0.1:6443', caData: 'Q0EtMQ==' };
let n = 0;
const freshDir = () => path.join(root, `c${n++}`, 'discovery');

describe('discovery disk cache', () => {
  it('round-trips an entry in a 0700 directory with a 0600 file', () => {
    const errors: string[] = [];
    const cache = new DiscoveryDiskCache(freshDir(), (m) => errors.push(m));
    expect(cache.read(CLUSTER, 60_000)).toBeUndefined();
    const at = Date.now();
    cache.write(CLUSTER, at, [POD]);
    expect(statSync(cache.dir).mode & 0o777).toBe(0o700);
    expect(statSync(cache.fileOf(CLUSTER)).mode & 0o777).toBe(0o600);
    expect(cache.read(CLUSTER, 60_000)).toEqual({ at, resources: [POD] });
    expect(readdirSync(cache.dir)).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('keys entries by server and CA: another cluster on the same address misses', () => {
    const cache = new DiscoveryDiskCache(freshDir());
    cache.write(CLUSTER, Date.now(), [POD]);
    expect(cache.read({ ...CLUSTER, caData: 'Q0EtMg==' }, 60_000)).toBeUndefined();
    expect(cache.read({ ...CLUSTER, server: 'https://127.0.0.1:6444' }, 60_000)).toBeUndefined();
  });

  it('ignores a stale entry, and one from the future', () => {
    const cache = new DiscoveryDiskCache(freshDir());
    cache.write(CLUSTER, Date.now() - 10_000, [POD]);
    expect(cache.read(CLUSTER, 5_000)).toBeUndefined();
    cache.write(CLUSTER, Date.now() + 3_600_000, [POD]);
    expect(cache.read(CLUSTER, 60_000)).toBeUndefined();
  });

  it('refuses group/world-accessible directories and files, symlinks and malformed entries', () => {
    const errors: string[] = [];
    const cache = new DiscoveryDiskCache(freshDir(), (m) => errors.push(m));
    cache.write(CLUSTER, Date.now(), [POD]);
    const file = cache.fileOf(CLUSTER);
    const good = readFileSync(file, 'utf8');

    chmodSync(cache.dir, 0o755);
    expect(cache.read(CLUSTER, 60_000)).toBeUndefined();
    cache.write(CLUSTER, Date.now(), [POD]);
    expect(errors.some((e) => /not a private directory/.test(e))).toBe(true);
    chmodSync(cache.dir, 0o700);

    chmodSync(file, 0o644);
    expect(cache.read(CLUSTER, 60_000)).toBeUndefined();
    chmodSync(file, 0o600);
    expect(cache.read(CLUSTER, 60_000)).toBeDefined();

    const elsewhere = path.join(root, `target-${n++}.json`);
    writeFileSync(elsewhere, good, { mode: 0o600 });
    rmSync(file);
    symlinkSync(elsewhere, file);
    expect(cache.read(CLUSTER, 60_000)).toBeUndefined();
    rmSync(file);

    const bad = (doc: unknown) => {
      writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc), { mode: 0o600 });
      return cache.read(CLUSTER, 60_000);
    };
    const doc = JSON.parse(good) as Record<string, unknown>;
    expect(bad('{"version":1,')).toBeUndefined();
    expect(bad({ ...doc, version: 2 })).toBeUndefined();
    expect(bad({ ...doc, server: 'https://elsewhere:6443' })).toBeUndefined();
    expect(bad({ ...doc, at: 'now' })).toBeUndefined();
    expect(bad({ ...doc, resources: [] })).toBeUndefined();
    expect(bad({ ...doc, resources: [{ ...POD, namespaced: 'yes' }] })).toBeUndefined();
    expect(bad({ ...doc, resources: [{ ...POD, verbs: 'get' }] })).toBeUndefined();
    expect(bad({ ...doc, resources: [{ ...POD, resource: '' }] })).toBeUndefined();
    expect(bad(doc)).toEqual({ at: doc.at, resources: [POD] });
    expect(errors.length).toBeGreaterThanOrEqual(8);
  });

  it('a cache directory it cannot create is reported, not thrown', () => {
    const errors: string[] = [];
    const blocker = path.join(root, `file-${n++}`);
    writeFileSync(blocker, 'x');
    const cache = new DiscoveryDiskCache(path.join(blocker, 'discovery'), (m) => errors.push(m));
    expect(() => cache.write(CLUSTER, Date.now(), [POD])).not.toThrow();
    expect(cache.read(CLUSTER, 60_000)).toBeUndefined();
    expect(errors.length).toBeGreaterThan(0);
  });

  it('defaults under XDG_CACHE_HOME, else ~/.cache', () => {
    expect(defaultDiscoveryCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/kubemcp/discovery');
    expect(defaultDiscoveryCacheDir({ XDG_CACHE_HOME: 'relative' })).toMatch(/\.cache\/kubemcp\/discovery$/);
  });

  it('parses an APIGroupDiscoveryList: scope, kind, names and subresources', () => {
    const got = parseAggregated({
      items: [
        {
          metadata: { name: 'apps' },
          versions: [
            {
              version: 'v1',
              resources: [
                {
                  resource: 'deployments',
                  responseKind: { kind: 'Deployment' },
                  singularResource: 'deployment',
                  shortNames: ['deploy'],
                  categories: ['all'],
                  scope: 'Namespaced',
                  verbs: ['get'],
                  subresources: [{ subresource: 'scale' }],
                },
              ],
            },
          ],
        },
      ],
    });
    expect(got).toEqual([
      {
        group: 'apps',
        version: 'v1',
        resource: 'deployments',
        kind: 'Deployment',
        singular: 'deployment',
        shortNames: ['deploy'],
        categories: ['all'],
        namespaced: true,
        verbs: ['get'],
        subresources: ['scale'],
      },
    ]);
  });
});

describe('the gateway with a discovery disk cache (local control plane)', () => {
  it('writes live discovery; a new gateway resolves from the cache; concurrent callers share one discovery', async () => {
    const dir = freshDir();
    const first = new KubeGateway({ policy: new Policy({}), discoveryCache: new DiscoveryDiskCache(dir) });
    try {
      const [a, b] = await Promise.all([first.resources(), first.resources()]);
      expect(a).toBe(b);
      expect(a.find((r) => r.resource === 'deployments' && r.group === 'apps')?.namespaced).toBe(true);
      expect(readdirSync(dir)).toHaveLength(1);
    } finally {
      first.close();
    }
    // A marker resource only the cache knows shows that the second gateway read it.
    const file = path.join(dir, readdirSync(dir)[0]!);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { resources: ApiResource[] };
    doc.resources.push({
      ...POD,
      group: 'example.com',
      resource: 'cachemarkers',
      kind: 'CacheMarker',
      singular: 'cachemarker',
      shortNames: [],
    });
    writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
    const second = new KubeGateway({ policy: new Policy({}), discoveryCache: new DiscoveryDiskCache(dir) });
    try {
      expect((await second.resolve('cachemarker')).group).toBe('example.com');
      expect((await second.resolve('deploy')).resource).toBe('deployments');
      // A forced refresh asks the apiserver, which has no such kind.
      expect((await second.resources(undefined, true)).some((r) => r.kind === 'CacheMarker')).toBe(false);
    } finally {
      second.close();
    }
  });

  it('does not use the cache when the policy has a namespace allow-list or a kind deny-list', async () => {
    const dir = freshDir();
    const seed = new KubeGateway({ policy: new Policy({}), discoveryCache: new DiscoveryDiskCache(dir) });
    try {
      await seed.resources();
    } finally {
      seed.close();
    }
    const file = path.join(dir, readdirSync(dir)[0]!);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { resources: ApiResource[] };
    // A tampered entry: pods cluster-scoped would read them across namespaces.
    for (const r of doc.resources) if (r.resource === 'pods' && r.group === '') r.namespaced = false;
    writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
    for (const policy of [new Policy({ namespaces: ['default'] }), new Policy({ denyKinds: ['Secret'] })]) {
      const g = new KubeGateway({ policy, discoveryCache: new DiscoveryDiskCache(dir) });
      try {
        expect((await g.resolve('pods')).namespaced).toBe(true);
      } finally {
        g.close();
      }
    }
  });
});
