/**
 * The MCPServer API (`mcp.example.com/v1alpha1`), defined once.
 *
 * Field for field this is seed 003's `api/v1alpha1/mcpserver_types.go` (kubebuilder markers
 * included: enums, defaults, bounds, required), so the seeds' sample manifests validate
 * unchanged. Everything else derives from these zod schemas:
 * - the CRD's openAPIV3Schema (charts/api/crd.ts),
 * - the TypeScript types below (`z.input` / `z.output`),
 * - client-side validation with field-naming messages (charts/api/validate.ts).
 *
 * Embedded Kubernetes types (EnvVar, SecurityContext, ResourceList, metav1.Condition) follow
 * their upstream Go definitions (k8s.io/api/core/v1, k8s.io/apimachinery/pkg/apis/meta/v1).
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export * from './constants.js';
import { API_VERSION, AUTH_MODES, DEFAULT_AUTH_MODE, KIND, PHASES, TRANSPORTS } from './constants.js';

/** Defaults of seed 003 (`+kubebuilder:default`, `GetTransport`, `GetPort`, `GetReplicas`). */
export const DEFAULTS = { transport: 'streamable-http', port: 8080, replicas: 1, path: '/mcp' } as const;

/**
 * resource.Quantity's serialization pattern, exactly as controller-gen emits it for
 * `corev1.ResourceList` values (k8s.io/apimachinery/pkg/api/resource).
 */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** A DNS-1035 label: the MCPServer's name becomes its Service's name, which must be one. */
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** A ConfigMap data key (k8s.io/apimachinery validation.IsConfigMapKey). */
export const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
/** The ConfigMap key the rendered config file uses; a `config` entry may not take it. */
export const CONFIG_FILE_KEY = 'config.json';

/** A resource.Quantity: an integer or a quantity string such as `100m`, `128Mi`, `1.5`. */
export const quantity = z
  .union([
    z.int(),
    z.string().regex(new RegExp(QUANTITY_PATTERN), 'must be a Kubernetes quantity such as 100m, 128Mi or 2'),
  ])
  .meta({ 'x-kubernetes-int-or-string': true });

/** corev1.ResourceList: resource name (cpu, memory, ...) to quantity. */
export const resourceList = z.record(z.string(), quantity);

const objectFieldSelector = z.strictObject({
  apiVersion: z
    .string()
    .optional()
    .meta({ description: 'Version of the schema the FieldPath is written in terms of, defaults to "v1".' }),
  fieldPath: z.string().meta({ description: 'Path of the field to select in the specified API version.' }),
});
const resourceFieldSelector = z.strictObject({
  containerName: z
    .string()
    .optional()
    .meta({ description: 'Container name: required for volumes, optional for env vars' }),
  divisor: quantity
    .optional()
    .meta({ description: 'Specifies the output format of the exposed resources, defaults to "1"' }),
  resource: z.string().meta({ description: 'Required: resource to select' }),
});
const keySelector = (what: string) =>
  z.strictObject({
    key: z.string().meta({ description: `The key of the ${what} to select from.` }),
    name: z
      .string()
      .optional()
      .meta({ description: `Name of the referent ${what}.` }),
    optional: z
      .boolean()
      .optional()
      .meta({ description: `Specify whether the ${what} or its key must be defined` }),
  });

/** corev1.EnvVar, valueFrom included (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef). */
export const envVar = z.strictObject({
  name: z.string().min(1).meta({ description: 'Name of the environment variable.' }),
  value: z.string().optional().meta({ description: 'Variable value; $(VAR_NAME) references are expanded.' }),
  valueFrom: z
    .strictObject({
      configMapKeyRef: keySelector('ConfigMap').optional(),
      fieldRef: objectFieldSelector.optional(),
      resourceFieldRef: resourceFieldSelector.optional(),
      secretKeyRef: keySelector('Secret').optional(),
    })
    .optional()
    .meta({ description: "Source for the environment variable's value. Cannot be used if value is not empty." }),
});

/** corev1.SecurityContext (container-level). */
export const securityContext = z.strictObject({
  allowPrivilegeEscalation: z.boolean().optional(),
  appArmorProfile: z.strictObject({ localhostProfile: z.string().optional(), type: z.string() }).optional(),
  capabilities: z
    .strictObject({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() })
    .optional(),
  privileged: z.boolean().optional(),
  procMount: z.string().optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
  runAsGroup: z.int().optional(),
  runAsNonRoot: z.boolean().optional(),
  runAsUser: z.int().optional(),
  seLinuxOptions: z
    .strictObject({
      level: z.string().optional(),
      role: z.string().optional(),
      type: z.string().optional(),
      user: z.string().optional(),
    })
    .optional(),
  seccompProfile: z.strictObject({ localhostProfile: z.string().optional(), type: z.string() }).optional(),
  windowsOptions: z
    .strictObject({
      gmsaCredentialSpec: z.string().optional(),
      gmsaCredentialSpecName: z.string().optional(),
      hostProcess: z.boolean().optional(),
      runAsUserName: z.string().optional(),
    })
    .optional(),
});

