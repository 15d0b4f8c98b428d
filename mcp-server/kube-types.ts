/**
 * The shapes of what the apiserver sends, as JSON on the wire (timestamps are RFC 3339 strings,
 * unlike `@kubernetes/client-node`'s model classes, which deserialize them to `Date`), for the
 * typed operations of the gateway (kube.ts). Only the fields this server reads are named, all
 * optional: an answer may lack any of them. Field meanings: the Kubernetes API reference
 * (https://kubernetes.io/docs/reference/kubernetes-api/).
 */

/** An owner reference (metadata.ownerReferences[]). */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

/** Object metadata (meta/v1 ObjectMeta). */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/** Any Kubernetes object: apiVersion, kind, metadata, and fields of its own (unknown until narrowed). */
export interface KubernetesObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

/** List metadata (meta/v1 ListMeta): `continue` is the next page token. */
export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
}

/** A list of objects (`items` is always an array: the gateway turns a missing or null one into []). */
export interface KubeList<T extends KubernetesObject = KubernetesObject> {
  apiVersion?: string;
  kind?: string;
  metadata?: ListMeta;
  items: T[];
}

/** The apiserver's Table rendering (meta.k8s.io/v1 Table), `kubectl get`'s compact output. */
export interface Table {
  kind?: string;
  metadata?: ListMeta;
  columnDefinitions?: Array<{ name: string; type: string; format?: string; description?: string; priority?: number }>;
  rows?: Array<{ cells?: unknown[]; object?: KubernetesObject }>;
}

/** A meta/v1 Status (the answer of some deletes, and of every failure). */
export interface Status extends KubernetesObject {
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

/** A status condition (Pods, Deployments, MCPServers, ...). */
export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** A label selector (meta/v1 LabelSelector). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** A container of a pod spec (the fields read here). */
export interface Container {
  name: string;
  image?: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/** A container's status in a pod. */
export interface ContainerStatus {
  name: string;
  image?: string;
  ready?: boolean;
  restartCount?: number;
  state?: unknown;
  lastState?: unknown;
}

/** A core/v1 Pod (the fields read here). */
export interface Pod extends KubernetesObject {
  spec?: {
    nodeName?: string;
    containers?: Container[];
    volumes?: Array<{ name: string; emptyDir?: unknown }>;
    serviceAccountName?: string;
    securityContext?: unknown;
  };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    podIP?: string;
    startTime?: string;
    conditions?: Condition[];
    containerStatuses?: ContainerStatus[];
  };
}

/** A core/v1 Node (the fields read here). */
export interface Node extends KubernetesObject {
  status?: { conditions?: Condition[]; nodeInfo?: { kubeletVersion?: string }; capacity?: Record<string, string> };
}

/** A core/v1 Event (the fields read here). */
export interface Event extends KubernetesObject {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  series?: { count?: number };
  lastTimestamp?: string;
  eventTime?: string;
  firstTimestamp?: string;
  involvedObject?: { kind?: string; name?: string; namespace?: string; uid?: string };
}

/**
 * A workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Service, MCPServer, ...): the
 * fields rollout status, selectors and rollbacks read.
 */
export interface Workload extends KubernetesObject {
  spec?: {
    replicas?: number;
    /** A LabelSelector, or a Service's plain label map. */
    selector?: LabelSelector | Record<string, string>;
    template?: { metadata?: ObjectMeta; spec?: unknown };
    updateStrategy?: { type?: string };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    currentReplicas?: number;
    updateRevision?: string;
    currentRevision?: string;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
    /** The label selector string of a scale subresource's status (MCPServer). */
    selector?: string;
    conditions?: Condition[];
  };
}

/** An autoscaling/v1 Scale (the scale subresource). */
export interface Scale extends KubernetesObject {
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

/** One event of a watch stream; BOOKMARK objects carry only metadata.resourceVersion. */
export interface WatchEvent<T extends KubernetesObject = KubernetesObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}
