/**
 * Connection reuse for @kubernetes/client-node API clients.
 *
 * client-node 1.x builds a new `https.Agent` for every request
 * (`KubeConfig.applySecurityAuthentication` -> `createAgent`), so every request opens a new TCP
 * connection and does a full TLS handshake with the apiserver: at a few hundred requests per
 * second that handshake, on both ends, is most of the CPU the requests cost (measured by
 * `npm run bench:controller --profile`; see docs/benchmarks.md, "The controller at scale").
 * client-go instead keeps one connection pool per config (HTTP/2, or HTTP/1.1 keep-alive).
 *
 * {@link withConnectionReuse} makes every API client made from a KubeConfig share one keep-alive
 * agent, created with the TLS options client-node computed (CA, client certificate and key,
 * servername, rejectUnauthorized), and made again only when those options change (e.g. a
 * rotated client certificate). Authentication headers (bearer tokens, exec plugins) are still
 * set per request by client-node, so token rotation is unaffected.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type * as k8s from '@kubernetes/client-node';

/** Options of {@link withConnectionReuse}. */
export interface ConnectionReuseOptions {
  /**
   * Most sockets open to the apiserver at once (default: no limit, the callers bound their
   * concurrency). A limit makes requests queue for a busy socket, which node-fetch 2 (client-node's
   * HTTP library) misreads as a truncated chunked response, "Premature close"
   * (node-fetch/node-fetch#1767); seen at 16 workers with a limit of 32.
   */
  maxSockets?: number;
  /** Idle sockets kept open (default 16). */
  maxFreeSockets?: number;
}

/** The TLS options of an agent that decide whether two agents are interchangeable. */
const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized'] as const;

function sameTls(a: https.AgentOptions, b: https.AgentOptions): boolean {
  return TLS_KEYS.every((k) => {
    const x = a[k] as unknown;
    const y = b[k] as unknown;
    if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return x.equals(y);
    return x === y || (x !== undefined && y !== undefined && String(x) === String(y));
  });
}

/**
 * A view of `kc` (same clusters, users, contexts: it inherits from `kc`, which is not changed)
 * whose API clients (`makeApiClient`, `KubernetesObjectApi.makeApiClient`, informers' list calls)
 * reuse keep-alive connections. Watches (long-lived streams) are unaffected. Only HTTPS servers
 * without a proxy are changed; for others client-node's own agent is kept.
 */
export function withConnectionReuse(kc: k8s.KubeConfig, opts: ConnectionReuseOptions = {}): k8s.KubeConfig {
  const view = Object.create(kc) as k8s.KubeConfig;
  let shared: https.Agent | undefined;
  view.applySecurityAuthentication = async (context: k8s.RequestContext): Promise<void> => {
    await kc.applySecurityAuthentication(context);
    const fresh = context.getAgent();
    const cluster = kc.getCurrentCluster();
    if (!(fresh instanceof https.Agent) || cluster?.proxyUrl) return;
    if (!shared || !sameTls(shared.options, fresh.options)) {
      shared?.destroy();
      shared = new https.Agent({
        ...fresh.options,
        keepAlive: true,
        maxSockets: opts.maxSockets,
        maxFreeSockets: opts.maxFreeSockets ?? 16,
      });
    }
    context.setAgent(shared);
  };
  return view;
}

/**
 * What {@link kubeFetch} needs of a client configuration: `applyToHTTPSOptions` puts the TLS
 * material and credentials into node's request options. A client-node KubeConfig has it, and so
 * has {@link ./in-cluster.js}'s in-cluster credentials (without loading client-node).
 */
export interface HttpsCredentials {
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

/** A fetch function (the WHATWG signature the MCP SDK's transport calls). */
export type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** Options of {@link kubeFetch}. */
export interface KubeFetchOptions {
  /**
   * Socket inactivity bound in ms (node:http's `timeout`): a request whose connection carries no
   * bytes for this long fails with "no data for <n> ms". Default: none (callers bound their
   * requests with `init.signal`).
   */
  idleTimeoutMs?: number;
}

/**
 * A fetch over node:http(s) with a KubeConfig's TLS and credentials (client certificate, bearer
 * token, CA: `KubeConfig.applyToHTTPSOptions`; the global fetch cannot take a client
 * certificate). For the apiserver itself (the informers' paginated lists, controller/list.ts)
 * and for reaching an MCPServer through the apiserver's service proxy from outside the cluster
 * (`/api/v1/namespaces/<ns>/services/http:<name>:mcp/proxy/<path>`,
 * https://kubernetes.io/docs/tasks/access-application-cluster/access-cluster-services/#manually-constructing-apiserver-proxy-urls).
 * The response body streams (Server-Sent Events pass through); `init.signal` aborts the request.
 * Rejects with a TypeError "fetch failed" (cause: the socket error) like the global fetch.
 */
export function kubeFetch(kc: HttpsCredentials, opts: KubeFetchOptions = {}): FetchLike {
  return async (input, init) => {
    const url = new URL(String(input));
    const req: https.RequestOptions & { headers: http.OutgoingHttpHeaders } = {
      method: init?.method ?? 'GET',
      headers: {},
      timeout: opts.idleTimeoutMs,
    };
    await kc.applyToHTTPSOptions(req as never);
    new Headers(init?.headers).forEach((v, k) => (req.headers[k] = v));
    const body =
      init?.body == null
        ? undefined
        : typeof init.body === 'string'
          ? init.body
          : Buffer.from(await new Response(init.body).arrayBuffer());
    return new Promise<Response>((resolve, reject) => {
      const r = (url.protocol === 'https:' ? https.request : http.request)(
        url,
        { ...req, signal: init?.signal ?? undefined },
        (res: http.IncomingMessage) => {
          const headers = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
            headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode ?? 502;
          const noBody = status === 204 || status === 304 || req.method === 'HEAD';
          resolve(
            new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream), {
              status,
              statusText: res.statusMessage,
              headers,
            }),
          );
        },
      );
      if (opts.idleTimeoutMs)
        r.on('timeout', () =>
          r.destroy(new Error(`${req.method} ${url.pathname}: no data for ${opts.idleTimeoutMs} ms`)),
        );
      r.on('error', (err) => reject(Object.assign(new TypeError('fetch failed'), { cause: err })));
      r.end(body);
    });
  };
}

/**
 * The `message` of a Kubernetes `Status` body (the apiserver's error answer, e.g. `pods "x" is
 * forbidden: ...`), `Status without message` for a Status that has none, or undefined when `body`
 * is empty, not JSON or not a Status.
 */
export function kubeStatus(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const s = JSON.parse(body) as { kind?: string; message?: string };
    return s.kind === 'Status' ? (s.message ?? 'Status without message') : undefined;
  } catch {
    return undefined;
  }
}
