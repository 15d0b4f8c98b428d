/**
 * The safety policy of `kubemcp serve` (issue 5, "Safe by default, enforced below the tools"):
 * read-only mode, disable-destructive, tool allow/deny lists, a namespace allow-list, a
 * resource-kind deny-list and Secret masking. Every Kubernetes request goes through
 * `KubeGateway.request` (kube.ts), which calls `Policy.checkRequest` before sending it and
 * `Policy.sanitize` on what comes back, so no tool can go around these rules.
 */

/** Thrown when the policy refuses a request; tools turn it into an MCP error result. */
export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

/** How a tool changes the cluster: read (get/list/watch), write (create/patch/apply) or delete. */
export type ToolEffect = 'read' | 'write' | 'delete';

/** Options of the policy, as the `serve` flags set them (command.ts). */
export interface PolicyOptions {
  /** Refuse every request other than GET; mutating tools are neither listed nor callable. */
  readOnly?: boolean;
  /** Refuse DELETE requests; delete tools are neither listed nor callable. */
  disableDestructive?: boolean;
  /** When non-empty, only these tool names are listed and callable. */
  allowTools?: string[];
  /** These tool names are neither listed nor callable. */
  denyTools?: string[];
  /** When non-empty, namespaced requests must target one of these namespaces (no all-namespaces lists). */
  namespaces?: string[];
  /** Kinds or resource names (case-insensitive: `Secret`, `secrets`, `deployments.apps`) that are refused. */
  denyKinds?: string[];
  /** Show Secret values (default false: every `data`/`stringData` value is replaced by MASK). */
  showSecrets?: boolean;
}

/** What a Kubernetes request targets, as the gateway resolved it. */
export interface RequestTarget {
  /** HTTP method: GET is a read, DELETE a delete, anything else a write. */
  method: string;
  /** API group ('' for core). */
  group: string;
  /** Plural resource name, e.g. `pods`. */
  resource: string;
  /** Kind, e.g. `Pod`. */
  kind: string;
  /** Whether the resource is namespaced. */
  namespaced: boolean;
  /** Namespace of the request; undefined for cluster-scoped resources or all-namespaces lists. */
  namespace?: string;
  /** Object name, when the request names one. */
  name?: string;
  /** Subresource (`log`, `scale`, `status`), if any. */
  subresource?: string;
}

/** The replacement of every Secret value. */
export const MASK = '***';
/** Annotation `kubectl apply` writes; it holds the whole last applied object (Secret values too). */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** The policy: pure functions of PolicyOptions, shared by the gateway and the tool registry. */
export class Policy {
  readonly readOnly: boolean;
  readonly disableDestructive: boolean;
  readonly showSecrets: boolean;
  private readonly allowTools: Set<string>;
  private readonly denyTools: Set<string>;
  private readonly namespaces: Set<string>;
  private readonly denyKinds: Set<string>;

  constructor(opts: PolicyOptions = {}) {
    this.readOnly = !!opts.readOnly;
    this.disableDestructive = !!opts.disableDestructive;
    this.showSecrets = !!opts.showSecrets;
    this.allowTools = new Set(opts.allowTools ?? []);
    this.denyTools = new Set(opts.denyTools ?? []);
    this.namespaces = new Set(opts.namespaces ?? []);
    this.denyKinds = new Set((opts.denyKinds ?? []).map((k) => k.toLowerCase()));
  }

  /** The namespace allow-list (empty: all namespaces allowed). */
  get allowedNamespaces(): string[] {
    return [...this.namespaces];
  }

  /**
   * Whether a tool is listed and callable: its name passes the allow/deny lists, and its effect
   * is allowed (no writes or deletes in read-only mode, no deletes with disable-destructive).
   */
  toolEnabled(name: string, effect: ToolEffect): boolean {
    if (this.allowTools.size > 0 && !this.allowTools.has(name)) return false;
    if (this.denyTools.has(name)) return false;
    if (this.readOnly && effect !== 'read') return false;
    if (this.disableDestructive && effect === 'delete') return false;
    return true;
  }

  /** Whether a namespace is allowed by the allow-list. */
  namespaceAllowed(ns: string): boolean {
    return this.namespaces.size === 0 || this.namespaces.has(ns);
  }

