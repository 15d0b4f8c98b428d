/**
 * The controller's own audience-bound tokens for its verification handshakes (issue 17): the
 * gateway in front of an MCPServer accepts only tokens bound to that server's canonical URL, so
 * the controller asks the TokenRequest API (`create serviceaccounts/token` on its own
 * ServiceAccount, Kubernetes API reference: TokenRequest v1) for one per URL, and passes RBAC
 * like any caller (the chart gives it `create mcpservers/proxy`). Tokens are reused until 80% of
 * their life, as the kubelet rotates projected tokens (Kubernetes docs: "Bound service account
 * token volume").
 */
import type { FetchLike } from '../lib/kube-http.js';

/** Lifetime asked for, in seconds (the TokenRequest minimum is 600). */
export const TOKEN_SECONDS = 3600;

/** Who the controller is: its ServiceAccount (from env `CONTROLLER_SERVICE_ACCOUNT` and `POD_NAMESPACE` in the chart). */
export interface ServiceAccountRef {
  namespace: string;
  name: string;
}

/** The controller's ServiceAccount from its environment; undefined outside the operator's pod. */
export function selfServiceAccount(env: NodeJS.ProcessEnv = process.env): ServiceAccountRef | undefined {
  const name = env.CONTROLLER_SERVICE_ACCOUNT;
  const namespace = env.POD_NAMESPACE;
  return name && namespace ? { name, namespace } : undefined;
}

/**
 * A cache of TokenRequest tokens by audience, at most `maxEntries` (the oldest forgotten first).
 * Never throws from {@link AudienceTokens.get}: a refused or failed request gives undefined, and
 * the handshake then goes without a token (its 401 says why in status).
 */
export class AudienceTokens {
  private readonly cache = new Map<string, { token: string; refreshAt: number }>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  /** The last error, for logs. */
  lastError?: string;

  constructor(
    private readonly opts: {
      server: string;
      fetch: FetchLike;
      self: ServiceAccountRef;
      maxEntries?: number;
      now?: () => number;
    },
  ) {}

  /** A token of the controller's ServiceAccount bound to `audience`. */
  async get(audience: string): Promise<string | undefined> {
    const now = (this.opts.now ?? Date.now)();
    const hit = this.cache.get(audience);
    if (hit && hit.refreshAt > now) return hit.token;
    let p = this.inflight.get(audience);
    if (!p) {
      p = this.request(audience, now).finally(() => this.inflight.delete(audience));
      this.inflight.set(audience, p);
    }
    return p;
  }

  private async request(audience: string, now: number): Promise<string | undefined> {
    const { namespace, name } = this.opts.self;
    try {
      const res = await this.opts.fetch(
        `${this.opts.server}/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`,
        {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: { audiences: [audience], expirationSeconds: TOKEN_SECONDS },
          }),
          signal: AbortSignal.timeout(5000),
        },
      );
      const text = await res.text();
      if (!res.ok) {
        this.lastError = `TokenRequest for ${namespace}/${name}: HTTP ${res.status} ${text.slice(0, 200)}`;
        return undefined;
      }
      const token = (JSON.parse(text) as { status?: { token?: string } }).status?.token;
      if (!token) return undefined;
      if (this.cache.size >= (this.opts.maxEntries ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(audience, { token, refreshAt: now + TOKEN_SECONDS * 800 });
      return token;
    } catch (err) {
      this.lastError = `TokenRequest for ${namespace}/${name}: ${(err as Error).message}`;
      return undefined;
    }
  }

  /** A fetch that adds `Authorization: Bearer <token for audience>` to each request of `base`. */
  fetchFor(audience: string, base: FetchLike): FetchLike {
    return async (url, init) => {
      const token = await this.get(audience);
      if (!token) return base(url, init);
      const headers = new Headers(init?.headers);
      headers.set('Authorization', `Bearer ${token}`);
      return base(url, { ...init, headers });
    };
  }
}
