/**
 * The MCPServer construct: renders one MCPServer spec into the Kubernetes objects that run it,
 * following seed 003's controller (deployment.go, service.go, configmap.go), with the gaps
 * of the seed closed (stable selector, no duplicate env, secure defaults, explicit fields).
 *
 * The same construct serves `cdk8s synth` (main.ts), `kubemcp render` (charts/render.ts) and
 * the controller's desired state, so all three produce the same objects for the same spec.
 */
import { createHash } from 'node:crypto';
import { ApiObject, Chart, JsonPatch, type ChartProps } from 'cdk8s';
import { k8s } from 'cdk8s-plus-33';
import { Construct } from 'constructs';
import type {
  MCPServerInput,
  MCPServerPeer,
  MCPServerSpec,
  MCPServerSpecInput,
  Quantity,
  Transport,
} from './api/schema.js';
import { CONFIG_FILE_KEY } from './api/schema.js';
import { parseMCPServer, parseMCPServerSpec } from './api/validate.js';
import { quantityValue } from './api/quantity.js';
import { DEFAULT_CONTROLLER_IMAGE, operatorPeer } from './operator-config.js';
import { DEFAULTS, DEFAULT_AUTH_MODE, type AuthMode } from './api/schema.js';
import {
  BRIDGE_CONTAINER,
  BRIDGE_DIR,
  BRIDGE_INIT_CONTAINER,
  BRIDGE_VOLUME,
  GATEWAY_CONTAINER,
  GATEWAY_HEALTH_PATH,
  NAMESPACE_ENV,
  POD_IP_ENV,
  POD_NAME_ENV,
  SESSION_KEYS_DIR,
  bridgeArgs,
  peersServiceName,
  sessionKeysSecretName,
  bridgeInitArgs,
  gatewayArgs,
  GATEWAY_PROCESS_ENV,
  gatewayPort,
  launcherArgv,
  type GatewayAccessConfig,
} from '../gateway/wiring.js';
import { DRAIN_SECONDS_ENV, DRAIN_WAIT_PATH, GATEWAY_READY_PATH } from '../lib/http-drain.js';

/** Name of the gateway's volume of the MCPServer's session keys (gateway/sessions.ts). */
export const SESSION_KEYS_VOLUME = 'session-keys';
/** Name of the single container of an MCP server pod (seed 003). */
export const CONTAINER_NAME = 'mcp-server';
/** Name of the gateway's container port (the Service's target) and of the Service port. */
export const PORT_NAME = 'mcp';
/** Name of an HTTP server container's own port, behind the gateway (its probes' target). */
export const SERVER_PORT_NAME = 'server';
/** Where the ConfigMap is mounted and the path given in MCP_CONFIG_FILE (seed 003). */
export const CONFIG_MOUNT_PATH = '/etc/mcp';
export const CONFIG_FILE_PATH = `${CONFIG_MOUNT_PATH}/${CONFIG_FILE_KEY}`;
/** Pod-template annotation holding a hash of the config, so a config change rolls the pods. */
export const CONFIG_HASH_ANNOTATION = 'mcp.example.com/config-hash';
/** Label carrying the transport (seed 003's labelsForMCPServer). */
export const TRANSPORT_LABEL = 'mcp.example.com/transport';

/** Requests filled in under whatever the user set (seed 003's SetDefaultResources). */
export const DEFAULT_REQUESTS: Record<Transport, { cpu: string; memory: string }> = {
  stdio: { cpu: '50m', memory: '64Mi' },
  http: { cpu: '100m', memory: '128Mi' },
  'streamable-http': { cpu: '200m', memory: '256Mi' },
};
/** Termination grace period in seconds by transport (seed 003's getTerminationGracePeriod). */
export const TERMINATION_GRACE_SECONDS: Record<Transport, number> = { stdio: 5, http: 15, 'streamable-http': 30 };
/**
 * Rollouts drain (issue 18, lib/http-drain.ts): a pod with a gateway or bridge gets at least this
 * terminationGracePeriodSeconds, and its gateway a drain deadline ({@link DRAIN_SECONDS_ENV})
 * {@link DRAIN_MARGIN_SECONDS} under the pod's grace period, so in-flight calls can finish before
 * the kubelet's SIGKILL (Kubernetes docs, "Pod Lifecycle > Termination of Pods").
 */
export const DRAIN_GRACE_SECONDS = 30;
/** Seconds between the gateway's drain deadline and the grace period's end (its exit and the server's). */
export const DRAIN_MARGIN_SECONDS = 5;

