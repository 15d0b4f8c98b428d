/**
 * Types for reading objects in assertions: client-node's models (and the MCPServer types inferred
 * from the zod schema, charts/api/schema.ts) with every field made present, so a test can follow
 * `dep.spec.template.spec.containers[0].env` without a `!` at each step. This is only a reading
 * aid: a field that is in fact missing still fails the test (a TypeError, or the assertion on
 * `undefined`). Pure types, one pure helper (byKind) and the
 * expected MCPServer table columns; no cluster.
 */
import type * as k8s from '@kubernetes/client-node';
import type { MCPServerSpec, MCPServerStatus } from '../charts/api/schema.js';

/**
 * `T` with every optional field required and non-null, recursively; arrays become non-empty
 * tuples (`[0]` is present, further indexes stay `| undefined` under noUncheckedIndexedAccess).
 */
export type Sure<T> = T extends string | number | boolean | bigint | symbol | Date | ((...args: never[]) => unknown)
  ? T
  : T extends ReadonlyArray<infer U>
    ? [Sure<NonNullable<U>>, ...Sure<NonNullable<U>>[]]
    : T extends object
      ? { -readonly [K in keyof T]-?: Sure<NonNullable<T[K]>> }
      : T;

/** An MCPServer as read back from the apiserver (the zod-inferred spec and status). */
export type MCPS = Sure<{ metadata: k8s.V1ObjectMeta; spec: MCPServerSpec; status: MCPServerStatus }>;

/** The rendered or listed objects a test reads, by kind (client-node's models). */
export interface ByKind {
  Deployment: Sure<k8s.V1Deployment>;
  Service: Sure<k8s.V1Service>;
  ConfigMap: Sure<k8s.V1ConfigMap>;
  PodDisruptionBudget: Sure<k8s.V1PodDisruptionBudget>;
  NetworkPolicy: Sure<k8s.V1NetworkPolicy>;
  Role: Sure<k8s.V1Role>;
  ServiceAccount: Sure<k8s.V1ServiceAccount>;
  [kind: string]: unknown;
}

/**
 * Indexes objects by `kind` (the first object of each kind wins: an MCPServer's own Service comes
 * before its peers' headless Service), typed as {@link ByKind}.
 * A kind that is absent reads as `undefined` at run time: the test that reads it fails.
 */
export function byKind(objs: ReadonlyArray<{ kind?: string }>): ByKind {
  return Object.fromEntries([...objs].reverse().map((o) => [o.kind, o])) as ByKind;
}

/** A container as a test reads it. */
export type Container = Sure<k8s.V1Container>;

/**
 * The columns `kubectl get mcps` (and the MCP server's list-mcpservers tool) must show, in order:
 * NAME, the CRD's printer columns (charts/api/crd.ts; AUTH from issue 17), AGE. Written out here, not derived, so the
 * tests check the CRD against what the issue asked for.
 */
export const MCPS_COLUMNS = [
  'NAME',
  'PHASE',
  'READY',
  'REPLICAS',
  'TRANSPORT',
  'VERIFIED',
  'TOOLS',
  'AUTH',
  'REASON',
  'ENDPOINT',
  'AGE',
];
