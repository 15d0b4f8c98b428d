/**
 * The MCPServer API's names and enumerations, without zod: what the gateway, the controller's
 * command line and other light code need of the API (./schema.ts re-exports all of it). Importing
 * the schema builds every zod schema of the API, which a process that validates nothing (the
 * gateway in every MCPServer pod) should not pay for.
 */
/** API group of the MCPServer kind (seed 003: `kubebuilder init --domain mcp.example.com`). */
export const GROUP = 'mcp.example.com';
/** API version served and stored. */
export const VERSION = 'v1alpha1';
/** `apiVersion` field value for MCPServer objects. */
export const API_VERSION = `${GROUP}/${VERSION}`;
/** Kind name. */
export const KIND = 'MCPServer';
/** Resource (plural) name, as in `kubectl get mcpservers`. */
export const PLURAL = 'mcpservers';
/** Singular name. */
export const SINGULAR = 'mcpserver';
/** Short names (`kubectl get mcps`). */
export const SHORT_NAMES = ['mcps'];
/** Categories (`kubectl get ai`, `kubectl get mcp`). */
export const CATEGORIES = ['ai', 'mcp'];
/** Finalizer the controller puts on every MCPServer (seed 003's `MCPServerFinalizer`). */
export const FINALIZER = 'mcp.example.com/finalizer';

/** The transports of seed 003's `+kubebuilder:validation:Enum=stdio;http;streamable-http`. */
export const TRANSPORTS = ['stdio', 'http', 'streamable-http'] as const;
export type Transport = (typeof TRANSPORTS)[number];
/** Lifecycle phases (seed 003's `MCPServerPhase`). */
export const PHASES = ['Pending', 'Ready', 'Failed', 'Terminating'] as const;
export type Phase = (typeof PHASES)[number];
/** Condition types the controller maintains (seed 003's `Condition*` constants). */
export const CONDITION_TYPES = [
  'Ready',
  'DeploymentReady',
  'ServiceReady',
  'ChildrenApplied',
  'Verified',
  'ConfigurationValid',
  'AuthEnabled',
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/**
 * How the gateway in front of every MCPServer authenticates callers (issue 17): `kubernetes` (the
 * default) a Kubernetes token bound to the server's audience, verified by TokenReview, then RBAC
 * (`create mcpservers/proxy`); `oidc` a JWT of `spec.auth.oidc.issuer` for that audience
 * (Kubernetes tokens still accepted), then the same RBAC on the mapped user and groups; `none`
 * anyone, an explicit opt-out reported in status.
 */
export const AUTH_MODES = ['kubernetes', 'oidc', 'none'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];
/** The default of `spec.auth.mode`: secure by default. */
export const DEFAULT_AUTH_MODE: AuthMode = 'kubernetes';