/** Replicas from which an MCPServer gets a PodDisruptionBudget (issue 10, part 3). */
export const MIN_REPLICAS_FOR_PDB = 2;

/** Whether a transport serves HTTP (and so gets a Service, a container port and probes). */
export function isHttpTransport(transport: Transport): boolean {
  return transport !== 'stdio';
}

/**
 * Whether the spec runs a stdio server behind the in-pod bridge (issue 11): transport stdio with
 * `command` set. Without `command` the controller cannot know what the image's ENTRYPOINT is,
 * so it cannot put the launcher in front of it, and the server stays unreachable (seed 003).
 */
export function isBridged(spec: Pick<MCPServerSpec, 'transport' | 'command'>): boolean {
  return spec.transport === 'stdio' && (spec.command?.length ?? 0) > 0;
}

/** `spec.auth.mode`, defaulted: `kubernetes` unless the user wrote `none` (secure by default). */
export function authMode(spec: Pick<MCPServerSpec, 'auth'>): AuthMode {
  return spec.auth?.mode ?? DEFAULT_AUTH_MODE;
}

/** What the gateway of `name` is told about its MCPServer (gateway/wiring.ts accessArgs). */
export function gatewayAccessConfig(name: string, spec: MCPServerSpec): GatewayAccessConfig {
  return {
    name,
    mode: authMode(spec),
    port: spec.port,
    path: spec.path,
    audiences: spec.auth?.audiences,
    ...(spec.auth?.oidc ? { oidc: spec.auth.oidc } : {}),
    ...(spec.auth?.tools ? { tools: spec.auth.tools } : {}),
  };
}

/**
 * `http://<name>.<namespace>.svc.cluster.local:<port>` for HTTP transports (seed 003's
 * buildEndpoint) and bridged stdio servers (the bridge serves the port); none for stdio without
 * `command`, which nothing outside its pod can reach.
 */
export function endpointFor(name: string, namespace: string, spec: MCPServerSpec): string | undefined {
  return servesHttp(spec) ? `http://${name}.${namespace}.svc.cluster.local:${spec.port}` : undefined;
}

/**
 * The full MCP URL (`status.url`): the endpoint plus `spec.path`. It is also the MCPServer's
 * canonical URL, the default audience its gateway accepts (MCP authorization spec, RFC 8707).
 */
export function urlFor(name: string, namespace: string, spec: MCPServerSpec): string | undefined {
  const endpoint = endpointFor(name, namespace, spec);
  return endpoint && `${endpoint}${spec.path ?? DEFAULTS.path}`;
}

/** Whether the pod serves MCP over HTTP on `spec.port` (an HTTP transport, or a bridged stdio server). */
export function servesHttp(spec: Pick<MCPServerSpec, 'transport' | 'command'>): boolean {
  return isHttpTransport(spec.transport) || isBridged(spec);
}

/**
 * Default image of the bridge's init container and sidecar: the kubemcp image, the same default
 * as the operator chart's controller image (the operator passes its own image).
 */
export const DEFAULT_BRIDGE_IMAGE = DEFAULT_CONTROLLER_IMAGE;
/** Requests of the bridge sidecar (one Node process relaying JSON lines) and of the gateway container. */
export const BRIDGE_REQUESTS = { cpu: '50m', memory: '64Mi' } as const;
/** Size limit of the bridge's emptyDir (it holds the static launcher, about 2 MB, and two FIFOs). */
export const BRIDGE_VOLUME_LIMIT = '16Mi';
/** Pod-template annotation naming the container `kubectl logs` and `kubectl exec` pick by default. */
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/** All labels of an MCPServer's children (seed 003's labelsForMCPServer). */
export function labelsFor(name: string, transport: Transport): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'mcp-server',
    'app.kubernetes.io/instance': name,
    'app.kubernetes.io/component': 'server',
    'app.kubernetes.io/managed-by': 'mcp-operator',
    [TRANSPORT_LABEL]: transport,
  };
}

/**
 * The pod selector of an MCPServer's Deployment and Service: only labels that never change
 * for the object's lifetime, because a Deployment's selector is immutable (the seed also
 * selected on the transport label, so changing the transport broke the Deployment).
 */
export function selectorFor(name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'mcp-server', 'app.kubernetes.io/instance': name };
}

