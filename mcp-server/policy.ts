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

/**
 * How a tool changes the cluster: read (get/list/watch), write (create/patch/apply), delete, or
 * exec (runs a command in a container, which can do anything the container can: hidden in
 * read-only mode, and with disable-destructive unless allowExec).
 */
export type ToolEffect = 'read' | 'write' | 'delete' | 'exec';

/**
 * Pod subresources that open a session into a container (exec, attach) or its ports
 * (portforward): GET upgrades (WebSocket), so the method says nothing about what they do. Refused
 * in read-only mode whatever the method, and with disable-destructive unless allowExec.
 */
export const SESSION_SUBRESOURCES: readonly string[] = ['exec', 'attach', 'portforward'];

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
  /**
   * With disableDestructive, still allow exec tools and the {@link SESSION_SUBRESOURCES} (a
   * command in a container can delete anything it can reach, so disable-destructive refuses them
   * by default). No effect without disableDestructive (allowed anyway) or in read-only mode
   * (refused anyway).
   */
  allowExec?: boolean;
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
  /** See {@link PolicyOptions.allowExec}. */
  readonly allowExec: boolean;
  private readonly allowTools: Set<string>;
  private readonly denyTools: Set<string>;
  private readonly namespaces: Set<string>;
  private readonly denyKinds: Set<string>;

  constructor(opts: PolicyOptions = {}) {
    this.readOnly = !!opts.readOnly;
    this.disableDestructive = !!opts.disableDestructive;
    this.showSecrets = !!opts.showSecrets;
    this.allowExec = !!opts.allowExec;
    this.allowTools = new Set(opts.allowTools ?? []);
    this.denyTools = new Set(opts.denyTools ?? []);
    this.namespaces = new Set(opts.namespaces ?? []);
    this.denyKinds = new Set((opts.denyKinds ?? []).map((k) => k.toLowerCase()));
  }

  /**
   * Adds the canonical names of denied kinds as discovery resolved them (`configmaps`,
   * `deployments.apps`), so that entries given as short names (`cm`, `deploy`) or singulars are
   * refused under every spelling (issue 9, item 9). Called once at start by
   * `KubeGateway.resolveDenyKinds`.
   */
  addDeniedResources(resolved: Array<{ group: string; resource: string; kind: string }>): void {
    for (const r of resolved) {
      this.denyKinds.add((r.group ? `${r.resource}.${r.group}` : r.resource).toLowerCase());
      this.denyKinds.add((r.group ? `${r.kind}.${r.group}` : r.kind).toLowerCase());
    }
  }

  /** Whether the kind-deny list names this resource under any spelling (kind, plural, with or without group). */
  kindDenied(t: { group: string; resource: string; kind: string }): boolean {
    return [
      t.kind,
      t.resource,
      t.group ? `${t.resource}.${t.group}` : t.resource,
      t.group ? `${t.kind}.${t.group}` : t.kind,
    ].some((n) => this.denyKinds.has(n.toLowerCase()));
  }

  /** The deny-list entries as given (lower case). */
  get deniedKinds(): string[] {
    return [...this.denyKinds];
  }

  /**
   * Checks the body of a write against the policy: with disable-destructive, no write may add or
   * change ownerReferences (the garbage collector would delete the object; issue 9, item 7);
   * with Secret masking on, a JSON patch of a Secret may not copy, move or test stored values.
   * @throws PolicyError naming the rule.
   */
  checkWrite(t: RequestTarget, body: unknown, contentType: string | undefined): void {
    const m = t.method.toUpperCase();
    if (m === 'GET' || m === 'HEAD' || m === 'DELETE') return;
    if (this.disableDestructive && touchesOwnerReferences(body, contentType)) {
      throw new PolicyError(
        `refused by policy: destructive operations are disabled, and writes that add or change metadata.ownerReferences can make the garbage collector delete the object (${m} ${t.resource})`,
      );
    }
    if (!this.showSecrets && t.group === '' && t.resource === 'secrets' && readsSecretValues(body)) {
      throw new PolicyError(
        'refused by policy: Secret values are masked, so a JSON patch of a Secret may not copy, move or test values under /data, /stringData or /metadata',
      );
    }
  }

  /**
   * Drops Namespace objects outside the allow-list from an answer about namespaces (a list, a
   * Table, a watch event's object), so no path lists names the allow-list hides (issue 9, item 8).
   * Returns the body unchanged without an allow-list.
   */
  filterNamespaces<T>(body: T): T {
    if (this.namespaces.size === 0 || !body || typeof body !== 'object') return body;
    const b = body as Record<string, unknown>;
    const nameOf = (o: unknown) => (o as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
    const out: Record<string, unknown> = { ...b };
    if (Array.isArray(b.items)) out.items = b.items.filter((i) => this.namespaces.has(String(nameOf(i))));
    if (Array.isArray(b.rows))
      out.rows = b.rows.filter((r) =>
        this.namespaces.has(
          String(nameOf((r as { object?: unknown }).object) ?? (r as { cells?: unknown[] }).cells?.[0]),
        ),
      );
    return out as T;
  }

  /** The namespace allow-list (empty: all namespaces allowed). */
  get allowedNamespaces(): string[] {
    return [...this.namespaces];
  }

  /**
   * Whether a tool is listed and callable: its name passes the allow/deny lists, and its effect
   * is allowed (no writes, deletes or execs in read-only mode; no deletes with
   * disable-destructive, and no execs unless allowExec).
   */
  toolEnabled(name: string, effect: ToolEffect): boolean {
    if (this.allowTools.size > 0 && !this.allowTools.has(name)) return false;
    if (this.denyTools.has(name)) return false;
    if (this.readOnly && effect !== 'read') return false;
    if (this.disableDestructive && effect === 'delete') return false;
    if (this.disableDestructive && effect === 'exec' && !this.allowExec) return false;
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
    if (this.readOnly && !reads)
      throw new PolicyError(`refused by policy: the server is read-only (${m} ${t.resource})`);
    if (this.disableDestructive && m === 'DELETE')
      throw new PolicyError(`refused by policy: destructive operations are disabled (DELETE ${t.resource})`);
    if (t.subresource && SESSION_SUBRESOURCES.includes(t.subresource)) {
      if (this.readOnly)
        throw new PolicyError(`refused by policy: the server is read-only (${t.subresource} of ${t.resource})`);
      if (this.disableDestructive && !this.allowExec)
        throw new PolicyError(
          `refused by policy: destructive operations are disabled and ${t.subresource} of ${t.resource} is not allowed (--allow-exec)`,
        );
    }
    // An eviction is a POST that deletes the pod (policy/v1 Eviction): destructive whatever the method.
    if (this.disableDestructive && t.subresource === 'eviction')
      throw new PolicyError(`refused by policy: destructive operations are disabled (eviction of ${t.resource})`);
    if (this.kindDenied(t)) throw new PolicyError(`refused by policy: kind ${t.kind} is denied`);
    if (this.namespaces.size > 0) {
      if (t.namespaced) {
        if (!t.namespace)
          throw new PolicyError(
            `refused by policy: ${t.resource} across all namespaces; allowed namespaces: ${this.allowedNamespaces.join(', ')}`,
          );
        if (!this.namespaces.has(t.namespace))
          throw new PolicyError(
            `refused by policy: namespace ${t.namespace} is not allowed; allowed namespaces: ${this.allowedNamespaces.join(', ')}`,
          );
      } else if (t.resource === 'namespaces' && t.group === '') {
        if (!reads)
          throw new PolicyError('refused by policy: namespaces cannot be changed when a namespace allow-list is set');
        if (t.name && !this.namespaces.has(t.name))
          throw new PolicyError(
            `refused by policy: namespace ${t.name} is not allowed; allowed namespaces: ${this.allowedNamespaces.join(', ')}`,
          );
      } else if (!reads) {
        throw new PolicyError(
          `refused by policy: cluster-scoped ${t.resource} cannot be changed when a namespace allow-list is set`,
        );
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

/**
 * The values a Secret holds, in every spelling that can come back: the base64 text of `data`,
 * its decoded text, and `stringData`. Values shorter than 4 characters are only masked where
 * they stand whole (see scrub). Also used by helm-storage.ts to mask the Secrets a Helm release holds.
 */
export function secretValues(o: Record<string, unknown>): string[] {
  const out = new Set<string>();
  for (const field of ['data', 'stringData']) {
    const m = o[field];
    if (!m || typeof m !== 'object') continue;
    for (const v of Object.values(m as Record<string, unknown>)) {
      if (typeof v !== 'string' || v === '') continue;
      out.add(v);
      if (field === 'data') {
        const dec = Buffer.from(v, 'base64').toString('utf8');
        if (dec && !dec.includes('\uFFFD')) out.add(dec);
      }
    }
  }
  return [...out];
}

/** Replaces every string in `v` that is, or (for values of 4+ characters) contains, one of `values`. */
function scrub(v: unknown, values: string[]): unknown {
  if (values.length === 0) return v;
  if (typeof v === 'string') return values.some((s) => v === s || (s.length >= 4 && v.includes(s))) ? MASK : v;
  if (Array.isArray(v)) return v.map((x) => scrub(x, values));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, scrub(x, values)]));
  return v;
}

function maskSecretObject(o: Record<string, unknown>): Record<string, unknown> {
  // Values a patch copied or moved elsewhere in the object (an annotation, a label) are masked
  // wherever they stand, not only under data/stringData (issue 9, item 1).
  const values = secretValues(o);
  const out: Record<string, unknown> = scrub({ ...o, data: undefined, stringData: undefined }, values) as Record<
    string,
    unknown
  >;
  if ('data' in o) out.data = maskValues(o.data);
  else delete out.data;
  if ('stringData' in o) out.stringData = maskValues(o.stringData);
  else delete out.stringData;
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
    if (v && typeof v === 'object')
      copy[k] = maskSecrets(v, k === 'items' || k === 'rows' || k === 'object' ? itemsSecret : false);
  }
  return copy;
}

