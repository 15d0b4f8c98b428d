/**
 * The informers' paginated list (controller/list.ts) against the real apiserver: pages of
 * `limit` items followed by `continue`, the label selector, items as plain JSON trimmed as they
 * arrive, the snapshot's resourceVersion, and a refused list's error naming the path.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { ListError, pagedList } from '../../controller/list.js';
import { trimForCache } from '../../controller/transform.js';
import { kubeFetch, type FetchLike } from '../../lib/kube-http.js';
import { createNamespace, kubeConfig } from '../kube.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const server = kc.getCurrentCluster()!.server;
let ns: string;

/** kubeFetch, recording the URL of every request. */
function recording(): { fetch: FetchLike; urls: URL[] } {
  const inner = kubeFetch(kc);
  const urls: URL[] = [];
  return { urls, fetch: (url, init) => (urls.push(new URL(String(url))), inner(url, init)) };
}

beforeAll(async () => {
  ns = await createNamespace(kc, 'list');
  for (let i = 0; i < 7; i++)
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: `cm-${i}`, labels: { 'list-test': 'yes' } }, data: { i: String(i) } },
    });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'unlabelled' } } });
});

afterAll(async () => {
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('pagedList', () => {
  it('follows continue tokens page by page and returns every selected item, trimmed, as plain JSON', async () => {
    const { fetch, urls } = recording();
    let transformed = 0;
    const list = await pagedList(server, `/api/v1/namespaces/${ns}/configmaps`, fetch, {
      labelSelector: 'list-test=yes',
      pageSize: 3,
      transform: (o) => (transformed++, trimForCache('ConfigMap', o)),
    })();
    expect(list.items.map((o) => o.metadata?.name).sort()).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `cm-${i}`));
    expect(transformed).toBe(7);
    // 7 items in pages of 3: three requests, the 2nd and 3rd with the previous page's continue token.
    expect(urls.map((u) => u.searchParams.get('limit'))).toEqual(['3', '3', '3']);
    expect(urls.map((u) => !!u.searchParams.get('continue'))).toEqual([false, true, true]);
    expect(urls.every((u) => u.searchParams.get('labelSelector') === 'list-test=yes')).toBe(true);
    for (const item of list.items) {
      expect(Object.getPrototypeOf(item)).toBe(Object.prototype);
      expect(item.metadata?.managedFields).toBeUndefined();
      expect(typeof item.metadata?.creationTimestamp).toBe('string');
    }
    // The snapshot's resourceVersion: a watch from it sees nothing older.
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThan(0);
  });

  it('lists everything in one page when the page size exceeds the collection', async () => {
    const { fetch, urls } = recording();
    const list = await pagedList(server, `/api/v1/namespaces/${ns}/configmaps`, fetch)();
    // 7 labelled, 1 unlabelled and the namespace's kube-root-ca.crt.
    expect(list.items.map((o) => o.metadata?.name)).toEqual(expect.arrayContaining(['unlabelled', 'cm-0', 'cm-6']));
    expect(list.items).toHaveLength(9);
    expect(urls).toHaveLength(1);
  });

  it('throws a ListError naming the path and the status when the apiserver refuses the list', async () => {
    const path = `/apis/mcp.example.com/v1alpha1/namespaces/${ns}/nosuchresources`;
    const err = await pagedList(server, path, kubeFetch(kc))().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ListError);
    expect((err as ListError).statusCode).toBe(404);
    expect((err as ListError).message).toContain(`list ${path}: 404`);
  });
});