/** The selector as a string (`a=b,c=d`), as `status.selector` reports it for the scale subresource. */
export function selectorString(name: string): string {
  return Object.entries(selectorFor(name))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Name of the ConfigMap child (seed 003: `<name>-config`). */
export function configMapName(name: string): string {
  return `${name}-config`;
}

/**
 * The `config.json` document (seed 003's setConfigMapData): server name/transport/port, the
 * user's config and a transport-specific section. Keys are sorted (as Go's encoding/json sorts
 * map keys) and indented by two spaces, so the output is byte-stable.
 */
export function configJson(name: string, spec: MCPServerSpec): string {
  const doc: Record<string, unknown> = {
    config: spec.config ?? {},
    server: { name, port: spec.port, transport: spec.transport },
  };
  if (spec.transport === 'http') doc.http = { cors: { enabled: true, origins: ['*'] } };
  if (spec.transport === 'streamable-http')
    doc['streamable-http'] = { session: { maxConnections: 100, timeout: '30m' } };
  return JSON.stringify(sortKeys(doc), null, 2);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/**
 * Requests and limits of the container: the user's, with the transport's default CPU and memory
 * requests filled in where the user set none. A default request never exceeds a limit the user
 * set (the request would be invalid), so it is capped at that limit.
 */
export function resourceRequirements(spec: MCPServerSpec): {
  requests: Record<string, Quantity>;
  limits: Record<string, Quantity>;
} {
  const limits = { ...(spec.resources?.limits ?? {}) };
  const requests: Record<string, Quantity> = {};
  for (const [resource, fallback] of Object.entries(DEFAULT_REQUESTS[spec.transport])) {
    const limit = limits[resource];
    requests[resource] = limit !== undefined && quantityValue(limit) < quantityValue(fallback) ? limit : fallback;
  }
  Object.assign(requests, spec.resources?.requests ?? {});
  return {
    requests: sortKeys(requests) as Record<string, Quantity>,
    limits: sortKeys(limits) as Record<string, Quantity>,
  };
}

/** The container security context used when the spec sets none: restricted Pod Security Standard. */
export const DEFAULT_SECURITY_CONTEXT = {
  allowPrivilegeEscalation: false,
  runAsNonRoot: true,
  runAsUser: 1000,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** Props of {@link MCPServerWorkload}. */
export interface MCPServerWorkloadProps {
  /** The MCPServer's name: names the Deployment and Service, prefixes the ConfigMap. */
  readonly name: string;
  /** Namespace to stamp on the children; omitted, they take the chart's namespace (if any). */
  readonly namespace?: string;
  /** The MCPServer spec, as written (defaults are applied here). */
  readonly spec: MCPServerSpecInput;
  /** Image of the bridge's init container and sidecar (bridged stdio only). Default {@link DEFAULT_BRIDGE_IMAGE}. */
  readonly bridgeImage?: string;
  /**
   * The operator's pods as a NetworkPolicy peer, added to a non-empty `spec.allowFrom` so the
   * operator's verification handshake still reaches the gateway (the controller passes it when it
   * runs in a pod; see {@link operatorPeer}).
   */
  readonly operatorPeer?: MCPServerPeer;
}

const q = (v: Quantity) => (typeof v === 'number' ? k8s.Quantity.fromNumber(v) : k8s.Quantity.fromString(v));
const quantities = (list: Record<string, Quantity>) =>
  Object.keys(list).length ? Object.fromEntries(Object.entries(list).map(([k, v]) => [k, q(v)])) : undefined;

/**
 * Renders an MCPServer into its children: ConfigMap `<name>-config` (only with `config`),
 * Service `<name>` (HTTP transports and bridged stdio), Deployment `<name>`, and PodDisruptionBudget
 * `<name>` (maxUnavailable 1, the pods' selector) with 2 or more replicas. A bridged stdio
 * server (transport stdio with `command`) gets the in-pod bridge: an emptyDir, the bridge-init
 * init container, the server container running `command args` through the launcher, and the
 * `kubemcp bridge` sidecar listening on `spec.port` with the probes (gateway/wiring.ts).
 *
 * Every field cdk8s-plus or the apiserver would otherwise default in a way that matters to the
 * user is set from the spec: replicas, resources, imagePullPolicy, probes, security context.
 * The same spec always renders the same objects.
 * @throws MCPServerValidationError when the spec is invalid (naming the field).
 */
export class MCPServerWorkload extends Construct {
  /** The validated spec with defaults applied. */
  readonly spec: MCPServerSpec;
  readonly deployment: k8s.KubeDeployment;
  readonly service?: k8s.KubeService;
  /** Headless Service `<name>-peers` (HTTP transports and bridged stdio): the pods' addresses for sealed sessions. */
  readonly peersService?: k8s.KubeService;
  readonly configMap?: k8s.KubeConfigMap;
  /** PodDisruptionBudget `<name>` (maxUnavailable 1), only with 2 or more replicas. */
  readonly podDisruptionBudget?: k8s.KubePodDisruptionBudget;
  /** NetworkPolicy `<name>`: ingress to the pods only on the gateway's port (issue 17). */
  readonly networkPolicy: k8s.KubeNetworkPolicy;

  constructor(scope: Construct, id: string, props: MCPServerWorkloadProps) {
    super(scope, id);
    const { name, namespace } = props;
    const spec = parseMCPServerSpec(props.spec, name);
    this.spec = spec;
    const bridged = isBridged(spec);
    const http = servesHttp(spec);
    const bridgeImage = props.bridgeImage ?? DEFAULT_BRIDGE_IMAGE;
    const labels = labelsFor(name, spec.transport);
    const meta = (objectName: string) => ({ name: objectName, ...(namespace ? { namespace } : {}), labels });
    const hasConfig = Object.keys(spec.config ?? {}).length > 0;

    let configHash: string | undefined;
    if (hasConfig) {
      const data = { [CONFIG_FILE_KEY]: configJson(name, spec), ...spec.config };
      configHash = createHash('sha256')
        .update(JSON.stringify(sortKeys(data)))
        .digest('hex')
        .slice(0, 16);
      this.configMap = new k8s.KubeConfigMap(this, 'config', { metadata: meta(configMapName(name)), data });
    }

    if (http) {
      this.service = new k8s.KubeService(this, 'service', {
        metadata: meta(name),
        spec: {
          type: 'ClusterIP',
          selector: selectorFor(name),
          ports: [
            { name: PORT_NAME, port: spec.port, targetPort: k8s.IntOrString.fromString(PORT_NAME), protocol: 'TCP' },
          ],
        },
      });
    }

    // Seed 003's podSpec env, in its order; an entry of the user's replaces a built-in of the same name.
    const builtins: k8s.EnvVar[] = [
      { name: 'MCP_TRANSPORT', value: spec.transport },
      { name: 'MCP_PORT', value: String(spec.port) },
      { name: 'MCP_SERVER_NAME', value: name },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ];
    // spec.auth.impersonate: the server acts as the gateway's verified caller (kubemcp serve's
    // --impersonate gateway, mcp-server/http.ts); its ServiceAccount gets the right (impersonatorBinding).
    if (impersonates(spec)) builtins.push({ name: IMPERSONATE_ENV, value: 'gateway' });
    const user = (spec.env ?? []).map(toEnvVar);
    const env = builtins.map((b) => user.find((u) => u.name === b.name) ?? b);
    env.push(...user.filter((u) => !builtins.some((b) => b.name === u.name)));
    if (hasConfig && !env.some((e) => e.name === 'MCP_CONFIG_FILE'))
      env.push({ name: 'MCP_CONFIG_FILE', value: CONFIG_FILE_PATH });

    const resources = resourceRequirements(spec);
    const probe = (
      path: string,
      initialDelaySeconds: number,
      periodSeconds: number,
      portName: string = PORT_NAME,
    ): k8s.Probe => ({
      httpGet: { path, port: k8s.IntOrString.fromString(portName), scheme: 'HTTP' },
      initialDelaySeconds,
      periodSeconds,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });

    // Kubernetes container semantics: command replaces ENTRYPOINT, args replace CMD. A bridged
    // server runs `command args` through the launcher on the FIFOs (gateway/wiring.ts).
    const entry: Pick<k8s.Container, 'command' | 'args'> = bridged
      ? { command: launcherArgv(spec.command!, spec.args ?? []) }
      : { ...(spec.command ? { command: spec.command } : {}), ...(spec.args ? { args: spec.args } : {}) };
    const bridgeMount = { name: BRIDGE_VOLUME, mountPath: BRIDGE_DIR };
    const serves = !bridged && http; // the MCP server container itself listens on the port
    // Rollouts drain (issue 18, lib/http-drain.ts): the grace period covers the gateway's drain, and
    // the server container's preStop hook waits on the gateway's /.kubemcp/drained, so the server (any
    // image, whatever it does on SIGTERM) gets SIGTERM only once the gateway passes nothing more to it.
    // The kubelet runs the hook (no shell or binary in the image needed); a failed hook (gateway already
    // gone) only sends SIGTERM at once. The gateway itself has no hook: SIGTERM starts its drain.
    const grace = http
      ? Math.max(TERMINATION_GRACE_SECONDS[spec.transport], DRAIN_GRACE_SECONDS)
      : TERMINATION_GRACE_SECONDS[spec.transport];
    const drainSeconds = grace - DRAIN_MARGIN_SECONDS;
    const waitForGateway: k8s.Lifecycle | undefined = http
      ? {
          preStop: {
            httpGet: {
              path: DRAIN_WAIT_PATH,
              port: k8s.IntOrString.fromNumber(bridged ? spec.port : gatewayPort(spec.port)),
              scheme: 'HTTP',
            },
          },
        }
      : undefined;

    const container: k8s.Container = {
      name: CONTAINER_NAME,
      image: spec.image,
      imagePullPolicy: 'IfNotPresent',
      ...entry,
      ...(serves ? { ports: [{ name: SERVER_PORT_NAME, containerPort: spec.port, protocol: 'TCP' }] } : {}),
      env,
      resources: { requests: quantities(resources.requests), limits: quantities(resources.limits) },
      ...(serves
        ? {
            livenessProbe: probe('/health', 30, 10, SERVER_PORT_NAME),
            readinessProbe: probe('/ready', 5, 5, SERVER_PORT_NAME),
          }
        : {}),
      ...(waitForGateway ? { lifecycle: waitForGateway } : {}),
      securityContext: (spec.securityContext ?? DEFAULT_SECURITY_CONTEXT) as k8s.SecurityContext,
      volumeMounts: [
        ...(hasConfig ? [{ name: 'config', mountPath: CONFIG_MOUNT_PATH, readOnly: true }] : []),
        { name: 'tmp', mountPath: '/tmp' },
        ...(bridged ? [bridgeMount] : []),
      ],
    };

    // The bridge (bridged stdio only): an init container installing the launcher and FIFOs, and
    // the `kubemcp bridge` sidecar serving them as Streamable HTTP; both restricted, whatever the
    // user's securityContext says about the server container.
    const bridgeRequests = {
      cpu: k8s.Quantity.fromString(BRIDGE_REQUESTS.cpu),
      memory: k8s.Quantity.fromString(BRIDGE_REQUESTS.memory),
    };
    const initContainers: k8s.Container[] = bridged
      ? [
          {
            name: BRIDGE_INIT_CONTAINER,
            image: bridgeImage,
            imagePullPolicy: 'IfNotPresent',
            args: bridgeInitArgs(),
            resources: { requests: bridgeRequests },
            securityContext: structuredClone(DEFAULT_SECURITY_CONTEXT) as unknown as k8s.SecurityContext,
            volumeMounts: [bridgeMount],
          },
        ]
      : [];
    // The gateway's namespace for its args' $(POD_NAMESPACE) (gateway/wiring.ts accessArgs).
    const gatewayEnv: k8s.EnvVar[] = [
      { name: NAMESPACE_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: DRAIN_SECONDS_ENV, value: String(drainSeconds) },
      // Sealed sessions (gateway/sessions.ts): this pod as a session's owner.
      { name: POD_IP_ENV, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: POD_NAME_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      // V8's young generation and glibc's arenas capped (the gateway's RSS under load).
      ...Object.entries(GATEWAY_PROCESS_ENV).map(([name, value]) => ({ name, value })),
    ];
    // The MCPServer's session keys (the operator's Secret; optional: without it sessions stay in their
    // pod), mounted into the gateway only: the server container never sees them.
    const keysMount = { name: SESSION_KEYS_VOLUME, mountPath: SESSION_KEYS_DIR, readOnly: true };
    const access = gatewayAccessConfig(name, spec);
    const sidecars: k8s.Container[] = bridged
      ? [
          {
            name: BRIDGE_CONTAINER,
            image: bridgeImage,
            imagePullPolicy: 'IfNotPresent',
            args: bridgeArgs(spec.port, BRIDGE_DIR, access),
            env: gatewayEnv,
            ports: [{ name: PORT_NAME, containerPort: spec.port, protocol: 'TCP' }],
            resources: { requests: bridgeRequests },
            // /ready answers 200 only once the stdio process answered initialize.
            livenessProbe: probe('/health', 10, 10),
            readinessProbe: probe('/ready', 2, 5),
            securityContext: structuredClone(DEFAULT_SECURITY_CONTEXT) as unknown as k8s.SecurityContext,
            volumeMounts: [bridgeMount, keysMount],
          },
        ]
      : serves
        ? [
            // The gateway in front of an HTTP server (issue 17): the Service's target port "mcp".
            {
              name: GATEWAY_CONTAINER,
              image: bridgeImage,
              imagePullPolicy: 'IfNotPresent',
              args: gatewayArgs(spec.port, access),
              env: gatewayEnv,
              ports: [{ name: PORT_NAME, containerPort: gatewayPort(spec.port), protocol: 'TCP' }],
              resources: { requests: bridgeRequests },
              livenessProbe: probe(GATEWAY_HEALTH_PATH, 10, 10),
              // 503 from the first moment of a drain (healthz stays 200: a draining gateway is alive).
              readinessProbe: probe(GATEWAY_READY_PATH, 2, 5),
              securityContext: structuredClone(DEFAULT_SECURITY_CONTEXT) as unknown as k8s.SecurityContext,
              volumeMounts: [keysMount],
            },
          ]
        : [];
    const annotations: Record<string, string> = {
      ...(configHash ? { [CONFIG_HASH_ANNOTATION]: configHash } : {}),
      ...(sidecars.length ? { [DEFAULT_CONTAINER_ANNOTATION]: CONTAINER_NAME } : {}),
    };

    this.deployment = new k8s.KubeDeployment(this, 'deployment', {
      metadata: meta(name),
      spec: {
        replicas: spec.replicas,
        selector: { matchLabels: selectorFor(name) },
        template: {
          metadata: { labels, ...(Object.keys(annotations).length ? { annotations } : {}) },
          spec: {
            ...(spec.serviceAccount ? { serviceAccountName: spec.serviceAccount } : {}),
            terminationGracePeriodSeconds: grace,
            ...(initContainers.length ? { initContainers } : {}),
            containers: [container, ...sidecars],
            volumes: [
              ...(hasConfig ? [{ name: 'config', configMap: { name: configMapName(name) } }] : []),
              { name: 'tmp', emptyDir: {} },
              ...(bridged
                ? [{ name: BRIDGE_VOLUME, emptyDir: { sizeLimit: k8s.Quantity.fromString(BRIDGE_VOLUME_LIMIT) } }]
                : []),
              ...(http
                ? [
                    {
                      name: SESSION_KEYS_VOLUME,
                      // 0444: the gateway runs as a non-root user; only its container mounts the volume.
                      secret: { secretName: sessionKeysSecretName(name), optional: true, defaultMode: 0o444 },
                    },
                  ]
                : []),
            ],
          },
        },
      },
    });
    // With two or more replicas a voluntary disruption (node drain) may take at most one pod at a
    // time, so the server keeps serving (https://kubernetes.io/docs/tasks/run-application/configure-pdb/).
    // One replica gets none: a PDB there would block drains forever.
    if (spec.replicas >= MIN_REPLICAS_FOR_PDB) {
      this.podDisruptionBudget = new k8s.KubePodDisruptionBudget(this, 'pdb', {
        metadata: meta(name),
        spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selectorFor(name) } },
      });
    }
    // Isolation (issue 17): ingress to the pods only on the gateway's port ("mcp": the gateway, or
    // the bridge of a bridged stdio server), from `spec.allowFrom` (plus the operator) or from
    // anywhere; the server container's own port and every other port are closed to other pods.
    // A stdio server without the bridge listens nowhere: all ingress is closed. Egress is not
    // restricted. Enforced only where the cluster runs a NetworkPolicy implementation.
    // https://kubernetes.io/docs/concepts/services-networking/network-policies/
    // The MCPServer's own pods are admitted too: a gateway forwards another pod's sealed session to it.
    const from = spec.allowFrom?.length
      ? [
          ...spec.allowFrom.map(toPeer),
          ...(props.operatorPeer ? [toPeer(props.operatorPeer)] : []),
          { podSelector: { matchLabels: selectorFor(name) } },
        ]
      : undefined;
    this.networkPolicy = new k8s.KubeNetworkPolicy(this, 'netpol', {
      metadata: meta(name),
      spec: {
        podSelector: { matchLabels: selectorFor(name) },
        policyTypes: ['Ingress'],
        // No ingress rules (and not `[]`, which the apiserver drops: drift on every resync) denies all.
        ...(http
          ? {
              ingress: [
                {
                  ports: [{ port: k8s.IntOrString.fromString(PORT_NAME), protocol: 'TCP' }],
                  ...(from ? { from } : {}),
                },
              ],
            }
          : {}),
      },
    });
    // Seed 003 reconciles the ConfigMap, then the Service, then the Deployment; the PDB comes last.
    if (this.service && this.configMap) this.service.addDependency(this.configMap);
    for (const child of [this.configMap, this.service]) if (child) this.deployment.addDependency(child);
    this.podDisruptionBudget?.addDependency(this.deployment);
    this.networkPolicy.addDependency(this.deployment);
    // Sealed sessions across replicas (issue 18, gateway/sessions.ts): the headless Service whose A
    // records are the current pods, not-ready ones included (a draining owner still serves its sessions).
    // Rendered last (after the NetworkPolicy): only the gateways read it, once pods exist.
    if (http) {
      this.peersService = new k8s.KubeService(this, 'peers', {
        metadata: meta(peersServiceName(name)),
        spec: {
          clusterIp: 'None',
          publishNotReadyAddresses: true,
          selector: selectorFor(name),
          ports: [
            {
              name: PORT_NAME,
              port: bridged ? spec.port : gatewayPort(spec.port),
              targetPort: k8s.IntOrString.fromString(PORT_NAME),
              protocol: 'TCP',
            },
          ],
        },
      });
      this.peersService.addDependency(this.networkPolicy);
    }
  }
}

/** The NetworkPolicy peer of the operator's pods (./operator-config.ts, where the controller's command line reads it without cdk8s). */
export { operatorPeer };

/** A `spec.allowFrom` entry as cdk8s's NetworkPolicyPeer. */
function toPeer(p: MCPServerPeer): k8s.NetworkPolicyPeer {
  return p as k8s.NetworkPolicyPeer;
}

/** The built-in ClusterRole that may create TokenReviews and SubjectAccessReviews. */
export const AUTH_DELEGATOR_ROLE = 'system:auth-delegator';
/** Annotation on the cluster-scoped binding naming its MCPServer (`<namespace>/<name>`): it can have no owner reference. */
export const OWNER_ANNOTATION = 'mcp.example.com/mcpserver';

/** Name of the ClusterRoleBinding that lets MCPServer `namespace/name`'s gateway review callers. */
export function authDelegatorBindingName(namespace: string, name: string): string {
  return `kubemcp:gateway:${namespace}:${name}`;
}

/**
 * The ClusterRoleBinding of `system:auth-delegator` to the pod's ServiceAccount (`spec.serviceAccount`,
 * else `default`) that the gateway of an HTTP MCPServer in mode `kubernetes` needs for its
 * TokenReviews and SubjectAccessReviews (kube-rbac-proxy's documented setup); undefined when the
 * gateway authenticates nobody. Cluster-scoped, so a namespaced MCPServer cannot own it: the
 * controller deletes it in its finalizer, and {@link OWNER_ANNOTATION} names the MCPServer.
 * Note: the server container shares the pod's ServiceAccount, so it may send such reviews too.
 */
export function authDelegatorBinding(
  namespace: string,
  name: string,
  spec: MCPServerSpec,
): (k8s.KubeClusterRoleBindingProps & { apiVersion: string; kind: string; metadata: { name: string } }) | undefined {
  // Mode oidc still reviews Kubernetes tokens (the operator's) and asks SubjectAccessReviews.
  if (!servesHttp(spec) || authMode(spec) === 'none') return undefined;
  return clusterBinding(namespace, name, spec, authDelegatorBindingName(namespace, name), AUTH_DELEGATOR_ROLE);
}

/**
 * A ClusterRoleBinding `bindingName` of ClusterRole `role` to the pod's ServiceAccount
 * (`spec.serviceAccount`, else `default`), labelled like the MCPServer's children and annotated
 * with {@link OWNER_ANNOTATION} (a cluster-scoped object cannot have its owner reference).
 */
function clusterBinding(
  namespace: string,
  name: string,
  spec: MCPServerSpec,
  bindingName: string,
  role: string,
): k8s.KubeClusterRoleBindingProps & { apiVersion: string; kind: string; metadata: { name: string } } {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {
      name: bindingName,
      labels: labelsFor(name, spec.transport),
      annotations: { [OWNER_ANNOTATION]: `${namespace}/${name}` },
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ kind: 'ServiceAccount', name: spec.serviceAccount || 'default', namespace }],
  };
}