/** The end (exclusive) of the JSON object or array starting at `text[start]`, or -1. */
function jsonEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** The end (exclusive) of the double-quoted string starting at `text[start]`, or -1. */
function quotedEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return -1;
}

/**
 * Masks Secret values in the text of an error (apiserver Status messages embed the object a
 * request produced, as JSON or as a quoted JSON string: `Invalid value: "{\"apiVersion\"...}"`;
 * YAML errors quote source lines). Every JSON object embedded in the text, directly or inside a
 * quoted string, is parsed and masked by its kind (as a Secret when `secretRequest`). When
 * `secretRequest` (the request targeted Secrets), what the text still quotes is masked too:
 * Go-syntax values (`map[...]`), unquoted `Invalid value:` values, and quoted strings other than
 * `keep` (the object's name, kind). `values` are further strings to mask wherever they appear.
 */
export function maskErrorText(
  text: string,
  secretRequest: boolean,
  values: string[] = [],
  keep: string[] = [],
  depth = 0,
): string {
  const maskProse = (t: string) => {
    if (!secretRequest) return t;
    return t.replace(/map\[[^\n]*\]/g, MASK).replace(/(Invalid value: )([^"\s]\S*)/g, `$1${MASK}`);
  };
  let out = '';
  let prose = '';
  const emit = (s: string) => {
    out += maskProse(prose) + s;
    prose = '';
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '{' || ch === '[') {
      const end = jsonEnd(text, i);
      if (end > 0) {
        try {
          const parsed = JSON.parse(text.slice(i, end));
          if (parsed && typeof parsed === 'object') {
            const masked = secretRequest
              ? maskSecretObject(maskSecrets(parsed, true) as Record<string, unknown>)
              : maskSecrets(parsed, false);
            emit(JSON.stringify(masked));
            i = end;
            continue;
          }
        } catch {
          /* not JSON: kept as text */
        }
      }
    } else if (ch === '"') {
      const end = quotedEnd(text, i);
      if (end > 0) {
        let inner: string | undefined;
        try {
          inner = JSON.parse(text.slice(i, end)) as string;
        } catch {
          inner = undefined;
        }
        if (inner !== undefined) {
          if (/[{[]/.test(inner) && depth < 3)
            emit(JSON.stringify(maskErrorText(inner, secretRequest, values, keep, depth + 1)));
          else emit(secretRequest && !keep.includes(inner) && inner !== MASK ? `"${MASK}"` : text.slice(i, end));
          i = end;
          continue;
        }
      }
    }
    prose += ch;
    i++;
  }
  emit('');
  for (const v of values) if (v.length >= 4) out = out.split(v).join(MASK);
  return out;
}

/**
 * Whether a write body adds or changes `metadata.ownerReferences` (the garbage collector deletes
 * an object whose owners are all gone, so such a write can delete; issue 9, item 7). Looks at
 * apply/merge/strategic bodies (a `metadata.ownerReferences` key, or any strategic directive
 * naming it) and JSON patch operations on `/metadata/ownerReferences...`, `/metadata` or `` (root).
 */
export function touchesOwnerReferences(body: unknown, contentType: string | undefined): boolean {
  if (body === undefined || body === null) return false;
  let doc: unknown = body;
  if (typeof body === 'string') {
    try {
      doc = JSON.parse(body);
    } catch {
      return /ownerReferences/.test(body);
    }
  }
  if ((contentType ?? '').includes('json-patch') || Array.isArray(doc)) {
    if (!Array.isArray(doc)) return true;
    return doc.some((op) => {
      const o = (op ?? {}) as { op?: string; path?: string; value?: unknown };
      const path = typeof o.path === 'string' ? o.path : '';
      if (path.startsWith('/metadata/ownerReferences')) return o.op !== 'test';
      if (path !== '' && path !== '/' && path !== '/metadata') return false;
      if (o.op === 'test') return false;
      if (o.op === 'add' || o.op === 'replace') return JSON.stringify(o.value ?? null).includes('ownerReferences');
      return true; // remove, copy or move of the whole metadata (or object)
    });
  }
  const meta = (doc as { metadata?: unknown })?.metadata;
  if (!meta || typeof meta !== 'object') return false;
  return Object.keys(meta).some((k) => k.includes('ownerReferences'));
}

/**
 * Whether a JSON patch of a Secret reads stored values back: `copy`/`move` from, or `test` on,
 * `/data`, `/stringData` or the annotations (where the last-applied value lives). With masking
 * on, the result would carry the value elsewhere, or `test` would answer whether a guess is
 * right (issue 9, item 1).
 */
export function readsSecretValues(body: unknown): boolean {
  const ops =
    typeof body === 'string'
      ? (() => {
          try {
            return JSON.parse(body) as unknown;
          } catch {
            return undefined;
          }
        })()
      : body;
  if (!Array.isArray(ops)) return false;
  const sensitive = (p: unknown) =>
    typeof p === 'string' && (p === '' || p === '/' || /^\/(data|stringData|metadata)(\/|$)/.test(p));
  return ops.some((op) => {
    const o = (op ?? {}) as { op?: string; path?: string; from?: string };
    if (o.op === 'copy' || o.op === 'move') return sensitive(o.from);
    if (o.op === 'test') return sensitive(o.path);
    return false;
  });
}
