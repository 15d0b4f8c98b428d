/**
 * The gateway's authorization by Kubernetes RBAC (issue 17): may this verified caller call this
 * MCPServer? One SubjectAccessReview (authorization.k8s.io/v1,
 * https://kubernetes.io/docs/reference/kubernetes-api/authorization-resources/subject-access-review-v1/)
 * on the MCPServer object itself, for the right {@link CALL_RIGHT}: verb `create` on the
 * subresource `mcpservers/proxy`, named the way Kubernetes names the right to reach through an
 * object (`services/proxy`, `pods/proxy`: POST is `create`). So
 * `kubectl auth can-i create mcpservers/<name> --subresource=proxy -n <ns> --as <user>` answers the question,
 * and a Role rule `{apiGroups: [mcp.example.com], resources: [mcpservers/proxy], verbs: [create]}`
 * grants it. The operator chart ships ClusterRole {@link CALLER_CLUSTER_ROLE} with that rule,
 * aggregated into `edit` (and so `admin`): who may exec into a pod may call its server; `view`
 * alone is not enough.
 *
 * Every attribute of the review comes from the gateway's configuration (namespace, name) and the
 * verified identity, never from the request (kube-rbac-proxy#346, #368). Decisions are cached for
 * a short time under an HMAC of the identity (10 s both ways by default, the apiserver's own webhook
 * authorizer defaults), so a revoked binding takes effect within that time (kube-rbac-proxy's
 * 5-minute allow cache delays revocation); apiserver errors are not cached and refuse the call.
 */
import { GROUP, PLURAL } from '../../charts/api/constants.js';
import type { FetchLike } from '../../lib/kube-http.js';
import { DecisionCache, postReview } from './review.js';
import type { Identity } from './tokenreview.js';

/** The right a caller needs on an MCPServer: `create` on `mcpservers/proxy`. */
export const CALL_RIGHT = { group: GROUP, resource: PLURAL, subresource: 'proxy', verb: 'create' } as const;
/** The operator chart's ClusterRole granting {@link CALL_RIGHT}, aggregated into `edit` and `admin`. */
export const CALLER_CLUSTER_ROLE = 'kubemcp:mcpserver-caller';

/** The outcome of {@link SubjectAccessReviewAuthorizer.authorize}; `error`: the review itself failed (the gateway answers 503). */
export type AuthzResult = { allowed: true } | { allowed: false; error?: boolean; message: string };

/** Options of {@link SubjectAccessReviewAuthorizer}. */
export interface SarOptions {
  /** The apiserver's base URL. */
  server: string;
  /** A fetch that authenticates as the gateway (`create subjectaccessreviews`, e.g. system:auth-delegator). */
  fetch: FetchLike;
  /** The MCPServer the gateway stands in front of. */
  namespace: string;
  name: string;
  /** Cache time of an allow and of a deny, in ms (default 10 000 each). */
  allowTtlMs?: number;
  denyTtlMs?: number;
  /** Most cached decisions (default 4096); least recently used evicted. */
  maxEntries?: number;
  /** Deadline of one review, in ms (default 5 000). */
  timeoutMs?: number;
}

/** The words of the right, for messages: `create mcpservers/proxy "kube-mcp" in namespace "demo"`. */
export function rightText(namespace: string, name: string): string {
  return `${CALL_RIGHT.verb} ${CALL_RIGHT.resource}/${CALL_RIGHT.subresource} "${name}" in namespace "${namespace}" (API group ${CALL_RIGHT.group})`;
}

/**
 * Decides with SubjectAccessReviews whether identities may call one MCPServer (see the module comment).
 */
export class SubjectAccessReviewAuthorizer {
  private readonly cache: DecisionCache<AuthzResult>;
  /** Reviews sent. */
  reviews = 0;

  constructor(private readonly opts: SarOptions) {
    this.cache = new DecisionCache(opts.maxEntries ?? 4096);
  }

  /** Whether `identity` holds {@link CALL_RIGHT} on the MCPServer. Never throws. */
  async authorize(identity: Identity): Promise<AuthzResult> {
    const k = this.cache.keyOf(JSON.stringify(identity));
    const hit = this.cache.get(k);
    if (hit) return hit;
    const result = await this.review(identity);
    if (result.allowed || !result.error)
      this.cache.set(k, result, result.allowed ? (this.opts.allowTtlMs ?? 10_000) : (this.opts.denyTtlMs ?? 10_000));
    return result;
  }

  private async review(identity: Identity): Promise<AuthzResult> {
    this.reviews++;
    const { namespace, name } = this.opts;
    const answer = await postReview<{ allowed?: boolean; denied?: boolean; reason?: string }>(
      this.opts.fetch,
      this.opts.server,
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      'SubjectAccessReview',
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: identity.username,
          groups: identity.groups,
          ...(identity.uid ? { uid: identity.uid } : {}),
          ...(identity.extra ? { extra: identity.extra } : {}),
          resourceAttributes: { namespace, name, ...CALL_RIGHT },
        },
      },
      this.opts.timeoutMs ?? 5000,
    );
    if (!answer.ok) return { allowed: false, error: true, message: answer.message };
    const status = answer.status;
    if (status.allowed && !status.denied) return { allowed: true };
    return {
      allowed: false,
      message: `${identity.username} may not ${rightText(namespace, name)}${status.reason ? `: ${status.reason}` : ''}`,
    };
  }
}