/** The environment variable that tells kubemcp serve to act as its caller (`--impersonate`). */
export const IMPERSONATE_ENV = 'MCP_IMPERSONATE';
/** The ClusterRole a server acting as its callers is bound to (shipped by the operator chart). */
export const IMPERSONATOR_ROLE = 'kubemcp:impersonator';

/** Whether the MCPServer's server container acts as its callers (`spec.auth.impersonate` on an HTTP server behind the gateway). */
export function impersonates(spec: MCPServerSpec): boolean {
  return !!spec.auth?.impersonate && servesHttp(spec) && !isBridged(spec) && authMode(spec) !== 'none';
}

/** Name of the ClusterRoleBinding that lets MCPServer `namespace/name`'s server impersonate its callers. */
export function impersonatorBindingName(namespace: string, name: string): string {
  return `kubemcp:impersonator:${namespace}:${name}`;
}

/**
 * The ClusterRoleBinding of {@link IMPERSONATOR_ROLE} to `spec.serviceAccount` when the server acts
 * as its callers (issue 17); undefined otherwise. Impersonating any verified caller needs the right
 * on every user, group and ServiceAccount: RBAC's `impersonate` cannot be narrowed to "callers the
 * gateway verified", so the trust boundary is the pod (mcp-server/http.ts callerFromGateway) and
 * the right goes only to the MCPServer's own ServiceAccount, never `default` (the schema refuses it).
 * Cluster-scoped, deleted by the controller's finalizer like {@link authDelegatorBinding}.
 */
