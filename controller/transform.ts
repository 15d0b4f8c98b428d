/**
 * What the informer caches keep of each object: controller-runtime's cache transforms
 * (`cache.Options.DefaultTransform`, `TransformStripManagedFields`), applied in place to the
 * object an informer event carries, which is the object its cache holds (client-node's
 * ListWatch stores the very object it hands to the handlers). Pure.
 *
 * - every kind: `metadata.managedFields` (nothing reads them; a third of a Deployment's size);
 * - pods: only what controller/pods.ts and the reconciler's ready-pod list read: metadata
 *   (name, namespace, uid, resourceVersion, labels, deletionTimestamp) and status (phase,
 *   conditions, container and init container statuses). A pod's spec (containers, volumes,
 *   tolerations: ~60% of its JSON) is dropped;
 * - Deployments: `status.conditions` (status.ts reads replicas, readyReplicas and
 *   observedGeneration; the spec stays: drift detection compares it with the rendered one).
 * ConfigMaps, Services, PodDisruptionBudgets, NetworkPolicies and MCPServers keep everything else (drift detection
 * and the status read them).
 */
import type * as k8s from '@kubernetes/client-node';

/** The informer caches, by what they hold. */
export type CachedKind =
  'MCPServer' | 'ConfigMap' | 'Service' | 'Deployment' | 'PodDisruptionBudget' | 'NetworkPolicy' | 'Pod';

/** Trims `obj` in place to what the controller reads of a `kind` (see the module comment); returns it. */
export function trimForCache<T extends k8s.KubernetesObject>(kind: CachedKind, obj: T): T {
  const o = obj as k8s.KubernetesObject & { spec?: unknown; status?: Record<string, unknown> };
  if (o.metadata?.managedFields) delete o.metadata.managedFields;
  if (kind === 'Pod') {
    const m = o.metadata ?? {};
    o.metadata = {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels,
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
    };
    delete o.spec;
    const s = (o.status ?? {}) as k8s.V1PodStatus;
    o.status = {
      phase: s.phase,
      ...(s.conditions ? { conditions: s.conditions } : {}),
      ...(s.containerStatuses ? { containerStatuses: s.containerStatuses } : {}),
      ...(s.initContainerStatuses ? { initContainerStatuses: s.initContainerStatuses } : {}),
    } as Record<string, unknown>;
  } else if (kind === 'Deployment' && o.status?.conditions) delete o.status.conditions;
  return obj;
}
