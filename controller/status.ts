/**
 * The observed state of an MCPServer, computed from its children (seed 003's
 * updateStatusFromResources / isServiceReady / buildEndpoint, and its validation path for
 * Failed). Pure: the reconciler reads the children and writes the result.
 *
 * Conditions follow metav1.Condition semantics
 * (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#typical-status-properties):
 * `lastTransitionTime` changes only when `status` changes.
 */
import type { Condition, ConditionType, MCPServerSpec, MCPServerStatus, Phase } from '../charts/api/schema.js';
import { isBridged, servesHttp, selectorString } from '../charts/mcpserver.js';

/** What the status is computed from: the observed children (undefined when absent). */
export interface ObservedState {
  name: string;
  namespace: string;
  generation: number;
  /** The validated spec, or undefined when validation failed. */
  spec?: MCPServerSpec;
  /** The validation message when the spec is invalid (ConfigurationValid=False, phase Failed). */
  invalid?: string;
  /** Set while the object is being deleted (phase Terminating). */
  terminating?: boolean;
  deployment?: { replicas?: number; readyReplicas?: number; specReplicas?: number; observedGeneration?: number; generation?: number };
  service?: { type?: string; clusterIP?: string };
  /** A failure while applying the children, reported as phase Failed with Ready=False. */
  applyError?: string;
}

type CondInput = { type: ConditionType; status: 'True' | 'False' | 'Unknown'; reason: string; message: string };

/**
 * Merges new conditions into the previous ones: a condition whose status is unchanged keeps its
 * lastTransitionTime; otherwise it gets `now`. Output is ordered as CONDITION order of input.
 */
export function mergeConditions(previous: Condition[] | undefined, next: CondInput[], generation: number, now: string): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now;
    return { type: c.type, status: c.status, observedGeneration: generation, lastTransitionTime, reason: c.reason, message: c.message };
  });
}

/**
 * `http://<name>.<namespace>.svc.cluster.local:<port>` for HTTP transports (seed 003's
 * buildEndpoint) and bridged stdio servers (the bridge serves the port); none for stdio without
 * `command`, which nothing outside its pod can reach.
 */
export function endpointFor(name: string, namespace: string, spec: MCPServerSpec): string | undefined {
  return servesHttp(spec) ? `http://${name}.${namespace}.svc.cluster.local:${spec.port}` : undefined;
}

/** Why a stdio MCPServer without `command` cannot be reached (condition messages say it). */
export const UNREACHABLE_STDIO =
  'stdio transport without spec.command: the server reads stdin and writes stdout inside its pod, and nothing outside can reach it (no Service, no endpoint); set spec.command (and args) to serve it through the in-pod bridge as Streamable HTTP';

/** Seed 003's isServiceReady for ClusterIP Services: a cluster IP is assigned. */
export function serviceReady(service: ObservedState['service']): boolean {
  return !!service && (service.type ?? 'ClusterIP') === 'ClusterIP' && !!service.clusterIP && service.clusterIP !== 'None';
}

/**
 * The status for the observed state.
 * - invalid spec: phase Failed, ConfigurationValid=False with the message, Ready=False;
 * - terminating: phase Terminating, Ready=False;
 * - otherwise Ready when the Deployment has all desired replicas ready (and at least one, or
 *   zero desired) and, for HTTP transports, the Service has a cluster IP; Pending before that.
 * `now` is an RFC 3339 timestamp used for condition transitions and `lastTransitionTime`.
 */
export function computeStatus(obs: ObservedState, previous: MCPServerStatus | undefined, now: string): MCPServerStatus {
  const conds: CondInput[] = [];
  let phase: Phase;
  let endpoint: string | undefined;
  const dep = obs.deployment;
  const replicas = dep?.replicas ?? 0;
  const readyReplicas = dep?.readyReplicas ?? 0;

  if (obs.terminating) {
    phase = 'Terminating';
    conds.push({ type: 'Ready', status: 'False', reason: 'Terminating', message: 'MCPServer is being deleted' });
  } else if (obs.invalid !== undefined || !obs.spec) {
    phase = 'Failed';
    const message = obs.invalid ?? 'invalid spec';
    conds.push({ type: 'Ready', status: 'False', reason: 'InvalidConfiguration', message: `Configuration validation failed: ${message}` });
    conds.push({ type: 'ConfigurationValid', status: 'False', reason: 'InvalidConfiguration', message });
  } else {
    const spec = obs.spec;
    const desired = spec.replicas;
    const rolledOut = !!dep && (dep.observedGeneration ?? 0) >= (dep.generation ?? 0);
    const depReady = !!dep && rolledOut && readyReplicas === desired && (desired === 0 || readyReplicas > 0) && (dep.replicas ?? 0) <= desired;
    const depMsg = `Deployment has ${readyReplicas}/${desired} ready replicas`;
    conds.push({ type: 'DeploymentReady', status: depReady ? 'True' : 'False', reason: depReady ? 'DeploymentReady' : 'DeploymentNotReady', message: depMsg });
    const http = servesHttp(spec);
    const svcReady = http ? serviceReady(obs.service) : true;
    const via = isBridged(spec) ? ' (the stdio server behind the in-pod bridge)' : '';
    conds.push(
      http
        ? { type: 'ServiceReady', status: svcReady ? 'True' : 'False', reason: svcReady ? 'ServiceReady' : 'ServiceNotReady', message: svcReady ? `Service is ready and available${via}` : 'Service is not ready' }
        : { type: 'ServiceReady', status: 'True', reason: 'NotRequired', message: UNREACHABLE_STDIO },
    );
    if (obs.applyError) {
      phase = 'Failed';
      conds.unshift({ type: 'Ready', status: 'False', reason: 'ReconcileError', message: obs.applyError });
    } else if (depReady && svcReady) {
      phase = 'Ready';
      endpoint = endpointFor(obs.name, obs.namespace, spec);
      conds.unshift({
        type: 'Ready',
        status: 'True',
        reason: 'MCPServerReady',
        message: http
          ? `MCPServer is ready and serving requests${isBridged(spec) ? ' through the in-pod bridge (the stdio process answered initialize)' : ''}`
          : `MCPServer's pods are ready, but it is not reachable: ${UNREACHABLE_STDIO}`,
      });
    } else {
      phase = 'Pending';
      const reason = !depReady && !svcReady ? 'Deployment and Service are not ready' : !depReady ? 'Deployment is not ready' : 'Service is not ready';
      conds.unshift({ type: 'Ready', status: 'False', reason: 'MCPServerNotReady', message: reason });
    }
    conds.push({ type: 'ConfigurationValid', status: 'True', reason: 'ConfigurationValid', message: 'MCPServer configuration is valid' });
  }

  const conditions = mergeConditions(previous?.conditions, conds, obs.generation, now);
  const phaseChanged = previous?.phase !== phase;
  const status: MCPServerStatus = {
    phase,
    conditions,
    readyReplicas,
    replicas,
    selector: selectorString(obs.name),
    observedGeneration: obs.generation,
    lastTransitionTime: phaseChanged || !previous?.lastTransitionTime ? now : previous.lastTransitionTime,
  };
  if (endpoint) status.endpoint = endpoint;
  return status;
}

/** Whether two statuses differ in anything but key order (so an unchanged status is not written). */
export function statusChanged(a: MCPServerStatus | undefined, b: MCPServerStatus): boolean {
  return canonical(a ?? {}) !== canonical(b);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)))
      : value,
  );
}