/** Seed 003's `MCPServerResources`. */
export const mcpServerResources = z.strictObject({
  requests: resourceList
    .optional()
    .meta({ description: 'Requests describes the minimum amount of compute resources required' }),
  limits: resourceList
    .optional()
    .meta({ description: 'Limits describes the maximum amount of compute resources allowed' }),
});

/** An https URL, or http on a loopback host (the OIDC issuer and its JWKS; gateway/auth/oidc.ts). */
const oidcUrl = z
  .string()
  .max(1024)
  .refine(
    (u) => {
      try {
        const url = new URL(u);
        return (
          url.protocol === 'https:' ||
          (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname))
        );
      } catch {
        return false;
      }
    },
    { message: 'must be an https URL (http only on a loopback host)' },
  );
/** A JWT claim name. */
const claimName = z
  .string()
  .regex(/^[A-Za-z0-9_:./-]{1,128}$/)
  .optional();

/** `spec.auth.oidc`: the OpenID Connect issuer whose JWTs the gateway accepts (mode `oidc`). */
export const mcpServerOidc = z.strictObject({
  issuer: oidcUrl.meta({
    description: 'Issuer is the OIDC issuer URL, exactly as tokens carry it in iss (https)',
  }),
  jwksUri: oidcUrl
    .optional()
    .meta({ description: "JWKSURI overrides the issuer's jwks_uri from its openid-configuration" }),
  usernameClaim: claimName.meta({ description: 'UsernameClaim names the user (default sub)' }),
  usernamePrefix: z
    .string()
    .max(64)
    .optional()
    .meta({ description: 'UsernamePrefix is prepended to the username for RBAC (default oidc:)' }),
  groupsClaim: claimName.meta({ description: 'GroupsClaim lists the groups (default groups)' }),
  groupsPrefix: z
    .string()
    .max(64)
    .optional()
    .meta({ description: 'GroupsPrefix is prepended to each group for RBAC (default oidc:)' }),
});

/** A subject list of a tool rule. */
const subjects = (what: string) => z.array(z.string().min(1).max(253)).max(64).optional().meta({ description: what });

/** One rule of `spec.auth.tools` (gateway/tools.ts). */
export const mcpServerToolRule = z.strictObject({
  names: z
    .array(z.string().min(1).max(128))
    .min(1)
    .max(128)
    .meta({ description: 'Names are the tools the rule allows; * allows every tool' }),
  users: subjects('Users the rule names (usernames as the gateway verified them, e.g. oidc:alice)'),
  groups: subjects('Groups the rule names'),
  serviceAccounts: z
    .array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/))
    .max(64)
    .optional()
    .meta({ description: 'ServiceAccounts the rule names, as namespace/name' }),
});

/** `spec.auth`: who may call the MCPServer through its gateway (issue 17). */
export const mcpServerAuth = z.strictObject({
  mode: z.enum(AUTH_MODES).default(DEFAULT_AUTH_MODE).meta({
    description:
      'Mode is how callers are authenticated: kubernetes (default: a Kubernetes token for the server audience, verified by TokenReview, then RBAC create mcpservers/proxy on this MCPServer), oidc (a JWT of oidc.issuer for that audience, or a Kubernetes token, then the same RBAC on the prefixed user and groups) or none (anyone who reaches the Service; reported by the AuthEnabled condition)',
  }),
  oidc: mcpServerOidc.optional().meta({ description: 'OIDC configures mode oidc (required there)' }),
  tools: z.array(mcpServerToolRule).max(32).optional().meta({
    description:
      'Tools restricts which tools a caller sees (tools/list) and may call (tools/call): a caller gets the tools of the rules that name it (a rule without users, groups or serviceAccounts names every caller); unset, every tool',
  }),
  audiences: z.array(z.string().min(1).max(1024)).max(16).optional().meta({
    description:
      "Audiences accepted besides the default, the MCPServer's canonical URL (status.url, the MCP authorization spec's resource indicator)",
  }),
  impersonate: z.boolean().optional().meta({
    description:
      "Impersonate makes the server act as its caller: its ServiceAccount is bound to the ClusterRole kubemcp:impersonator (impersonate users, groups and serviceaccounts) and the server container gets MCP_IMPERSONATE=gateway, so kubemcp serve sends every Kubernetes request with the caller's Impersonate-User and Impersonate-Group and RBAC decides per caller. Only for an HTTP server (the gateway's verified caller), not with mode none; set it only for kubemcp serve or a server that takes the caller from its gateway alone",
  }),
});

