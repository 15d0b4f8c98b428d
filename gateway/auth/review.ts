/**
 * What the gateway's two apiserver reviews share (tokenreview.ts: TokenReview, sar.ts:
 * SubjectAccessReview): a cache of decisions keyed by an HMAC of the input under a per-process
 * random key (the input itself, a token or an identity, is never a key), each entry with its own
 * expiry, bounded in entries with the least recently used evicted; and the POST of one review
 * object to the apiserver with a deadline, its answer's `status` or the reason it has none.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { FetchLike } from '../../lib/kube-http.js';
import { kubeStatus } from '../../lib/kube-http.js';

/** A bounded, expiring cache of decisions keyed by an HMAC of their input (see the module comment). */
export class DecisionCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAt: number }>();
  private readonly key = randomBytes(32);

  /**
   * @param maxEntries most entries kept; the least recently used goes first.
   * @param now the clock, in epoch ms.
   */
  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cache key of `input` (HMAC-SHA-256, base64url). */
  keyOf(input: string): string {
    return createHmac('sha256', this.key).update(input).digest('base64url');
  }

  /** The unexpired value under `key` (made the most recently used), or undefined. */
  get(key: string): T | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key);
    if (hit.expiresAt <= this.now()) return undefined;
    this.entries.set(key, hit); // re-inserted: most recently used last
    return hit.value;
  }

  /** Keeps `value` for `ttlMs` (nothing when ttlMs <= 0), evicting the least recently used beyond the bound. */
  set(key: string, value: T, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Number of entries (at most `maxEntries`). */
  get size(): number {
    return this.entries.size;
  }
}

/** The answer of {@link postReview}: the review's `status`, or why there is none. */
export type ReviewAnswer<S> = { ok: true; status: S } | { ok: false; message: string };

/**
 * POSTs one review object (`kind` names it in messages) to `<server><path>` and returns its
 * `status` (`{}` when absent). Never throws: a network error, a deadline, a non-2xx answer (with
 * the apiserver's Status message) or a body that is not JSON is `{ok: false, message}`.
 */
export async function postReview<S>(
  fetch: FetchLike,
  server: string,
  path: string,
  kind: string,
  review: object,
  timeoutMs: number,
): Promise<ReviewAnswer<S>> {
  try {
    const res = await fetch(`${server.replace(/\/+$/, '')}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(review),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (res.status !== 201 && res.status !== 200)
      return { ok: false, message: `${kind} answered ${res.status}: ${kubeStatus(text) ?? text.slice(0, 200)}` };
    try {
      return { ok: true, status: ((JSON.parse(text) as { status?: S }).status ?? {}) as S };
    } catch {
      return { ok: false, message: `${kind} answer is not JSON` };
    }
  } catch (err) {
    return { ok: false, message: `${kind} failed: ${(err as Error).message}` };
  }
}
