/**
 * The informers' list calls: paginated, plain JSON, each item trimmed as it arrives.
 *
 * client-node's typed list calls (`listPodForAllNamespaces`, ...) fetch a whole collection in one
 * response and turn every item into its model classes (`V1Pod`, `V1ObjectMeta`, `Date`s), so at
 * start the controller held each collection three times at once (the response text, the parsed
 * JSON and the model objects, `managedFields` included) before the informers' handlers trimmed
 * it: at 1,000 MCPServers its RSS peaked at ~230 MiB during the first list (docs/benchmarks.md, "The
 * controller at scale"). {@link pagedList} asks for pages of {@link DEFAULT_PAGE_SIZE} items
 * (`limit` and `continue`, https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks,
 * which is what client-go's reflector does with its 500-item pages), keeps the items as the JSON
 * the apiserver sent (the same shape as the watch events the informers then receive) and trims
 * each one with the cache transform before the next page is asked for.
 */
import type * as k8s from '@kubernetes/client-node';
import { kubeStatus, type FetchLike } from '../lib/kube-http.js';

/** Items per page (client-go's reflector pages by 500). */
export const DEFAULT_PAGE_SIZE = 500;
/** Bound of a list page's silence (no bytes from the apiserver), in ms: a stuck list fails and the informer lists again. */
export const LIST_IDLE_TIMEOUT_MS = 60_000;
/** Most pages one list follows (a bound on a misbehaving server's `continue` chain): 2,000 x 500 items. */
export const MAX_PAGES = 2000;

/** Options of {@link pagedList}. */
export interface PagedListOptions {
  /** Label selector of the list (`labelSelector` query parameter). */
  labelSelector?: string;
  /** Items per page, 1..5000 (default {@link DEFAULT_PAGE_SIZE}). */
  pageSize?: number;
  /** Applied to each item as its page arrives (the cache transform); returns the item to keep. */
  transform?: (obj: k8s.KubernetesObject) => k8s.KubernetesObject;
}

/** A list request the apiserver refused or answered with something that is not a list. */
export class ListError extends Error {
  constructor(
    /** HTTP status of the refused page (0 when the body was not a list). */
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'ListError';
  }
}

/**
 * A list function for `k8s.makeInformer`: GETs `server + path` page by page and resolves to one
 * list of every item (the `resourceVersion` of the last page, which is the snapshot all pages
 * come from), each item transformed as its page arrives.
 *
 * @param server the apiserver's base URL (e.g. `https://127.0.0.1:6443`), without a trailing slash.
 * @param path a collection path, e.g. `/api/v1/pods` or `/apis/apps/v1/namespaces/a/deployments`.
 * @param fetch the request function with the kubeconfig's TLS and credentials (`kubeFetch`).
 * @throws ListError when a page's status is not 2xx (message: path, status and the apiserver's
 *   Status message; a 410 means the `continue` token expired and the informer lists again), when
 *   a body is not a list, or when a list runs past {@link MAX_PAGES} pages.
 */
export function pagedList(
  server: string,
  path: string,
  fetch: FetchLike,
  opts: PagedListOptions = {},
): () => Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> {
  const pageSize = Math.min(5000, Math.max(1, Math.floor(opts.pageSize ?? DEFAULT_PAGE_SIZE)));
  return async () => {
    const items: k8s.KubernetesObject[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    for (let page = 0; page < MAX_PAGES; page++) {
      const url = new URL(server + path);
      url.searchParams.set('limit', String(pageSize));
      if (opts.labelSelector) url.searchParams.set('labelSelector', opts.labelSelector);
      if (cont) url.searchParams.set('continue', cont);
      const res = await fetch(url, { headers: { Accept: 'application/json' } });
      const text = await res.text();
      if (!res.ok)
        throw new ListError(res.status, `list ${path}: ${res.status} ${kubeStatus(text) ?? text.slice(0, 200)}`);
      let list: RawList;
      try {
        list = JSON.parse(text) as RawList;
      } catch {
        throw new ListError(0, `list ${path}: the answer is not JSON`);
      }
      if (!Array.isArray(list?.items)) throw new ListError(0, `list ${path}: the answer has no items`);
      for (const item of list.items) items.push(opts.transform ? opts.transform(item) : item);
      resourceVersion = list.metadata?.resourceVersion ?? '';
      cont = list.metadata?.continue;
      if (!cont) return { apiVersion: list.apiVersion, kind: list.kind, metadata: { resourceVersion }, items };
    }
    throw new ListError(0, `list ${path}: more than ${MAX_PAGES} pages of ${pageSize} items`);
  };
}

/** A list as the apiserver sends it (JSON: `metadata.continue`, not client-node's `_continue`). */
interface RawList {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: k8s.KubernetesObject[];
}