/** A Kubernetes label selector (metav1.LabelSelector) of a NetworkPolicy peer. */
const labelSelector = z.strictObject({
  matchLabels: z.record(z.string().max(317), z.string().max(63)).optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string().min(1).max(317),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string().max(63)).max(64).optional(),
      }),
    )
    .max(16)
    .optional(),
});

/** Whether `v` is an IPv4 or IPv6 CIDR (`10.0.0.0/8`, `fd00::/64`), as NetworkPolicy's ipBlock takes. */
function isCidr(v: string): boolean {
  const slash = v.lastIndexOf('/');
  const family = isIP(v.slice(0, slash));
  const prefix = v.slice(slash + 1);
  return slash > 0 && family !== 0 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}
const cidr = z.string().max(64).refine(isCidr, { message: 'must be a CIDR such as 10.0.0.0/8 or fd00::/64' });

/**
 * One peer of `spec.allowFrom`: a Kubernetes NetworkPolicyPeer (networking.k8s.io/v1): pods
 * (`podSelector`, in this namespace unless `namespaceSelector` is set), namespaces, or an `ipBlock`
 * (never combined with selectors). https://kubernetes.io/docs/concepts/services-networking/network-policies/
 */
export const mcpServerPeer = z
  .strictObject({
    podSelector: labelSelector.optional().meta({
      description: 'PodSelector selects pods (of this namespace, or of the namespaces namespaceSelector selects)',
    }),
    namespaceSelector: labelSelector
      .optional()
      .meta({ description: 'NamespaceSelector selects namespaces (all pods there, or those podSelector selects)' }),
    ipBlock: z
      .strictObject({ cidr, except: z.array(cidr).max(16).optional() })
      .optional()
      .meta({ description: 'IPBlock admits addresses of a CIDR, but for the except CIDRs' }),
  })
  .superRefine((p, ctx) => {
    if (!p.podSelector && !p.namespaceSelector && !p.ipBlock)
      ctx.addIssue({ code: 'custom', message: 'a peer needs podSelector, namespaceSelector or ipBlock' });
    if (p.ipBlock && (p.podSelector || p.namespaceSelector))
      ctx.addIssue({
        code: 'custom',
        path: ['ipBlock'],
        message: 'ipBlock cannot be combined with podSelector or namespaceSelector',
      });
  });