export function impersonatorBinding(
  namespace: string,
  name: string,
  spec: MCPServerSpec,
): (k8s.KubeClusterRoleBindingProps & { apiVersion: string; kind: string; metadata: { name: string } }) | undefined {
  if (!impersonates(spec) || !spec.serviceAccount) return undefined;
  return clusterBinding(namespace, name, spec, impersonatorBindingName(namespace, name), IMPERSONATOR_ROLE);
}

/** Names of every cluster-scoped ClusterRoleBinding an MCPServer may have (its finalizer deletes them). */
export function clusterBindingNames(namespace: string, name: string): string[] {
  return [authDelegatorBindingName(namespace, name), impersonatorBindingName(namespace, name)];
}

/**
 * Every cluster-scoped ClusterRoleBinding an MCPServer may have, by name, with the one it should
 * have now (`want` undefined: none, delete it): the gateway's review right and the server's
 * impersonation right.
 */
export function clusterBindings(
  namespace: string,
  name: string,
  spec: MCPServerSpec,
): Array<{ name: string; want?: ReturnType<typeof authDelegatorBinding> }> {
  return [
    { name: authDelegatorBindingName(namespace, name), want: authDelegatorBinding(namespace, name, spec) },
    { name: impersonatorBindingName(namespace, name), want: impersonatorBinding(namespace, name, spec) },
  ];
}