  /**
   * Checks one Kubernetes request against the policy.
   * @throws PolicyError naming the rule that refuses it.
   */
  checkRequest(t: RequestTarget): void {
    const m = t.method.toUpperCase();
    const reads = m === 'GET' || m === 'HEAD';
    if (this.readOnly && !reads) throw new PolicyError(`refused by policy: the server is read-only (${m} ${t.resource})`);
    if (this.disableDestructive && (m === 'DELETE')) throw new PolicyError(`refused by policy: destructive operations are disabled (DELETE ${t.resource})`);
    const names = [t.kind, t.resource, t.group ? `${t.resource}.${t.group}` : t.resource, t.group ? `${t.kind}.${t.group}` : t.kind].map((s) => s.toLowerCase());
    if (names.some((n) => this.denyKinds.has(n))) throw new PolicyError(`refused by policy: kind ${t.kind} is denied`);
    if (this.namespaces.size > 0) {
      if (t.namespaced) {
        if (!t.namespace) throw new PolicyError(`refused by policy: ${t.resource} across all namespaces; allowed namespaces: ${this.allowedNamespaces.join(', ')}`);
        if (!this.namespaces.has(t.namespace)) throw new PolicyError(`refused by policy: namespace ${t.namespace} is not allowed; allowed namespaces: ${this.allowedNamespaces.join(', ')}`);
      } else if (t.resource === 'namespaces' && t.group === '') {
        if (!reads) throw new PolicyError('refused by policy: namespaces cannot be changed when a namespace allow-list is set');
        if (t.name && !this.namespaces.has(t.name)) throw new PolicyError(`refused by policy: namespace ${t.name} is not allowed; allowed namespaces: ${this.allowedNamespaces.join(', ')}`);
      } else if (!reads) {
        throw new PolicyError(`refused by policy: cluster-scoped ${t.resource} cannot be changed when a namespace allow-list is set`);
      }
    }
  }

  /**
   * Masks Secret values in anything the apiserver returned (objects, lists, Tables, watch events,
   * v1 Lists), unless showSecrets is set. `secretsRequest` is true when the request targeted the
   * `secrets` resource: list items lack `kind`, so they are masked by the request's resource.
   * Also removes the last-applied annotation of Secrets (it holds their values). Returns a copy.
   */
  sanitize<T>(body: T, secretsRequest = false): T {
    if (this.showSecrets) return body;
    return maskSecrets(body, secretsRequest) as T;
  }
}

function maskValues(map: unknown): unknown {
  if (!map || typeof map !== 'object') return map;
  return Object.fromEntries(Object.keys(map as object).map((k) => [k, MASK]));
}

function maskSecretObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o };
  if ('data' in out) out.data = maskValues(out.data);
  if ('stringData' in out) out.stringData = maskValues(out.stringData);
  const meta = out.metadata as Record<string, unknown> | undefined;
  const ann = meta?.annotations as Record<string, string> | undefined;
  if (meta && ann && LAST_APPLIED in ann) {
    const { [LAST_APPLIED]: _dropped, ...rest } = ann;
    out.metadata = { ...meta, annotations: { ...rest, [LAST_APPLIED]: MASK } };
  }
  return out;
}

/**
 * Structural masking: any object whose kind is Secret, every item of a SecretList (or of any
 * list when `assumeSecret`), recursively through lists, Tables (row.object) and watch events.
 */
export function maskSecrets(value: unknown, assumeSecret = false): unknown {
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v, assumeSecret));
  if (!value || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  const kind = typeof o.kind === 'string' ? o.kind : undefined;
  let out: Record<string, unknown> = o;
  if (kind === 'Secret' || (assumeSecret && ('metadata' in o || 'data' in o || 'stringData' in o))) {
    out = maskSecretObject(o);
  }
  const itemsSecret = assumeSecret || kind === 'SecretList';
  const copy: Record<string, unknown> = { ...out };
  for (const [k, v] of Object.entries(out)) {
    if (k === 'data' || k === 'stringData') continue;
    if (v && typeof v === 'object') copy[k] = maskSecrets(v, k === 'items' || k === 'rows' || k === 'object' ? itemsSecret : false);
  }
  return copy;
}
