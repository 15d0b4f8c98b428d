/**
 * The operator's manifests: the MCPServer CRD, and for namespace `mcp-system` the controller's
 * ServiceAccount, least-privilege RBAC and Deployment running `kubemcp controller`.
 *
 * RBAC follows seed 003's kubebuilder markers, narrowed to what a server-side-apply controller
 * uses (https://kubernetes.io/docs/reference/access-authn-authz/rbac/): apply is a PATCH that may
 * create, so children need create+patch; pruning needs delete; leader election needs Leases in
 * the controller's own namespace only (a Role, not a ClusterRole).
 */
import { ApiObject, Chart, type ChartProps } from 'cdk8s';
import { k8s } from 'cdk8s-plus-33';
import type { Construct } from 'constructs';
import { mcpServerCrd } from './api/crd.js';
import { GROUP, PLURAL } from './api/schema.js';
import { CALL_RIGHT, CALLER_CLUSTER_ROLE } from '../gateway/auth/sar.js';
import { AUTH_DELEGATOR_ROLE, IMPERSONATOR_ROLE } from './mcpserver.js';
import {
  CONTROLLER_NAME,
  CONTROLLER_ENV,
  CONTROLLER_NODE_FLAGS,
  CONTROLLER_NODE_OPTIONS,
  CONTROLLER_PORTS,
  DEFAULT_CONTROLLER_IMAGE,
  IMAGE_BIN,
  OPERATOR_NAMESPACE,
  CONTROLLER_LABELS,
} from './operator-config.js';

export { CONTROLLER_NAME, CONTROLLER_PORTS, DEFAULT_CONTROLLER_IMAGE, OPERATOR_NAMESPACE };

const labels = { ...CONTROLLER_LABELS };

/**
 * The ClusterRole that grants calling MCPServers (`create mcpservers/proxy`, gateway/auth/sar.ts),
 * aggregated into the built-in `edit` ClusterRole and so into `admin` (the aggregation chain
 * view -> edit -> admin): who may exec into a pod may call its server; `view` alone is not enough.
 * Bind it (or `edit`) in a namespace to let a user, group or ServiceAccount call its MCPServers.
 */
export const CALLER_CLUSTER_ROLE_RULES: k8s.PolicyRule[] = [
  {
    apiGroups: [CALL_RIGHT.group],
    resources: [`${CALL_RIGHT.resource}/${CALL_RIGHT.subresource}`],
    verbs: [CALL_RIGHT.verb],
  },
];

/**
 * The ClusterRole {@link IMPERSONATOR_ROLE}: impersonating any user, group and ServiceAccount
 * (https://kubernetes.io/docs/reference/access-authn-authz/user-impersonation/), what a server
 * acting as its verified callers needs (spec.auth.impersonate). No `uids` or `userextras`: the
 * gateway passes neither. RBAC cannot narrow `impersonate` to the callers a gateway verified, so
 * this is bound only to an MCPServer's own ServiceAccount when its spec asks for it.
 */
export const IMPERSONATOR_CLUSTER_ROLE_RULES: k8s.PolicyRule[] = [
  { apiGroups: [''], resources: ['users', 'groups', 'serviceaccounts'], verbs: ['impersonate'] },
];

/**
 * The RBAC rules the controller needs cluster-wide (it watches every namespace by default).
 * Shape: rbac.authorization.k8s.io/v1 PolicyRule[].
 */