/** Seed 003's `MCPServerSpec`: the desired state of an MCPServer. */
export const mcpServerSpec = z
  .strictObject({
    image: z.string().min(1).meta({ description: 'Image is the container image for the MCP server' }),
    transport: z
      .enum(TRANSPORTS)
      .default(DEFAULTS.transport)
      .meta({ description: 'Transport specifies the MCP transport protocol' }),
    port: z
      .int32()
      .min(1)
      .max(65535)
      .default(DEFAULTS.port)
      .meta({ description: 'Port is the port the MCP server listens on' }),
    replicas: z
      .int32()
      .min(0)
      .default(DEFAULTS.replicas)
      .meta({ description: 'Replicas is the desired number of MCP server instances' }),
    config: z
      .record(z.string(), z.string())
      .optional()
      .meta({ description: 'Config contains MCP server configuration as key-value pairs' }),
    resources: mcpServerResources
      .optional()
      .meta({ description: 'Resources specifies the resource requirements for the MCP server' }),
    securityContext: securityContext
      .optional()
      .meta({ description: 'SecurityContext defines security settings for the MCP server pod' }),
    serviceAccount: z.string().optional().meta({ description: 'ServiceAccount specifies the service account to use' }),
    env: z.array(envVar).optional().meta({ description: 'Env allows additional environment variables' }),
    path: z
      .string()
      .max(1024)
      .regex(/^\/[^\s?#]*$/, 'must be an absolute URL path starting with "/", without spaces, query or fragment')
      .default(DEFAULTS.path)
      .meta({
        description:
          'Path is the HTTP path of the MCP endpoint (Streamable HTTP), used by status.url and the handshake',
      }),
    command: z.array(z.string()).min(1).optional().meta({
      description:
        "Command replaces the image's ENTRYPOINT (Kubernetes container semantics: not run in a shell, $(VAR) references expanded). With transport stdio it turns on the in-pod bridge, which serves the process's stdin/stdout as Streamable HTTP on spec.port",
    }),
    args: z.array(z.string()).optional().meta({
      description:
        "Args replaces the image's CMD (Kubernetes container semantics); with transport stdio they follow command through the bridge's launcher",
    }),
    auth: mcpServerAuth.optional().meta({
      description:
        'Auth is who may call the server through the gateway in its pod; unset means mode kubernetes with the default audience',
    }),
    allowFrom: z.array(mcpServerPeer).min(1).max(32).optional().meta({
      description:
        "AllowFrom narrows who may reach the gateway's port (NetworkPolicy peers: podSelector, namespaceSelector, ipBlock); unset, any pod or address. Every other port of the pods is closed either way",
    }),
  })
  .superRefine((spec, ctx) => {
    // Mode oidc needs its issuer; an issuer under another mode would silently do nothing.
    if (spec.auth?.mode === 'oidc' && !spec.auth.oidc)
      ctx.addIssue({ code: 'custom', path: ['auth', 'oidc'], message: 'auth mode oidc requires auth.oidc.issuer' });
    if (spec.auth?.oidc && spec.auth.mode !== 'oidc')
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'mode'],
        message: `auth.oidc is set but auth mode is ${spec.auth.mode}: set mode oidc or remove auth.oidc`,
      });
    // Acting as the caller needs a verified caller, passed by the reverse-proxy gateway.
    if (spec.auth?.impersonate && spec.auth.mode === 'none')
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'impersonate'],
        message: 'auth.impersonate needs a verified caller: mode none has none (use kubernetes or oidc)',
      });
    if (spec.auth?.impersonate && !spec.serviceAccount)
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'impersonate'],
        message:
          "auth.impersonate needs spec.serviceAccount: the impersonate right goes to that ServiceAccount, and without one it would go to the namespace's default ServiceAccount, which every other pod there runs as",
      });
    if (spec.auth?.impersonate && spec.transport === 'stdio')
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'impersonate'],
        message:
          'auth.impersonate is for HTTP servers behind the gateway (transport http or streamable-http), not stdio',
      });
    // Seed 003's validateMCPServer: the CRD admits this, the controller reports it as Failed. A
    // bridged stdio server (with command) may scale (issue 18): each pod runs its own process and
    // sealed sessions reach the pod that holds them (gateway/sessions.ts).
    if (spec.transport === 'stdio' && !spec.command && spec.replicas > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['replicas'],
        message: `stdio transport does not support multiple replicas (requested: ${spec.replicas}) without command (the bridge, which lets several pods serve)`,
      });
    }
    // Kubernetes runs command[0] as the executable: an empty name cannot start.
    if (spec.command && spec.command[0] === '') {
      ctx.addIssue({ code: 'custom', path: ['command', 0], message: 'the executable (command[0]) must not be empty' });
    }
    // Server-side apply treats a container's env as a map keyed by name: duplicates cannot be applied.
    const seen = new Set<string>();
    (spec.env ?? []).forEach((e, i) => {
      if (seen.has(e.name))
        ctx.addIssue({
          code: 'custom',
          path: ['env', i, 'name'],
          message: `duplicate environment variable "${e.name}"`,
        });
      seen.add(e.name);
    });
    // Keys become ConfigMap data keys next to config.json (seed 003's setConfigMapData).
    for (const key of Object.keys(spec.config ?? {})) {
      if (!CONFIGMAP_KEY.test(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['config', key],
          message: `config key "${key}" must consist of alphanumeric characters, '-', '_' or '.' (it becomes a ConfigMap key)`,
        });
      } else if (key === CONFIG_FILE_KEY) {
        ctx.addIssue({
          code: 'custom',
          path: ['config', key],
          message: `config key "${CONFIG_FILE_KEY}" is reserved for the rendered configuration file`,
        });
      }
    }
  });

/** metav1.Condition, with the validation controller-gen emits for it. */
export const condition = z.strictObject({
  type: z
    .string()
    .max(316)
    .regex(
      /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
    ),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: z.string().meta({ format: 'date-time' }),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
});

