/**
 * Connection reuse for @kubernetes/client-node API clients.
 *
 * client-node 1.x builds a new `https.Agent` for every request
 * (`KubeConfig.applySecurityAuthentication` -> `createAgent`), so every request opens a new TCP
 * connection and does a full TLS handshake with the apiserver: at a few hundred requests per
 * second that handshake, on both ends, is most of the CPU the requests cost (measured by
 * `npm run bench:controller --profile`; see the README's "The controller at scale").
 * client-go instead keeps one connection pool per config (HTTP/2, or HTTP/1.1 keep-alive).
 *
 * {@link withConnectionReuse} makes every API client made from a KubeConfig share one keep-alive
 * agent, created with the TLS options client-node computed (CA, client certificate and key,
 * servername, rejectUnauthorized), and made again only when those options change (e.g. a
 * rotated client certificate). Authentication headers (bearer tokens, exec plugins) are still
 * set per request by client-node, so token rotation is unaffected.
 */
import https from 'node:https';
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