export const CONTROLLER_RULES: k8s.PolicyRule[] = [
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ['get', 'patch', 'update'] },
  { apiGroups: [GROUP], resources: [`${PLURAL}/finalizers`], verbs: ['update'] },
  {
    apiGroups: ['apps'],
    resources: ['deployments'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
  },
  {
    apiGroups: [''],
    resources: ['services', 'configmaps'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
  },
  {
    apiGroups: ['policy'],
    resources: ['poddisruptionbudgets'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
  },
  // Each MCPServer's NetworkPolicy (ingress only on the gateway's port, issue 17).
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['networkpolicies'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
  },
  // Each HTTP MCPServer's session keys (gateway/sessions.ts, issue 18): created once, read and
  // updated only to rotate them (the MCPServer's rotate annotation); never listed or watched.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update'] },
  // Read only: pod states say why a Deployment is not ready (Unschedulable, ImagePullBackOff, ...).
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  // The verification handshake passes the gateway's authorization like any caller (gateway/auth/sar.ts).
  ...CALLER_CLUSTER_ROLE_RULES,
  // Each MCPServer's gateway gets system:auth-delegator through one ClusterRoleBinding
  // (charts/mcpserver.ts authDelegatorBinding), and a server with spec.auth.impersonate gets
  // kubemcp:impersonator (impersonatorBinding); binding a role needs `bind` on it (RBAC
  // escalation prevention), granted for those two roles only: the controller cannot impersonate.
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['clusterrolebindings'],
    verbs: ['get', 'create', 'patch', 'update', 'delete'],
  },
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['clusterroles'],
    verbs: ['bind'],
    resourceNames: [AUTH_DELEGATOR_ROLE, IMPERSONATOR_ROLE],
  },
];

/**
 * Rules in the controller's own namespace: leader election on a Lease, and tokens of its own
 * ServiceAccount for its verification handshakes (controller/token.ts).
 */
export const LEADER_ELECTION_RULES: k8s.PolicyRule[] = [
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'],
  },
  { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: [CONTROLLER_NAME] },
];

/** Props of {@link OperatorChart}. */
export interface OperatorChartProps extends ChartProps {
  /** Controller image. Default {@link DEFAULT_CONTROLLER_IMAGE}. */
  readonly image?: string;
  /** Controller replicas; more than one relies on leader election. Default 1. */
  readonly replicas?: number;
  /** Include the CRD. Default true. */
  readonly includeCrd?: boolean;
  /** Namespace of the controller's namespaced objects. Default {@link OPERATOR_NAMESPACE}. */
  readonly operatorNamespace?: string;
  /** Include the Namespace object (Helm installs into `--namespace` instead). Default true. */
  readonly includeNamespace?: boolean;
  /** Image of the gateway and bridge in MCPServer pods (`--bridge-image`). Default: `image`. */
  readonly bridgeImage?: string;
  /** Reconcile only this namespace's MCPServers (`--namespace`). Default: all. */
  readonly watchNamespace?: string;
  /** Leader election (`--leader-elect` / `--no-leader-elect`). Default true. */
  readonly leaderElection?: boolean;
  /** The controller's pino log level (`--log-level`). Default `info`. */
  readonly logLevel?: string;
  /** The controller container's resources (Kubernetes quantities). Default {@link CONTROLLER_RESOURCES}. */
  readonly resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/** The controller container's default requests and limits. */
export const CONTROLLER_RESOURCES = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '500m', memory: '256Mi' },
} as const;

/**
 * Renders the CRD (cluster-scoped: no namespace is stamped on it), the `mcp-system` Namespace,
 * the controller's ServiceAccount, ClusterRole + ClusterRoleBinding, the callers' ClusterRole
 * ({@link CALLER_CLUSTER_ROLE}, aggregated into `edit`), Role + RoleBinding for
 * leader election, and its Deployment (`kubemcp controller --leader-elect`, health on
 * {@link CONTROLLER_PORTS}.health, metrics on {@link CONTROLLER_PORTS}.metrics).
 */
