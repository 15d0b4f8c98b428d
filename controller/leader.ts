/**
 * Leader election on a coordination.k8s.io/v1 Lease, with the algorithm and defaults of
 * client-go's leaderelection package as controller-runtime configures it
 * (k8s.io/client-go/tools/leaderelection): lease duration 15 s, renew deadline 10 s, retry period
 * 2 s; optimistic concurrency through the Lease's resourceVersion; expiry judged by the local
 * time at which the current record was first observed (no clock-skew assumptions); release on
 * shutdown by clearing the holder.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** Timings in milliseconds (controller-runtime defaults: 15000 / 10000 / 2000). */
export interface LeaderElectionTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}
export const DEFAULT_TIMINGS: LeaderElectionTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** Options of {@link LeaderElector}. */
export interface LeaderElectorOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  leaseName: string;
  /** This candidate's identity (pod name + random suffix by default in the command). */
  identity: string;
  timings?: Partial<LeaderElectionTimings>;
  log: Logger;
  /** Called once this candidate becomes leader. */
  onStartedLeading: () => void;
  /** Called when leadership is lost (renewal failed for the renew deadline) or released. */
  onStoppedLeading: () => void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private readonly t: LeaderElectionTimings;
  private readonly abort = new AbortController();
  private observedRecord = '';
  private observedAt = 0;
  private leading = false;
  private loop?: Promise<void>;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.api = opts.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
    this.t = { ...DEFAULT_TIMINGS, ...opts.timings };
  }

  /** Whether this candidate currently holds the lease. */
  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning in the background; returns at once. */
  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const { signal } = this.abort;
    // Acquire: retry every retryPeriod until we hold the lease or are stopped.
    while (!signal.aborted && !(await this.tryAcquireOrRenew())) await sleep(this.jittered(), signal);
    if (signal.aborted) return;
    this.leading = true;
    this.opts.log.info(
      { lease: `${this.opts.namespace}/${this.opts.leaseName}`, identity: this.opts.identity },
      'became leader',
    );
    this.opts.onStartedLeading();
    // Renew: every retryPeriod; give up after renewDeadline without a successful renewal.
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.t.retryPeriodMs, signal);
      if (signal.aborted) break;
      if (await this.tryAcquireOrRenew()) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.t.renewDeadlineMs) {
        this.leading = false;
        this.opts.log.error(
          { lease: this.opts.leaseName },
          'failed to renew the lease within the renew deadline: leadership lost',
        );
        this.opts.onStoppedLeading();
        return;
      }
    }
  }

  private jittered(): number {
    return this.t.retryPeriodMs * (1 + Math.random() * 0.2);
  }

  /** One attempt (client-go's tryAcquireOrRenew). Returns whether we hold the lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, leaseName: name, identity } = this.opts;
    // Lease times are metav1.MicroTime: RFC 3339 with exactly six fractional digits (V1MicroTime).
    const now = new k8s.V1MicroTime();
    const durationSeconds = Math.round(this.t.leaseDurationMs / 1000);
    let lease: k8s.V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) {
        this.opts.log.warn({ err: String(err) }, 'reading the leader-election lease failed');
        return false;
      }
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        this.observe(identity, now);
        return true;
      } catch (createErr) {
        // 409: another candidate created it first; anything else is worth a log line.
        if ((createErr as { code?: number }).code !== 409)
          this.opts.log.warn(
            { err: String((createErr as { body?: unknown }).body ?? createErr) },
            'creating the leader-election lease failed',
          );
        return false;
      }
    }
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity ?? ''}/${String(spec.renewTime ?? '')}`;
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = Date.now();
    }
    const holder = spec.holderIdentity ?? '';
    const leaseMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder && holder !== identity && this.observedAt + leaseMs > Date.now()) return false; // held by another, not expired
    const transitions = (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: holder === identity && spec.acquireTime ? new k8s.V1MicroTime(spec.acquireTime) : now,
      renewTime: now,
      leaseTransitions: transitions,
    };
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      this.observe(identity, now);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code !== 409)
        this.opts.log.warn({ err: String(err) }, 'updating the leader-election lease failed');
      return false;
    }
  }

  private observe(holder: string, renewTime: Date): void {
    this.observedRecord = `${holder}/${String(renewTime)}`;
    this.observedAt = Date.now();
  }

  /**
   * Stops campaigning; if leading, releases the lease (holder cleared, duration 1 s) so another
   * candidate takes over at once (client-go's ReleaseOnCancel).
   */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    const { namespace, leaseName: name } = this.opts;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity === this.opts.identity) {
        const acquireTime = lease.spec.acquireTime ? new k8s.V1MicroTime(lease.spec.acquireTime) : undefined;
        lease.spec = {
          ...lease.spec,
          holderIdentity: undefined,
          leaseDurationSeconds: 1,
          acquireTime,
          renewTime: new k8s.V1MicroTime(),
        };
        await this.api.replaceNamespacedLease({ name, namespace, body: lease });
        this.opts.log.info({ lease: name }, 'released the leader-election lease');
      }
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'releasing the leader-election lease failed');
    }
  }
}
