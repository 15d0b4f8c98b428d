/**
 * A keyed work queue with the semantics of client-go's workqueue
 * (k8s.io/client-go/util/workqueue, as controller-runtime uses it):
 * - a key is queued at most once (duplicates coalesce while it waits);
 * - a key is never processed by two workers at once: a key added while it is being processed
 *   is queued again when that processing finishes;
 * - failures are retried with per-key exponential backoff, base 5 ms doubling up to 1000 s
 *   (workqueue.DefaultTypedItemBasedRateLimiter), reset by {@link WorkQueue.forget};
 * - {@link WorkQueue.shutDown} stops handing out new keys and lets in-flight ones finish.
 */

/** Backoff of controller-runtime's default per-item rate limiter: 5 ms * 2^failures, at most 1000 s. */
export function backoffMs(failures: number, baseMs = 5, maxMs = 1_000_000): number {
  return Math.min(baseMs * 2 ** Math.min(failures, 40), maxMs);
}

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** First retry delay in ms (default 5). */
  baseDelayMs?: number;
  /** Largest retry delay in ms (default 1,000,000 = 1000 s). */
  maxDelayMs?: number;
  /** Called whenever the number of waiting keys changes (for a depth gauge). */
  onDepth?: (depth: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;

  constructor(private readonly opts: WorkQueueOptions = {}) {}

  /** Number of keys waiting to be handed out (not counting in-flight or delayed ones). */
  get depth(): number {
    return this.queue.length;
  }

  /** Whether {@link shutDown} was called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Queues `key` unless it already waits; ignored after shutDown. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // re-queued by done()
    const waiter = this.waiters.shift();
    if (waiter) waiter(key);
    else {
      this.queue.push(key);
      this.opts.onDepth?.(this.queue.length);
    }
  }

  /** Queues `key` after `delayMs` milliseconds (a later call for the same key replaces an earlier delay only if sooner). */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const existing = this.timers.get(key) as (NodeJS.Timeout & { dueAt?: number }) | undefined;
    const dueAt = Date.now() + delayMs;
    if (existing && (existing.dueAt ?? Infinity) <= dueAt) return;
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs) as NodeJS.Timeout & { dueAt?: number };
    timer.dueAt = dueAt;
    timer.unref?.();
    this.timers.set(key, timer);
  }

  /** Queues `key` after its backoff delay and counts one more failure for it; returns the delay in ms. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = backoffMs(n, this.opts.baseDelayMs, this.opts.maxDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failure count of `key` (after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Failures counted for `key` since the last forget. */
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Waits for the next key and marks it in flight. Resolves `undefined` once the queue is shut
   * down and empty. Every key returned must be passed to {@link done}.
   */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.opts.onDepth?.(this.queue.length);
      return Promise.resolve(this.take(key));
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push((k) => resolve(k === undefined ? undefined : this.take(k))));
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  /** Marks `key` no longer in flight; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Stops handing out keys: waiting `get` calls resolve `undefined`; delayed adds are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    this.dirty.clear();
    this.opts.onDepth?.(0);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(undefined);
  }
}
