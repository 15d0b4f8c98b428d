/**
 * kube-scheduler on 127.0.0.1, default profile.
 * Reference: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/
 *
 * @module
 */
import type { ProcessRecord } from '../state.js';
import { startSecureComponent, type StartContext } from './context.js';

/**
 * Starts kube-scheduler; returns at once with its record and a promise of its /healthz answering
 * 200 ({@link startSecureComponent}).
 */
export function startScheduler(ctx: StartContext): Promise<{ proc: ProcessRecord; healthy: Promise<true> }> {
  return startSecureComponent(ctx, {
    component: 'kube-scheduler',
    id: 'scheduler',
    user: 'system:kube-scheduler',
    port: ctx.ports.scheduler,
    args: ['--profiling=false'],
  });
}
