/**
 * Why an MCPServer's pods do not run, from their status (issue 12): the scheduler's
 * `PodScheduled=False/Unschedulable` condition, the kubelet's container waiting reasons
 * (ImagePullBackOff, ErrImagePull, ErrImageNeverPull, InvalidImageName, CreateContainerConfigError,
 * CrashLoopBackOff) and terminations (OOMKilled). Pure: the controller passes the pods from its
 * informer cache. Reasons and their meaning:
 * https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-states and
 * https://kubernetes.io/docs/concepts/scheduling-eviction/kube-scheduler/.
 */
import type * as k8s from '@kubernetes/client-node';

/** The most telling problem among an MCPServer's pods. */
export interface PodProblem {
  /** A Kubernetes reason: `Unschedulable`, `ImagePullBackOff`, `CrashLoopBackOff`, `OOMKilled`, ... */
  reason: string;
  /** `pod <name>[ container <name>]: <the scheduler's or kubelet's message>` (+ how many other pods share it). */
  message: string;
}

/**
 * Reasons reported, most telling first: a pod that cannot be placed or whose image cannot be
 * pulled never starts; a container that is OOM-killed is more specific than the CrashLoopBackOff
 * it causes.
 */
export const POD_PROBLEM_REASONS = [
  'Unschedulable',
  'ErrImageNeverPull',
  'InvalidImageName',
  'ImagePullBackOff',
  'ErrImagePull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'OOMKilled',
  'CrashLoopBackOff',
  'RunContainerError',
] as const;

const MAX_MESSAGE = 1000;

function containerProblem(s: k8s.V1ContainerStatus): { reason: string; detail: string } | undefined {
  const waiting = s.state?.waiting;
  const lastTerminated = s.lastState?.terminated;
  const terminated = s.state?.terminated;
  if (terminated?.reason === 'OOMKilled')
    return {
      reason: 'OOMKilled',
      detail: `container ${s.name}: OOMKilled (exit code ${terminated.exitCode}): the container exceeded its memory limit`,
    };
  if (waiting?.reason === 'CrashLoopBackOff' && lastTerminated?.reason === 'OOMKilled') {
    return {
      reason: 'OOMKilled',
      detail: `container ${s.name}: OOMKilled (exit code ${lastTerminated.exitCode}, ${s.restartCount} restarts): the container exceeded its memory limit`,
    };
  }
  if (waiting?.reason && (POD_PROBLEM_REASONS as readonly string[]).includes(waiting.reason)) {
    const last =
      waiting.reason === 'CrashLoopBackOff' && lastTerminated
        ? ` (last exit code ${lastTerminated.exitCode}${lastTerminated.reason ? `, ${lastTerminated.reason}` : ''}, ${s.restartCount} restarts)`
        : '';
    return {
      reason: waiting.reason,
      detail: `container ${s.name}: ${waiting.reason}${last}${waiting.message ? `: ${waiting.message}` : ''}`,
    };
  }
  return undefined;
}

/**
 * The most telling problem among `pods` (by {@link POD_PROBLEM_REASONS} order), or undefined
 * when none of them has one (e.g. they are starting, or ready). Terminating and finished pods are
 * ignored.
 */
export function podProblem(pods: readonly k8s.V1Pod[]): PodProblem | undefined {
  const found: Array<{ reason: string; pod: string; detail: string }> = [];
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')
      continue;
    const name = pod.metadata?.name ?? '?';
    const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      found.push({
        reason: 'Unschedulable',
        pod: name,
        detail: scheduled.message ?? 'the scheduler found no node for the pod',
      });
    }
    for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const p = containerProblem(s);
      if (p) found.push({ ...p, pod: name });
    }
  }
  if (!found.length) return undefined;
  const rank = (r: string) => (POD_PROBLEM_REASONS as readonly string[]).indexOf(r);
  found.sort((a, b) => rank(a.reason) - rank(b.reason) || (a.pod < b.pod ? -1 : 1));
  const top = found[0]!;
  const others = new Set(found.filter((f) => f.reason === top.reason && f.pod !== top.pod).map((f) => f.pod)).size;
  const message = `pod ${top.pod}: ${top.detail}${others ? ` (and ${others} more pod${others > 1 ? 's' : ''})` : ''}`;
  return {
    reason: top.reason,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
  };
}
