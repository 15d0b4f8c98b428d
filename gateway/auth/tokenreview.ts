/**
 * The gateway's `kubernetes` authentication mode (issue 17): a caller's bearer token is verified
 * with a TokenReview bound to the MCPServer's audiences (authentication.k8s.io/v1, "TokenReview":
 * https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-review-v1/),
 * the kube-rbac-proxy pattern (`pkg/authn/delegating.go`), with the pitfalls closed that its
 * issues found:
 * - the review's `status.audiences` must be non-empty and intersect the configured audiences: an
 *   authenticated review with empty audiences means "the apiserver's own audience", i.e. a token
 *   minted for the apiserver, not for this server (kube-rbac-proxy#18, #56; the MCP authorization
 *   spec: a server MUST NOT accept tokens for other audiences, RFC 8707);
 * - results are cached under an HMAC of the token (never the token itself), bounded in entries
 *   (least recently used evicted) and in time: a success for at most `successTtlMs` and never past
 *   the token's own `exp`, a refusal for `failureTtlMs`; apiserver errors are not cached;
 * - a token that is not a plausible bearer token (RFC 6750 `b64token` syntax, at most
 *   {@link MAX_TOKEN_BYTES}) is refused without a review.
 *
 * The gateway authenticates to the apiserver with its pod's ServiceAccount (which needs
 * `create tokenreviews`, e.g. the `system:auth-delegator` ClusterRole); `fetch` carries those
 * credentials (lib/kube-http.ts kubeFetch).
 */
import type { FetchLike } from '../../lib/kube-http.js';
import { DecisionCache, postReview } from './review.js';

/** The verified caller, as the apiserver's authenticator reported it (TokenReview `status.user`). */
export interface Identity {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** Why a token was refused: each is a 401 (`error` is a 503 on the gateway: the caller may retry). */
export type AuthFailureReason = 'missing' | 'malformed' | 'invalid' | 'audience' | 'error';

/** The outcome of {@link TokenReviewAuthenticator.authenticate}. */
export type AuthResult =
  { ok: true; identity: Identity; audiences: string[] } | { ok: false; reason: AuthFailureReason; message: string };

/** Largest token accepted, in bytes (projected tokens are ~1 KiB; kube-apiserver has no smaller bound). */
export const MAX_TOKEN_BYTES = 16 * 1024;
/** RFC 6750 section 2.1 `b64token`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Options of {@link TokenReviewAuthenticator}. */
export interface TokenReviewOptions {
  /** The apiserver's base URL (`https://10.96.0.1:443`, or the kubeconfig's server). */
  server: string;
  /** A fetch that authenticates to the apiserver as the gateway (lib/kube-http.ts kubeFetch). */
  fetch: FetchLike;
  /** Audiences the token must be bound to, at least one (the MCPServer's `status.url` first). */
  audiences: readonly string[];
  /** How long a success is cached, in ms (default 120 000, kube-rbac-proxy's 2 min); never past the token's `exp`. */
  successTtlMs?: number;
  /** How long a refusal is cached, in ms (default 10 000). */
  failureTtlMs?: number;
  /** Most cached results (default 4096); the least recently used goes first. */
  maxEntries?: number;
  /** Deadline of one TokenReview, in ms (default 5 000). */
  timeoutMs?: number;
  /** The clock, in epoch ms (tests). */
  now?: () => number;
}

/**
 * Verifies bearer tokens with TokenReviews, caching results (see the module comment).
 * @throws Error from the constructor when `audiences` is empty.
 */
export class TokenReviewAuthenticator {
  private readonly cache: DecisionCache<AuthResult>;
  private readonly inflight = new Map<string, Promise<AuthResult>>();
  private readonly now: () => number;
  /** TokenReviews sent (for the bench's "at most one review per token per cache period" and metrics). */
  reviews = 0;

  constructor(private readonly opts: TokenReviewOptions) {
    if (!opts.audiences.length) throw new Error('TokenReviewAuthenticator: at least one audience is required');
    this.now = opts.now ?? Date.now;
    this.cache = new DecisionCache(opts.maxEntries ?? 4096, this.now);
  }

  /**
   * Verifies one bearer token (without the `Bearer ` prefix). Concurrent calls for the same token
   * share one TokenReview. Never throws: an apiserver failure is `{ok: false, reason: 'error'}`.
   */
  async authenticate(token: string | undefined): Promise<AuthResult> {
    if (!token) return { ok: false, reason: 'missing', message: 'no bearer token' };
    if (Buffer.byteLength(token) > MAX_TOKEN_BYTES || !B64TOKEN.test(token))
      return { ok: false, reason: 'malformed', message: 'the bearer token is not a token (RFC 6750 b64token)' };
    const k = this.cache.keyOf(token);
    const hit = this.cache.get(k);
    if (hit) return hit;
    let p = this.inflight.get(k);
    if (!p) {
      p = this.review(token)
        .then((result) => {
          if (result.ok || result.reason !== 'error') this.cache.set(k, result, this.ttl(token, result));
          return result;
        })
        .finally(() => this.inflight.delete(k));
      this.inflight.set(k, p);
    }
    return p;
  }

  /** Number of cached results (bounded by `maxEntries`). */
  get size(): number {
    return this.cache.size;
  }

  /** How long `result` is cached, in ms: a success never past the token's `exp`. */
  private ttl(token: string, result: AuthResult): number {
    if (!result.ok) return this.opts.failureTtlMs ?? 10_000;
    const ttl = this.opts.successTtlMs ?? 120_000;
    const exp = jwtExp(token);
    return exp === undefined ? ttl : Math.min(ttl, exp * 1000 - this.now());
  }

  private async review(token: string): Promise<AuthResult> {
    this.reviews++;
    const answer = await postReview<{
      authenticated?: boolean;
      error?: string;
      audiences?: string[];
      user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
    }>(
      this.opts.fetch,
      this.opts.server,
      '/apis/authentication.k8s.io/v1/tokenreviews',
      'TokenReview',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: this.opts.audiences } },
      this.opts.timeoutMs ?? 5000,
    );
    if (!answer.ok) return { ok: false, reason: 'error', message: answer.message };
    const status = answer.status;
    if (!status.authenticated || !status.user?.username)
      return { ok: false, reason: 'invalid', message: status.error || 'the token is not valid' };
    const audiences = (status.audiences ?? []).filter((a) => this.opts.audiences.includes(a));
    if (!audiences.length)
      return {
        ok: false,
        reason: 'audience',
        message: `the token is not bound to this server's audience (${this.opts.audiences[0]})`,
      };
    const u = status.user;
    return {
      ok: true,
      audiences,
      identity: {
        username: u.username!,
        ...(u.uid ? { uid: u.uid } : {}),
        groups: u.groups ?? [],
        ...(u.extra ? { extra: u.extra } : {}),
      },
    };
  }
}

/**
 * The `exp` claim (seconds) of a JWT, read without verifying anything: used only to shorten a
 * cached success to the token's own lifetime. undefined when `token` is not a JWT with a numeric exp.
 */
export function jwtExp(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}