/** Seed 003's `MCPServerStatus`: the observed state, written by the controller. */
export const mcpServerStatus = z.strictObject({
  phase: z
    .enum(PHASES)
    .optional()
    .meta({ description: 'Phase represents the current phase of the MCPServer lifecycle' }),
  conditions: z
    .array(condition)
    .optional()
    .meta({ description: "Conditions represent the latest available observations of the MCPServer's state" }),
  readyReplicas: z
    .int32()
    .min(0)
    .optional()
    .meta({ description: 'ReadyReplicas is the number of ready MCP server replicas' }),
  replicas: z.int32().min(0).optional().meta({ description: 'Replicas is the total number of MCP server replicas' }),
  selector: z
    .string()
    .optional()
    .meta({ description: 'Selector is the label selector of the MCP server pods, for the scale subresource (HPA)' }),
  endpoint: z.string().optional().meta({ description: 'Endpoint is the URL where the MCP server can be accessed' }),
  observedGeneration: z
    .int()
    .min(0)
    .optional()
    .meta({ description: 'ObservedGeneration reflects the generation of the most recently observed MCPServer' }),
  lastTransitionTime: z
    .string()
    .optional()
    .meta({ format: 'date-time', description: 'LastTransitionTime is the last time the condition transitioned' }),
  url: z
    .string()
    .optional()
    .meta({ description: 'URL is the full MCP endpoint (endpoint + spec.path) of HTTP transports' }),
  serverInfo: z
    .strictObject({
      name: z.string().meta({
        description:
          'serverInfo.name of the server/discover or initialize result (empty when a modern server does not say)',
      }),
      version: z.string().meta({
        description:
          'serverInfo.version of the server/discover or initialize result (empty when a modern server does not say)',
      }),
      protocolVersion: z
        .string()
        .meta({ description: 'Negotiated MCP protocol version (e.g. 2026-07-28 or 2025-11-25)' }),
      era: z.enum(['modern', 'legacy']).optional().meta({
        description:
          'Era of the verified connection: modern (MCP 2026-07-28 or later, negotiated by server/discover) or legacy (a 2025-era server, verified with initialize after server/discover was not understood)',
      }),
      capabilities: z
        .array(z.string())
        .optional()
        .meta({ description: 'Capabilities the server declared (tools, prompts, resources, ...)' }),
    })
    .optional()
    .meta({
      description:
        'ServerInfo is what the server declared in the last successful MCP handshake, with the negotiated protocol version and era (modern: server/discover, legacy: initialize)',
    }),
  tools: z
    .strictObject({
      count: z.int32().min(0).meta({ description: 'Number of tools (tools/list, all pages)' }),
      names: z.array(z.string()).optional().meta({ description: "The first 20 tool names, in the server's order" }),
      hash: z
        .string()
        .meta({ description: 'Hash of the whole tool list (names, descriptions, input schemas): a change is visible' }),
    })
    .optional()
    .meta({ description: 'Tools is the tool list of the last successful MCP handshake' }),
  prompts: z
    .strictObject({ count: z.int32().min(0).meta({ description: 'Number of prompts (prompts/list)' }) })
    .optional()
    .meta({ description: 'Prompts of the last successful MCP handshake, when the server declares the capability' }),
  resources: z
    .strictObject({ count: z.int32().min(0).meta({ description: 'Number of resources (resources/list)' }) })
    .optional()
    .meta({ description: 'Resources of the last successful MCP handshake, when the server declares the capability' }),
});

/** The object metadata fields this package reads; the apiserver owns the rest. */
export const objectMeta = z
  .object({
    name: z
      .string()
      .max(63)
      .regex(
        DNS1035_LABEL,
        'must be a DNS-1035 label (lowercase letters, digits and "-", starting with a letter): it names the Service',
      ),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .loose();

/**
 * A whole MCPServer object. `metadata.name` must be a DNS-1035 label of at most 63
 * characters; the CRD enforces the same rule with a CEL validation (charts/api/crd.ts).
 */
export const mcpServer = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: objectMeta,
  spec: mcpServerSpec,
  status: mcpServerStatus.optional(),
});

/** An MCPServer spec as written by a user (defaults optional). */
export type MCPServerSpecInput = z.input<typeof mcpServerSpec>;
/** An MCPServer spec with seed 003's defaults applied (transport, port, replicas always set). */
export type MCPServerSpec = z.output<typeof mcpServerSpec>;
/** One `spec.allowFrom` peer. */
export type MCPServerPeer = z.output<typeof mcpServerPeer>;
export type MCPServerStatus = z.output<typeof mcpServerStatus>;
export type Condition = z.output<typeof condition>;
export type EnvVar = z.output<typeof envVar>;
export type SecurityContext = z.output<typeof securityContext>;
export type Quantity = z.output<typeof quantity>;
/** An MCPServer object as written by a user. */
export type MCPServerInput = z.input<typeof mcpServer>;
/** An MCPServer object with defaults applied. */
export type MCPServer = z.output<typeof mcpServer>;
