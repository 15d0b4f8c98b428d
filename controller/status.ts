/**
 * The observed state of an MCPServer, computed from its children (seed 003's
 * updateStatusFromResources / isServiceReady / buildEndpoint, and its validation path for
 * Failed). Pure: the reconciler reads the children and writes the result.
 *
 * Conditions follow metav1.Condition semantics
 * (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#typical-status-properties):
 * `lastTransitionTime` changes only when `status` changes.
 */
import {
  type Condition,
  type ConditionType,
  type MCPServerSpec,
  type MCPServerStatus,
  type Phase,
} from '../charts/api/schema.js';
import {
  authMode,
  endpointFor,
  impersonates,
  isBridged,
  servesHttp,
  selectorString,
  urlFor,
} from '../charts/mcpserver.js';
import { CALLER_CLUSTER_ROLE, rightText } from '../gateway/auth/sar.js';
import type { PodProblem } from './pods.js';
import type { HandshakeResult } from './verify.js';

/** Why the controller's verification did or did not run (see {@link ObservedState.verify}). */
export type VerifyInput =
  /** `--verify=off`: no handshakes; Ready reflects the Deployment and Service. */
  | { state: 'disabled' }
  /** No ready pod behind the Service yet: nothing to handshake. */
  | { state: 'waiting' }
  /** Handshakes run: the latest result (if any) and whether one is running. */
  | { state: 'checked'; result?: HandshakeResult; inFlight: boolean };

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
  deployment?: {
    replicas?: number;
    readyReplicas?: number;
    specReplicas?: number;
    observedGeneration?: number;
    generation?: number;
  };
  service?: { type?: string; clusterIP?: string };
  /** Children the apiserver refused to apply, with its message (ChildrenApplied=False/ApplyFailed, phase Failed). */
  applyFailures?: Array<{ kind: string; name: string; message: string }>;
  /** Why the pods do not run, from their states (controller/pods.ts), or a bridged pod's bridge `/ready` (controller/bridge-ready.ts, reason BridgeNotReady). */
  pods?: PodProblem;
  /** Protocol verification (HTTP transports; ignored for stdio). Omitted: as `disabled`. */
  verify?: VerifyInput;
}

type CondInput = { type: ConditionType; status: 'True' | 'False' | 'Unknown'; reason: string; message: string };

/**
 * Merges new conditions into the previous ones: a condition whose status is unchanged keeps its
 * lastTransitionTime; otherwise it gets `now`. Output is ordered as CONDITION order of input.
 */
export function mergeConditions(
  previous: Condition[] | undefined,
  next: CondInput[],
  generation: number,
  now: string,
): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now;
    return {
      type: c.type,
      status: c.status,
      observedGeneration: generation,
      lastTransitionTime,
      reason: c.reason,
      message: c.message,
    };
  });
}

export { endpointFor, urlFor };

/** Why a stdio MCPServer without `command` cannot be reached (condition messages say it). */
export const UNREACHABLE_STDIO =
  'stdio transport without spec.command: the server reads stdin and writes stdout inside its pod, and nothing outside can reach it (no Service, no endpoint); set spec.command (and args) to serve it through the in-pod bridge as Streamable HTTP';

/** Seed 003's isServiceReady for ClusterIP Services: a cluster IP is assigned. */
export function serviceReady(service: ObservedState['service']): boolean {
  return (
    !!service && (service.type ?? 'ClusterIP') === 'ClusterIP' && !!service.clusterIP && service.clusterIP !== 'None'
  );
}

/** Verified=False reasons that a retry will not fix without a change (phase Failed rather than Pending). */
const LASTING_VERIFY_FAILURES = new Set(['ProtocolError', 'AuthRequired']);

/**
 * The status for the observed state.
 * - invalid spec: phase Failed, ConfigurationValid=False with the message, Ready=False;
 * - terminating: phase Terminating, Ready=False;
 * - a child the apiserver refused: phase Failed, ChildrenApplied=False/ApplyFailed with the
 *   apiserver's message, Ready=False (the Deployment and Service conditions still say what runs);
 * - otherwise Ready when the Deployment has all desired replicas ready (and at least one, or
 *   zero desired), for HTTP transports the Service has a cluster IP, and, when verification is
 *   on, the MCP handshake succeeded (Verified=True); Pending before that (Failed when the
 *   handshake shows a lasting problem: ProtocolError, AuthRequired). DeploymentReady=False
 *   carries the pods' problem (Unschedulable, ImagePullBackOff, CrashLoopBackOff, OOMKilled, ...)
 *   as its reason, and Ready=False the reason of what blocks it first.
 * `now` is an RFC 3339 timestamp used for condition transitions and `lastTransitionTime`.
 */
