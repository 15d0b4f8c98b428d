/**
 * Which priority an informer event gives the reconcile it asks for (controller/queue.ts
 * {@link Priority}). Pure: the controller passes the event's object and the MCPServer it belongs
 * to, as its informer caches hold them.
 *
 * The idea is controller-runtime's priority queue (pkg/controller/priorityqueue, v0.20+: the
 * initial list and resyncs get `LowPriority`), sharpened for what a burst of MCPServers needs:
 * the reconcile that turns an MCPServer Ready should not wait behind a thousand others.
 * - {@link Priority.HIGH}: a child's observed state that the MCPServer's status does not show yet
 *   (a Deployment's ready or total replicas, or its readiness, differ from the status; a pod
 *   problem such as Unschedulable that the DeploymentReady condition does not name). Such a
 *   reconcile writes only the status (the children are applied and unchanged).
 * - {@link Priority.NORMAL}: desired state to converge: an MCPServer created or deleted, or
 *   edited (`metadata.generation` differs from `status.observedGeneration`), a child deleted.
 * - {@link Priority.LOW}: nothing the status would show: the informers' initial list, the echoes of
 *   the controller's own writes (its status patch, finalizer patch and applies come back as
 *   update events), pod events without a new problem.
 * A key already waiting is raised, never lowered (WorkQueue.add), and at steady state the queue
 * is empty, so a LOW key is handled at once: priorities only reorder a backlog.
 */
import type * as k8s from '@kubernetes/client-node';
import { Priority } from './queue.js';
import { podProblem } from './pods.js';
import type { ChildKind, MCPServerObject } from './reconciler.js';

/** The informer event kinds (client-node's ADD, UPDATE, DELETE). */
export type EventVerb = 'add' | 'update' | 'delete';

/**
 * Priority of an MCPServer's own event. `synced`: whether the informers finished their first
 * list (the events of the initial list are LOW).
 */
export function mcpServerEventPriority(verb: EventVerb, obj: MCPServerObject, synced: boolean): number {
  if (!synced) return Priority.LOW;
  if (verb !== 'update' || obj.metadata.deletionTimestamp) return Priority.NORMAL;
  return (obj.metadata.generation ?? 0) !== (obj.status?.observedGeneration ?? -1) ? Priority.NORMAL : Priority.LOW;
}

type DeploymentLike = { metadata?: k8s.V1ObjectMeta; spec?: { replicas?: number }; status?: k8s.V1DeploymentStatus };

/** Whether a Deployment is rolled out with all its desired replicas ready (status.ts's DeploymentReady, from the Deployment alone). */
function deploymentReady(dep: DeploymentLike): boolean {
  const desired = dep.spec?.replicas ?? 1;
  const ready = dep.status?.readyReplicas ?? 0;
  const rolledOut = (dep.status?.observedGeneration ?? 0) >= (dep.metadata?.generation ?? 0);
  return rolledOut && ready === desired && (desired === 0 || ready > 0) && (dep.status?.replicas ?? 0) <= desired;
}

/**
 * Priority of an event of a child (`kind`) of the MCPServer `owner` (undefined: not in the cache,
 * nothing to compare with: LOW, its own events bring it).
 */
export function childEventPriority(
  kind: ChildKind,
  verb: EventVerb,
  obj: k8s.KubernetesObject,
  owner: MCPServerObject | undefined,
): number {
  if (verb === 'delete') return Priority.NORMAL; // a child to recreate (or the MCPServer's own deletion)
  if (!owner || kind !== 'Deployment') return Priority.LOW;
  const dep = obj as DeploymentLike;
  const status = owner.status;
  const saysReady = status?.conditions?.find((c) => c.type === 'DeploymentReady')?.status === 'True';
  if (
    (dep.status?.readyReplicas ?? 0) !== (status?.readyReplicas ?? 0) ||
    (dep.status?.replicas ?? 0) !== (status?.replicas ?? 0) ||
    deploymentReady(dep) !== saysReady
  )
    return Priority.HIGH;
  return Priority.LOW;
}

/**
 * Priority of an event of a pod of the MCPServer `owner`: HIGH when the pod has a problem
 * (controller/pods.ts) that the DeploymentReady condition does not name yet, else LOW (a pod
 * turning ready is reported by its Deployment's event).
 */
export function podEventPriority(verb: EventVerb, pod: k8s.V1Pod, owner: MCPServerObject | undefined): number {
  if (verb === 'delete' || !owner) return Priority.LOW;
  const problem = podProblem([pod]);
  if (!problem) return Priority.LOW;
  const cond = owner.status?.conditions?.find((c) => c.type === 'DeploymentReady');
  return cond?.status === 'False' && cond.reason === problem.reason ? Priority.LOW : Priority.HIGH;
}
