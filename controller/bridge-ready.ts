/**
 * Why a bridged stdio MCPServer's pod is running but not Ready, in the bridge's own words (issue
 * 11: "a process that never answers `initialize` makes the pod not Ready with the reason in
 * status").
 *
 * The kubelet's readiness probe of the `mcp-bridge` sidecar (`GET /ready`) fails while the stdio
 * process has not answered `initialize`, but the kubelet does not say why: its event carries
 * only the status code ("HTTP probe failed with statuscode: 503"; Kubernetes keeps the response
 * body out of user-facing probe messages, kubernetes/kubernetes#99425), and nothing in the pod's
 * status changes while the process hangs. So the controller asks the bridge itself: it reads the
 * same `/ready` the kubelet probes, whose 503 body is `{"status":"not ready","reason":"..."}`
 * (gateway/http.ts), e.g. "the stdio process has not answered initialize within 30 s".
 * The bridge needs no RBAC to say it; the controller reaches the pod the way it reaches the
 * Service for its handshakes (controller/verify.ts): the pod IP from inside the cluster, the
 * apiserver's pod proxy (`/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/ready`, which needs
 * `get` on `pods/proxy`) from outside. Nothing is reported when `/ready` cannot be read: the
 * status then says what it said before (the Deployment is not ready).
 *
 * @module
 */
import type * as k8s from '@kubernetes/client-node';
import { BRIDGE_CONTAINER } from '../gateway/wiring.js';
import type { PodProblem } from './pods.js';
import { kubeFetch, type FetchLike } from '../lib/kube-http.js';

/** Reason of the problem {@link bridgeProblem} reports (DeploymentReady and Ready conditions). */
export const BRIDGE_NOT_READY = 'BridgeNotReady';
/** Bound of one `/ready` read, in ms. */
export const BRIDGE_READY_TIMEOUT_MS = 5_000;
/** While a bridged pod runs but is not ready, the MCPServer is reconciled again after this many ms. */
export const BRIDGE_RECHECK_MS = 10_000;

/** Where to read one pod's bridge `/ready`: a URL and the fetch to use (default the global fetch). */
export interface BridgeReadyTarget {
  url: string;
  fetch?: FetchLike;
}

/** Maps (namespace, pod, bridge port) to where its `/ready` is read. */
export type BridgeReadyTargetFn = (namespace: string, pod: k8s.V1Pod, port: number) => BridgeReadyTarget | undefined;

/**
 * Where `/ready` is read for the verify mode (controller/controller.ts `verifyTargetFor`): `dns`
 * (in the cluster) the pod IP, `proxy` the apiserver's pod proxy with the kubeconfig's
 * credentials. undefined for a pod without an IP (dns).
 */
export function bridgeReadyTargetFor(kc: k8s.KubeConfig, via: 'dns' | 'proxy'): BridgeReadyTargetFn {
  if (via === 'dns') {
    return (_ns, pod, port) => {
      const ip = pod.status?.podIP;
      if (!ip) return undefined;
      return { url: `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}/ready` };
    };
  }
  const fetch = kubeFetch(kc);
  const server = kc.getCurrentCluster()?.server.replace(/\/+$/, '') ?? '';
  return (ns, pod, port) => ({
    url: `${server}/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod.metadata?.name ?? '')}:${port}/proxy/ready`,
    fetch,
  });
}

/**
 * Pods of a bridged MCPServer whose bridge container runs but is not ready: the pod is scheduled,
 * not terminating, its `mcp-bridge` container is in state `running` with `ready: false`.
 */
export function unreadyBridgePods(pods: readonly k8s.V1Pod[]): k8s.V1Pod[] {
  return pods.filter((p) => {
    if (p.metadata?.deletionTimestamp || p.status?.phase !== 'Running') return false;
    const s = p.status.containerStatuses?.find((c) => c.name === BRIDGE_CONTAINER);
    return !!s?.state?.running && !s.ready;
  });
}

/**
 * Reads one bridge's `/ready` (bounded by `timeoutMs`).
 * @returns the bridge's reason when it answered 503 with a JSON body `{ status, reason }`;
 *   undefined when it is ready, cannot be reached, or answered anything else. Never throws.
 */
export async function readBridgeReason(
  target: BridgeReadyTarget,
  timeoutMs = BRIDGE_READY_TIMEOUT_MS,
): Promise<string | undefined> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await (target.fetch ?? (globalThis.fetch as FetchLike))(target.url, { signal: ac.signal });
    const text = (await res.text()).slice(0, 4096);
    if (res.status !== 503) return undefined;
    const body = JSON.parse(text) as { status?: unknown; reason?: unknown };
    return body.status === 'not ready' && typeof body.reason === 'string' && body.reason ? body.reason : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The bridge's reason for the first of `pods` whose bridge runs but is not ready (see
 * {@link unreadyBridgePods}), as a pod problem: reason {@link BRIDGE_NOT_READY}, message
 * `pod <name>: container mcp-bridge: not ready: <the bridge's reason> (its /ready)`.
 * @returns `recheck` true when such a pod exists (whether or not its bridge answered), so the
 *   caller reconciles again after {@link BRIDGE_RECHECK_MS}: the bridge's reason changes (e.g. the
 *   initialize timeout passes) without any change to the pod.
 */
export async function bridgeProblem(
  namespace: string,
  port: number,
  pods: readonly k8s.V1Pod[],
  target: BridgeReadyTargetFn,
): Promise<{ problem?: PodProblem; recheck: boolean }> {
  const unready = unreadyBridgePods(pods).sort((a, b) =>
    (a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1,
  );
  if (!unready.length) return { recheck: false };
  for (const pod of unready) {
    const t = target(namespace, pod, port);
    const reason = t && (await readBridgeReason(t));
    if (reason) {
      const others = unready.length - 1;
      return {
        problem: {
          reason: BRIDGE_NOT_READY,
          message: `pod ${pod.metadata?.name ?? '?'}: container ${BRIDGE_CONTAINER}: not ready: ${reason} (the bridge's /ready)${others ? ` (and ${others} more pod${others > 1 ? 's' : ''} not ready)` : ''}`,
        },
        recheck: true,
      };
    }
  }
  return { recheck: true };
}