export function computeStatus(obs: ObservedState, previous: MCPServerStatus | undefined, now: string): MCPServerStatus {
  const conds: CondInput[] = [];
  let phase: Phase;
  let endpoint: string | undefined;
  let url: string | undefined;
  let discovery: Pick<MCPServerStatus, 'serverInfo' | 'tools' | 'prompts' | 'resources'> = {};
  const dep = obs.deployment;
  const replicas = dep?.replicas ?? 0;
  const readyReplicas = dep?.readyReplicas ?? 0;

  if (obs.terminating) {
    phase = 'Terminating';
    conds.push({ type: 'Ready', status: 'False', reason: 'Terminating', message: 'MCPServer is being deleted' });
  } else if (obs.invalid !== undefined || !obs.spec) {
    phase = 'Failed';
    const message = obs.invalid ?? 'invalid spec';
    conds.push({
      type: 'Ready',
      status: 'False',
      reason: 'InvalidConfiguration',
      message: `Configuration validation failed: ${message}`,
    });
    conds.push({ type: 'ConfigurationValid', status: 'False', reason: 'InvalidConfiguration', message });
  } else {
    const spec = obs.spec;
    const desired = spec.replicas;
    const rolledOut = !!dep && (dep.observedGeneration ?? 0) >= (dep.generation ?? 0);
    const depReady =
      !!dep &&
      rolledOut &&
      readyReplicas === desired &&
      (desired === 0 || readyReplicas > 0) &&
      (dep.replicas ?? 0) <= desired;
    const depMsg = `Deployment has ${readyReplicas}/${desired} ready replicas`;
    const pods = depReady ? undefined : obs.pods;
    conds.push(
      depReady
        ? { type: 'DeploymentReady', status: 'True', reason: 'DeploymentReady', message: depMsg }
        : {
            type: 'DeploymentReady',
            status: 'False',
            reason: pods?.reason ?? 'DeploymentNotReady',
            message: pods ? `${depMsg}: ${pods.message}` : depMsg,
          },
    );
    const http = servesHttp(spec);
    const svcReady = http ? serviceReady(obs.service) : true;
    const via = isBridged(spec) ? ' (the stdio server behind the in-pod bridge)' : '';
    conds.push(
      http
        ? {
            type: 'ServiceReady',
            status: svcReady ? 'True' : 'False',
            reason: svcReady ? 'ServiceReady' : 'ServiceNotReady',
            message: svcReady ? `Service is ready and available${via}` : 'Service is not ready',
          }
        : { type: 'ServiceReady', status: 'True', reason: 'NotRequired', message: UNREACHABLE_STDIO },
    );
    const failures = obs.applyFailures ?? [];
    const applyMsg = failures.map((f) => `${f.kind} ${f.name}: ${f.message}`).join('; ');
    conds.push(
      failures.length
        ? { type: 'ChildrenApplied', status: 'False', reason: 'ApplyFailed', message: applyMsg }
        : {
            type: 'ChildrenApplied',
            status: 'True',
            reason: 'ChildrenApplied',
            message: 'All children are applied as rendered',
          },
    );

    // Protocol verification (HTTP transports only).
    const verify = obs.verify ?? { state: 'disabled' };
    let verified: CondInput;
    if (!http)
      verified = {
        type: 'Verified',
        status: 'Unknown',
        reason: 'NotApplicable',
        message: `stdio transport without the bridge: no network endpoint to handshake (${UNREACHABLE_STDIO})`,
      };
    else if (verify.state === 'disabled')
      verified = {
        type: 'Verified',
        status: 'Unknown',
        reason: 'VerificationDisabled',
        message: 'The controller runs with --verify=off: Ready reflects the Deployment and Service only',
      };
    else if (verify.state === 'waiting' || !verify.result) {
      verified =
        verify.state === 'checked' && verify.inFlight
          ? { type: 'Verified', status: 'Unknown', reason: 'Verifying', message: 'MCP handshake in progress' }
          : {
              type: 'Verified',
              status: 'Unknown',
              reason: 'WaitingForPods',
              message: 'No ready pod behind the Service to handshake yet',
            };
    } else {
      const r = verify.result;
      verified = { type: 'Verified', status: r.ok ? 'True' : 'False', reason: r.reason, message: r.message };
    }
    conds.push(verified);
    if (http) url = urlFor(obs.name, obs.namespace, spec);
    if (http && verify.state !== 'disabled') {
      const r = verify.state === 'checked' ? verify.result : undefined;
      // Discovery comes from the last successful handshake; a failed one keeps it (the condition says it failed).
      discovery = r?.ok
        ? {
            serverInfo: r.serverInfo,
            tools: r.tools,
            ...(r.prompts ? { prompts: r.prompts } : {}),
            ...(r.resources ? { resources: r.resources } : {}),
          }
        : {
            serverInfo: previous?.serverInfo,
            tools: previous?.tools,
            prompts: previous?.prompts,
            resources: previous?.resources,
          };
    }
    const verifyOk = !http || verify.state === 'disabled' || verified.status === 'True';

    if (failures.length) {
      phase = 'Failed';
      conds.unshift({
        type: 'Ready',
        status: 'False',
        reason: 'ApplyFailed',
        message: `Applying children failed: ${applyMsg}`,
      });
    } else if (depReady && svcReady && verifyOk) {
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
    } else if (!depReady || !svcReady) {
      phase = 'Pending';
      const what =
        !depReady && !svcReady
          ? 'Deployment and Service are not ready'
          : !depReady
            ? 'Deployment is not ready'
            : 'Service is not ready';
      conds.unshift({
        type: 'Ready',
        status: 'False',
        reason: pods?.reason ?? 'MCPServerNotReady',
        message: pods ? `${what}: ${pods.message}` : what,
      });
    } else {
      phase = verified.status === 'False' && LASTING_VERIFY_FAILURES.has(verified.reason) ? 'Failed' : 'Pending';
      conds.unshift({
        type: 'Ready',
        status: 'False',
        reason: verified.reason,
        message: `MCP handshake: ${verified.message}`,
      });
    }
    conds.push({
      type: 'ConfigurationValid',
      status: 'True',
      reason: 'ConfigurationValid',
      message: 'MCPServer configuration is valid',
    });
    if (http) conds.push(authCondition(obs.name, obs.namespace, spec));
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
  if (url) status.url = url;
  for (const [k, v] of Object.entries(discovery)) if (v !== undefined) (status as Record<string, unknown>)[k] = v;
  return status;
}

/**
 * The AuthEnabled condition of an MCPServer served over HTTP (issue 17): True with reason
 * KubernetesAuth (or OIDCAuth, naming the issuer and the RBAC subjects), saying what a caller needs, or False with reason AuthDisabled when
 * `spec.auth.mode` is `none`, so `kubectl get mcps` shows plainly that anyone may call it.
 */
export function authCondition(name: string, namespace: string, spec: MCPServerSpec): CondInput {
  const c = authConditionCore(name, namespace, spec);
  return { ...c, message: `${c.message}. ${reachText(name, spec)}` };
}

/**
 * What the rendered NetworkPolicy and `spec.auth.tools` leave open (charts/mcpserver.ts), so the
 * condition says plainly when the gateway's port is open to every pod or every tool to every caller.
 */
function reachText(name: string, spec: MCPServerSpec): string {
  const peers = spec.allowFrom?.length;
  const from = peers
    ? `from the ${peers} spec.allowFrom peer${peers === 1 ? '' : 's'} and the operator's pods`
    : 'from every pod and address (spec.allowFrom narrows it)';
  const tools = spec.auth?.tools
    ? `tools limited per caller by ${spec.auth.tools.length} spec.auth.tools rule${spec.auth.tools.length === 1 ? '' : 's'}`
    : 'every tool to every caller let in';
  const acts = impersonates(spec)
    ? `; the server acts as each caller (spec.auth.impersonate: ServiceAccount ${spec.serviceAccount} may impersonate, RBAC decides per caller)`
    : '';
  return `NetworkPolicy ${name} admits only the gateway's port, ${from}, where the cluster enforces NetworkPolicy; ${tools}${acts}`;
}

function authConditionCore(name: string, namespace: string, spec: MCPServerSpec): CondInput & { message: string } {
  if (authMode(spec) === 'none')
    return {
      type: 'AuthEnabled',
      status: 'False',
      reason: 'AuthDisabled',
      message:
        'spec.auth.mode is none: anyone who reaches the Service may call every tool of this server, with no identity in the audit',
    };
  const audiences = [urlFor(name, namespace, spec)!, ...(spec.auth?.audiences ?? [])];
  const oidc = authMode(spec) === 'oidc' ? spec.auth?.oidc : undefined;
  if (oidc)
    return {
      type: 'AuthEnabled',
      status: 'True',
      reason: 'OIDCAuth',
      message: `Callers need a JWT of issuer "${oidc.issuer}" (or a Kubernetes token) for audience ${audiences.map((a) => `"${a}"`).join(' or ')} and RBAC ${rightText(namespace, name)} for user ${oidc.usernamePrefix ?? 'oidc:'}<${oidc.usernameClaim ?? 'sub'}> or a group ${oidc.groupsPrefix ?? 'oidc:'}<${oidc.groupsClaim ?? 'groups'}>`,
    };
  return {
    type: 'AuthEnabled',
    status: 'True',
    reason: 'KubernetesAuth',
    message: `Callers need a Kubernetes token for audience ${audiences.map((a) => `"${a}"`).join(' or ')} and RBAC ${rightText(namespace, name)} (ClusterRole ${CALLER_CLUSTER_ROLE}, aggregated into edit and admin)`,
  };
}

/** Whether two statuses differ in anything but key order (so an unchanged status is not written). */
export function statusChanged(a: MCPServerStatus | undefined, b: MCPServerStatus): boolean {
  return canonical(a ?? {}) !== canonical(b);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : value,
  );
}