/** Maps a spec EnvVar (JSON shape) to cdk8s's typed EnvVar, turning quantities into Quantity objects. */
function toEnvVar(e: NonNullable<MCPServerSpec['env']>[number]): k8s.EnvVar {
  const rf = e.valueFrom?.resourceFieldRef;
  return {
    ...e,
    ...(e.valueFrom
      ? {
          valueFrom: {
            ...e.valueFrom,
            ...(rf
              ? { resourceFieldRef: { ...rf, divisor: rf.divisor === undefined ? undefined : q(rf.divisor) } }
              : {}),
          },
        }
      : {}),
  } as k8s.EnvVar;
}

/** Props of {@link MCPServerChart}. */
export interface MCPServerChartProps extends ChartProps {
  /** A whole MCPServer manifest (apiVersion, kind, metadata, spec), e.g. parsed from YAML. */
  readonly mcpServer: MCPServerInput | unknown;
  /** Image of the bridge of a bridged stdio server. Default {@link DEFAULT_BRIDGE_IMAGE}. */
  readonly bridgeImage?: string;
  /** The operator's pods, admitted beside a non-empty `spec.allowFrom` ({@link operatorPeer}). */
  readonly operatorPeer?: MCPServerPeer;
}

/**
 * A chart holding the children of one MCPServer manifest, in the manifest's namespace
 * (none stamped when the manifest has none, as `kubectl apply` would then use the current one).
 * @throws MCPServerValidationError when the manifest is invalid (naming the field).
 */
export class MCPServerChart extends Chart {
  readonly workload: MCPServerWorkload;
  constructor(scope: Construct, id: string, props: MCPServerChartProps) {
    const obj = parseMCPServer(props.mcpServer);
    super(scope, id, {
      ...props,
      namespace: props.namespace ?? obj.metadata.namespace,
      disableResourceNameHashes: true,
    });
    this.workload = new MCPServerWorkload(this, obj.metadata.name, {
      name: obj.metadata.name,
      spec: obj.spec,
      bridgeImage: props.bridgeImage,
      operatorPeer: props.operatorPeer,
    });
    // The gateway's review rights; a manifest without a namespace cannot name its ServiceAccount.
    const ns = props.namespace ?? obj.metadata.namespace;
    const bindings = ns ? clusterBindings(ns, obj.metadata.name, this.workload.spec) : [];
    bindings.forEach((b, i) => {
      if (b.want)
        // Cluster-scoped: without the namespace the chart stamps on its objects.
        new k8s.KubeClusterRoleBinding(this, i === 0 ? 'auth-delegator' : 'impersonator', b.want).addJsonPatch(
          JsonPatch.remove('/metadata/namespace'),
        );
    });
  }
}

/** Re-exported so callers can type children generically. */
export type { ApiObject };