export class OperatorChart extends Chart {
  constructor(scope: Construct, id: string, props: OperatorChartProps = {}) {
    // No chart-level namespace: it would be stamped on the cluster-scoped objects too.
    super(scope, id, { ...props, namespace: undefined, disableResourceNameHashes: true });
    const ns = props.operatorNamespace ?? OPERATOR_NAMESPACE;
    const image = props.image ?? DEFAULT_CONTROLLER_IMAGE;
    const resources = props.resources ?? CONTROLLER_RESOURCES;
    const quantities = (q: Record<string, string> | undefined) =>
      q && Object.fromEntries(Object.entries(q).map(([k, v]) => [k, k8s.Quantity.fromString(v)]));
    const meta = (name: string, namespaced = true) => ({ name, ...(namespaced ? { namespace: ns } : {}), labels });

    if (props.includeCrd ?? true) new ApiObject(this, 'crd', mcpServerCrd() as never);
    if (props.includeNamespace ?? true) new k8s.KubeNamespace(this, 'namespace', { metadata: meta(ns, false) });
    new k8s.KubeServiceAccount(this, 'sa', { metadata: meta(CONTROLLER_NAME) });
    new k8s.KubeClusterRole(this, 'clusterrole', { metadata: meta(CONTROLLER_NAME, false), rules: CONTROLLER_RULES });
    new k8s.KubeClusterRole(this, 'caller-clusterrole', {
      metadata: {
        name: CALLER_CLUSTER_ROLE,
        labels: { ...labels, 'rbac.authorization.k8s.io/aggregate-to-edit': 'true' },
      },
      rules: CALLER_CLUSTER_ROLE_RULES,
    });
    new k8s.KubeClusterRole(this, 'impersonator-clusterrole', {
      metadata: { name: IMPERSONATOR_ROLE, labels },
      rules: IMPERSONATOR_CLUSTER_ROLE_RULES,
    });
    const subjects = [{ kind: 'ServiceAccount', name: CONTROLLER_NAME, namespace: ns }];
    new k8s.KubeClusterRoleBinding(this, 'clusterrolebinding', {
      metadata: meta(CONTROLLER_NAME, false),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CONTROLLER_NAME },
      subjects,
    });
    new k8s.KubeRole(this, 'role', {
      metadata: meta(`${CONTROLLER_NAME}-leader-election`),
      rules: LEADER_ELECTION_RULES,
    });
    new k8s.KubeRoleBinding(this, 'rolebinding', {
      metadata: meta(`${CONTROLLER_NAME}-leader-election`),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${CONTROLLER_NAME}-leader-election` },
      subjects,
    });

    const probe = (path: string, initialDelaySeconds: number): k8s.Probe => ({
      httpGet: { path, port: k8s.IntOrString.fromString('health'), scheme: 'HTTP' },
      initialDelaySeconds,
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
    new k8s.KubeDeployment(this, 'deployment', {
      metadata: meta(CONTROLLER_NAME),
      spec: {
        replicas: props.replicas ?? 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: CONTROLLER_NAME,
            terminationGracePeriodSeconds: 30,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'controller',
                image,
                imagePullPolicy: 'IfNotPresent',
                // The image's entrypoint (node <bin>) with the V8 flags NODE_OPTIONS cannot carry.
                command: ['node', ...CONTROLLER_NODE_FLAGS, IMAGE_BIN],
                args: [
                  'controller',
                  props.leaderElection === false ? '--no-leader-elect' : '--leader-elect',
                  `--leader-election-namespace=${ns}`,
                  `--metrics-port=${CONTROLLER_PORTS.metrics}`,
                  `--health-port=${CONTROLLER_PORTS.health}`,
                  // MCPServer pods run their gateway and bridge from the operator's own image by default.
                  `--bridge-image=${props.bridgeImage ?? image}`,
                  `--log-level=${props.logLevel ?? 'info'}`,
                  ...(props.watchNamespace ? [`--namespace=${props.watchNamespace}`] : []),
                ],
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  // Who the controller is, for TokenRequests of its own ServiceAccount (controller/token.ts).
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  {
                    name: 'CONTROLLER_SERVICE_ACCOUNT',
                    valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } },
                  },
                  { name: 'NODE_OPTIONS', value: CONTROLLER_NODE_OPTIONS },
                  ...Object.entries(CONTROLLER_ENV).map(([name, value]) => ({ name, value })),
                ],
                ports: [
                  { name: 'metrics', containerPort: CONTROLLER_PORTS.metrics, protocol: 'TCP' },
                  { name: 'health', containerPort: CONTROLLER_PORTS.health, protocol: 'TCP' },
                ],
                livenessProbe: probe('/healthz', 15),
                readinessProbe: probe('/readyz', 5),
                resources: {
                  ...(resources.requests ? { requests: quantities(resources.requests) } : {}),
                  ...(resources.limits ? { limits: quantities(resources.limits) } : {}),
                },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  runAsNonRoot: true,
                  runAsUser: 1000,
                  capabilities: { drop: ['ALL'] },
                },
              },
            ],
          },
        },
      },
    });
  }
}
