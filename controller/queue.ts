/**
 * A keyed priority work queue with the semantics of client-go's workqueue
 * (k8s.io/client-go/util/workqueue, as controller-runtime uses it) and the ordering of
 * controller-runtime's priority queue (pkg/controller/priorityqueue, v0.20+):
 * - every key is queued with a priority (higher first: {@link Priority}); keys of the same
 *   priority are handed out first in, first out;
 * - a key is queued at most once (duplicates coalesce while it waits); adding a waiting key with
 *   a higher priority raises it (it moves to the back of the higher priority's line), a lower one
 *   leaves it where it is;
 * - a key is never processed by two workers at once: a key added while it is being processed
 *   is queued again (with the highest priority it was added with meanwhile) when that processing
 *   finishes;
 * - failures are retried with per-key exponential backoff, base 5 ms doubling up to 1000 s
 *   (workqueue.DefaultTypedItemBasedRateLimiter), reset by {@link WorkQueue.forget};
 * - {@link WorkQueue.shutDown} stops handing out new keys and lets in-flight ones finish.
 *
 * Why priorities: in a burst (1,000 MCPServers created at once, or a controller restart listing
 * them all) a FIFO queue makes the reconcile that a Deployment's "pods ready" event asks for wait
 * behind every other key; the controller queues such status-changing events with
 * {@link Priority.HIGH} and the echoes of its own writes, resyncs and the initial list with
 * {@link Priority.LOW} (controller-runtime gives the initial list and resyncs `LowPriority`).
 */

/** Priorities of {@link WorkQueue.add}: higher is handed out first. */
export const Priority = {
  /** Observed state that changes the status (e.g. a Deployment's pods became ready): reconcile promptly. */
  HIGH: 100,
  /** Desired state changed (a new or edited MCPServer, a deleted child). The default. */
  NORMAL: 0,
  /** Nothing known to have changed: the initial list, resyncs, echoes of the controller's own writes (controller-runtime's LowPriority). */
  LOW: -100,
} as const;

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

type DelayTimer = NodeJS.Timeout & { dueAt: number; priority: number };

export class WorkQueue {
  /** Waiting keys by priority, highest first; each line keeps insertion order (a Set does). */
  private readonly lines: Array<{ priority: number; keys: Set<string> }> = [];
  /** Priority of each waiting key. */
  private readonly waiting = new Map<string, number>();
  /** Keys added while in flight, with the highest priority they were added with. */
  private readonly dirty = new Map<string, number>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, DelayTimer>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;

  constructor(private readonly opts: WorkQueueOptions = {}) {}

  /** Number of keys waiting to be handed out (not counting in-flight or delayed ones). */
  get depth(): number {
    return this.waiting.size;
  }

  /** Whether {@link shutDown} was called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** The priority `key` waits with, or undefined when it is not waiting (absent, in flight or delayed). */
  priorityOf(key: string): number | undefined {
    return this.waiting.get(key);
  }

  /**
   * Queues `key` with `priority` (default {@link Priority.NORMAL}) unless it already waits; a
   * waiting key is raised to a higher priority. Ignored after shutDown.
   */
  add(key: string, priority: number = Priority.NORMAL): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      // Re-queued by done().
      this.dirty.set(key, Math.max(priority, this.dirty.get(key) ?? -Infinity));
      return;
    }
    const current = this.waiting.get(key);
    if (current !== undefined) {
      if (priority <= current) return;
      this.line(current).delete(key);
      this.line(priority).add(key);
      this.waiting.set(key, priority);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) return waiter(key);
    this.line(priority).add(key);
    this.waiting.set(key, priority);
    this.opts.onDepth?.(this.waiting.size);
  }

  private line(priority: number): Set<string> {
    let i = 0;
    while (i < this.lines.length && this.lines[i]!.priority > priority) i++;
    if (this.lines[i]?.priority !== priority) this.lines.splice(i, 0, { priority, keys: new Set() });
    return this.lines[i]!.keys;
  }

  /**
   * Queues `key` with `priority` after `delayMs` milliseconds. A key already delayed keeps the
   * sooner of the two times and the higher of the two priorities.
   */
  addAfter(key: string, delayMs: number, priority: number = Priority.NORMAL): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key, priority);
    const existing = this.timers.get(key);
    const dueAt = Date.now() + delayMs;
    if (existing && existing.dueAt <= dueAt) {
      existing.priority = Math.max(existing.priority, priority);
      return;
    }
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key, timer.priority);
    }, delayMs) as DelayTimer;
    timer.dueAt = dueAt;
    timer.priority = Math.max(priority, existing?.priority ?? -Infinity);
    timer.unref?.();
    this.timers.set(key, timer);
  }

  /**
   * Queues `key` (with `priority`) after its backoff delay and counts one more failure for it;
   * returns the delay in ms.
   */
  addRateLimited(key: string, priority: number = Priority.NORMAL): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = backoffMs(n, this.opts.baseDelayMs, this.opts.maxDelayMs);
    this.addAfter(key, delay, priority);
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
   * Waits for the next key (the oldest of the highest priority) and marks it in flight. Resolves
   * `undefined` once the queue is shut down and empty. Every key returned must be passed to
   * {@link done}.
   */
  get(): Promise<string | undefined> {
    for (const line of this.lines) {
      const key = line.keys.values().next().value;
      if (key === undefined) continue;
      line.keys.delete(key);
      this.waiting.delete(key);
      this.opts.onDepth?.(this.waiting.size);
      return Promise.resolve(this.take(key));
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push((k) => resolve(k === undefined ? undefined : this.take(k))));
  }

  private take(key: string): string {
    this.processing.add(key);
    return key;
  }

  /** Marks `key` no longer in flight; if it was added meanwhile, it is queued again with that priority. */
  done(key: string): void {
    this.processing.delete(key);
    const again = this.dirty.get(key);
    if (again !== undefined) {
      this.dirty.delete(key);
      this.add(key, again);
    }
  }

  /** Stops handing out keys: waiting `get` calls resolve `undefined`; delayed adds are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.lines.length = 0;
    this.waiting.clear();
    this.dirty.clear();
    this.opts.onDepth?.(0);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(undefined);
  }
}
