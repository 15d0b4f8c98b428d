/**
 * The single gateway to Kubernetes for `kubemcp serve`: kubeconfig contexts (or in-cluster
 * config), cached API discovery, raw and Table requests, watches and log streams. Every request
 * any tool, resource, prompt or subscription makes goes through `KubeGateway.request` /
 * `KubeGateway.stream`, which enforce the Policy (policy.ts) before sending and mask Secret
 * values in what comes back (issue 5, "enforced below the tools").
 *
 * It speaks HTTP(S) itself with the TLS material and credentials `KubeConfig.applyToHTTPSOptions`
 * provides (client-node 1.4's generic object API drops unknown fields of plain JSON and cannot
 * ask for Table output), over one keep-alive agent per context.
 *
 * Tools, resources and prompts use its typed operations (issue 9, "The gateway, typed"):
 * `get`, `list`, `table`, `create`, `apply` (server-side apply as {@link FIELD_MANAGER}),
 * `patch` (merge/json/strategic), `delete`, `getScale`/`scale`, `logs`, `exec` (a WebSocket
 * upgrade, same checks and credentials) and `watch`. Each builds the request (method, content
 * type, query) in one place, returns the wire shapes of
 * kube-types.ts, and fails with a {@link KubeError} (the apiserver's status code, reason and
 * masked message) for apiserver failures, or an InvalidArgumentError (names.ts) naming the
 * argument for bad input, before anything is sent. `request` is the raw form they share.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { AsyncLocalStorage } from 'node:async_hooks';
import * as k8s from '@kubernetes/client-node';
import { maskErrorText, Policy, PolicyError, type RequestTarget } from './policy.js';
import { checkName, checkNamespace, InvalidArgumentError, parseApiPath } from './names.js';
import { fetchAggregated, type DiscoveryDiskCache } from './discovery.js';
import type { KubeList, KubernetesObject, Scale, Table, WatchEvent } from './kube-types.js';
import {
  decodeRelease,
  HELM_OWNER_SELECTOR,
  HELM_RELEASE_TYPE,
  maskRelease,
  releaseFields,
  validReleaseName,
  type HelmRelease,
} from './helm-storage.js';

export type * from './kube-types.js';

/**
 * The field manager of every write this server makes (server-side apply, patches, creates):
 * the apiserver records it in `metadata.managedFields`
 * (https://kubernetes.io/docs/reference/using-api/server-side-apply/#managers).
 */
export const FIELD_MANAGER = 'kubemcp';

/** Patch types of {@link KubeGateway.patch}: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch (built-in kinds only). */
export type PatchType = 'merge' | 'json' | 'strategic';

/** Content type of each patch type, and of server-side apply (Kubernetes API concepts, "Patch"). */
export const PATCH_CONTENT_TYPE: Readonly<Record<PatchType | 'apply', string>> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

/** A collection an operation addresses: a resolved resource, its namespace (ignored for cluster-scoped kinds), the context. */
export interface CollectionRef {
  context?: string;
  api: ApiResource;
  namespace?: string;
}

/** One object an operation addresses. */
export interface ObjectRef extends CollectionRef {
  name: string;
}

/** Options of list, table and watch (meta/v1 ListOptions). */
export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size. */
  limit?: number;
  /** Next page token of the previous page. */
  continue?: string;
  resourceVersion?: string;
}

/** Options of a watch: ListOptions plus the apiserver's timeout of the watch, in seconds. */
export interface WatchRef extends CollectionRef, Omit<ListOptions, 'limit' | 'continue'> {
  timeoutSeconds?: number;
}

/** Options of delete (meta/v1 DeleteOptions). */
export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  gracePeriodSeconds?: number;
  dryRun?: boolean;
}

/** Options of a pod's log read (core/v1 PodLogOptions) and the byte cap read. */
export interface LogOptions {
  container: string;
  tailLines?: number;
  sinceSeconds?: number;
  previous?: boolean;
  /** Most bytes read (also sent as limitBytes). */
  maxBytes: number;
}

/**
 * The WebSocket subprotocols of the exec subresource, preferred first (KEP-4006, "Transition
 * from SPDY to WebSockets"; k8s.io/apimachinery/pkg/util/remotecommand constants.go): v5 is what
 * kubectl 1.30+ speaks; v4 is the same framing without the close signal (apiservers before 1.30),
 * which a call without stdin never sends.
 */
export const EXEC_PROTOCOLS: readonly string[] = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];

/**
 * Channels of the channel protocol: every binary message is one byte of channel, then data
 * (k8s.io/client-go/tools/remotecommand websocket.go; wsstream conn.go). The error channel
 * carries one meta/v1 Status when the command ends; 255 (v5 only) closes a stream of the other
 * side (stdin).
 */
export const EXEC_CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** Options of {@link KubeGateway.exec}. */
export interface ExecOptions {
  /** Container name; undefined leaves the choice to the apiserver (the only container, else a 400 naming them). */
  container?: string;
  /** The argv: `command[0]` is executed by the runtime as it is (no shell), the rest are its arguments. */
  command: string[];
  /** Most milliseconds the command may run once the stream is open; then the stream is closed (`timedOut`). */
  timeoutMs: number;
  /** Most bytes of stdout and stderr together; the first byte past it closes the stream (`truncated`). */
  maxBytes: number;
}

/** What {@link KubeGateway.exec} returns. */
export interface ExecResult {
  /** Standard output, UTF-8 decoded (a character split by the byte cap becomes U+FFFD). */
  stdout: string;
  stderr: string;
  /**
   * The command's exit code: 0 for a Success Status, the ExitCode cause of a NonZeroExitCode
   * Status; null when it is unknown (timed out, cut, or the command did not run: see `error`).
   */
  exitCode: number | null;
  /** The byte cap was reached and the stream closed: output is missing, the command may still run. */
  truncated: boolean;
  /** The timeout passed and the stream closed: the command may still run in the container. */
  timedOut: boolean;
  /**
   * Why there is no exit code, when the command did not run or the stream broke: the error
   * channel's Status message (e.g. the runtime's `executable file not found in $PATH`).
   */
  error?: string;
  /** The error channel's Status reason (`NonZeroExitCode`, `InternalError`, ...), when it was not a Success. */
  reason?: string;
  /** The subprotocol the apiserver chose (one of {@link EXEC_PROTOCOLS}). */
  protocol: string;
}

/** The error channel's Status (meta/v1 Status; exit code in details.causes, reason ExitCode). */
interface ExecStatus {
  status?: string;
  reason?: string;
  message?: string;
  details?: { causes?: Array<{ reason?: string; message?: string }> };
}

/** A watch event as it arrives: `object` is a Status for ERROR events. */
interface RawWatchEvent {
  type?: string;
  object?: KubernetesObject & { code?: unknown; reason?: unknown; message?: unknown };
}

/** An API resource as aggregated discovery (apidiscovery.k8s.io/v2) describes it. */
export interface ApiResource {
  group: string;
  version: string;
  /** Plural name, e.g. `deployments`. */
  resource: string;
  kind: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  namespaced: boolean;
  verbs: string[];
  subresources: string[];
}

/**
 * Whether `subpath` below `t` is a kubelet log path: the core `nodes` resource's `proxy`
 * subresource, `logs/` followed by file-name segments (no empty, `.` or `..` segment but a last
 * empty one: `logs/`). The kubelet serves /var/log there (`enableSystemLogHandler`) and, with
 * NodeLogQuery, journal and service queries (`?query=`); Kubernetes docs, "Log query".
 */
export function isNodeLogsPath(t: { group: string; resource: string; subresource?: string }, subpath: string): boolean {
  if (t.group !== '' || t.resource !== 'nodes' || t.subresource !== 'proxy') return false;
  const segs = subpath.split('/');
  if (segs[0] !== 'logs' || segs.length < 2) return false;
  return segs
    .slice(1)
    .every((s, i, all) => (s === '' ? i === all.length - 1 : /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(s)));
}

/**
 * The TLS material of a context's request options (kubeconfig CA, client certificate and key or
 * PFX, `insecure-skip-tls-verify`, `tls-server-name`), for an https.Agent and for the exec
 * WebSocket alike, so both connections trust and present the same things.
 */
function tlsOptionsOf(opts: https.RequestOptions): https.AgentOptions {
  return {
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    pfx: opts.pfx,
    passphrase: opts.passphrase,
    ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
    ...(opts.servername ? { servername: opts.servername } : {}),
  };
}

/** `group/version` or `version` for the core group. */
export function apiVersionOf(r: Pick<ApiResource, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/**
 * The one error class of apiserver failures: `code` is the HTTP status, `reason` the Status
 * reason (NotFound, Forbidden, Conflict, Invalid, ...), `message` the apiserver's message with
 * Secret values masked; or a failure to reach it (`code` 0, reason `Unreachable`/`Timeout`).
 */
export class KubeError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

/**
 * The verified caller a call acts as (issue 17, "kubemcp serve acts as its caller"): the username
 * and groups the pod's gateway verified (TokenReview or OIDC) and passed in `X-Remote-User` /
 * `X-Remote-Group`. Sent to the apiserver as `Impersonate-User` / `Impersonate-Group`
 * (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation).
 */
export interface Caller {
  username: string;
  groups: string[];
}

/** Groups never impersonated, whatever the gateway passed (defence in depth beside its own filter). */
export const NEVER_IMPERSONATED_GROUPS: readonly string[] = ['system:masters'];

/**
 * Checks a caller before it is impersonated: a non-empty username and groups that a header can
 * carry (no control characters, no commas), at most 64 groups, none of
 * {@link NEVER_IMPERSONATED_GROUPS}.
 * @throws PolicyError naming what is wrong (nothing is sent).
 */
export function checkCaller(c: Caller): Caller {
  // eslint-disable-next-line no-control-regex
  const bad = (v: string) => !v || v.length > 512 || /[\x00-\x1f\x7f]/.test(v);
  if (bad(c.username) || c.username.startsWith('system:anonymous'))
    throw new PolicyError('refused: the caller has no verified username; nothing was sent');
  if (c.groups.length > 64) throw new PolicyError(`refused: the caller has ${c.groups.length} groups (at most 64)`);
  for (const g of c.groups) {
    if (bad(g) || g.includes(','))
      throw new PolicyError(`refused: the caller's group ${JSON.stringify(g)} is malformed`);
    if (NEVER_IMPERSONATED_GROUPS.includes(g))
      throw new PolicyError(`refused: the caller claims the group ${g}, which this server never impersonates`);
  }
  return c;
}

/** The caller of the call under way (AsyncLocalStorage: it follows the call's promises and timers). */
const callerStore = new AsyncLocalStorage<Caller>();

/**
 * Runs `fn` as `caller`: every request it makes through a gateway built with `impersonate` carries
 * the caller's `Impersonate-*` headers.
 * @throws PolicyError when the caller is malformed ({@link checkCaller}); whatever `fn` throws.
 */
export function runAsCaller<T>(caller: Caller, fn: () => T): T {
  return callerStore.run(checkCaller({ username: caller.username, groups: [...caller.groups] }), fn);
}

/** A stable key of a caller (username and sorted groups): what belongs to one caller (sessions, watches) is keyed by it. */
export function callerKey(c: Caller | undefined): string {
  return c ? JSON.stringify([c.username, ...[...c.groups].sort()]) : '';
}

/** The caller of the call under way, if any. */
export function currentCaller(): Caller | undefined {
  return callerStore.getStore();
}

/** One Kubernetes request. `api` is the resolved resource; `path` a raw path instead (discovery, /version). */
export interface KubeRequest {
  context?: string;
  /**
   * Sent as the server's own identity even when impersonating: discovery and the readiness probe,
   * whose answers are shared by every caller. Only for non-resource paths.
   */
  asServer?: boolean;
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  api?: ApiResource;
  namespace?: string;
  name?: string;
  subresource?: string;
  /**
   * Path below a node's `proxy` subresource, only `logs/...` (the kubelet's log handler and
   * NodeLogQuery: /api/v1/nodes/NODE/proxy/logs/?query=...); refused for anything else.
   */
  subpath?: string;
  path?: string;
  /** Query parameters; an array repeats the parameter (`command=a&command=b`). */
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** Abort after this many milliseconds (default: the gateway's timeout). */
  timeoutMs?: number;
}

/** Options of the gateway. */
export interface GatewayOptions {
  policy: Policy;
  /** Path of a kubeconfig file; default: KUBECONFIG, ~/.kube/config, then in-cluster config. */
  kubeconfig?: string;
  /** Default context (default: the kubeconfig's current context). */
  context?: string;
  /** Contexts the tools may use; `*` allows all. Default: only the default context. */
  allowContexts?: string[];
  /** Request timeout in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** Largest response body read, in bytes (default 64 MiB); larger answers fail with a KubeError. */
  maxResponseBytes?: number;
  /** Discovery cache lifetime in milliseconds (default 5 minutes; unknown kinds refresh it at once). */
  discoveryTtlMs?: number;
  /** Most concurrent watches (sizes their own connection pool; default 100). */
  maxWatches?: number;
  /** A disk cache of discovery shared by processes (discovery.ts); default none. Not used when the policy has a namespace allow-list or a kind deny-list. */
  discoveryCache?: DiscoveryDiskCache;
  /**
   * Act as the caller (issue 17): every request carries the `Impersonate-User`/`Impersonate-Group`
   * of the call's {@link Caller} ({@link runAsCaller}); a request with no caller is refused
   * before it is sent, except `asServer` non-resource reads (discovery, /version). Default false.
   */
  impersonate?: boolean;
}

/** Whether a resolved resource is core/v1 Secrets. */
function isSecrets(api: Pick<ApiResource, 'group' | 'resource'> | undefined): boolean {
  return !!api && api.group === '' && api.resource === 'secrets';
}

/** The Accept header asking the apiserver for its Table rendering (kubectl get's compact output). */
export const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';
const DISCOVERY_ACCEPT =
  'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';

interface ContextState {
  kc: k8s.KubeConfig;
  server: URL;
  agent?: http.Agent;
  watchAgent?: http.Agent;
  discovery?: { at: number; resources: ApiResource[] };
  /** The discovery under way, shared by concurrent callers. */
  discovering?: Promise<ApiResource[]>;
}

/** The gateway: see the module comment. One instance per server process. */
export class KubeGateway {
  readonly policy: Policy;
  readonly defaultContext: string;
  readonly allowedContexts: string[];
  private readonly base: k8s.KubeConfig;
  private readonly states = new Map<string, ContextState>();
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly ttl: number;
  private readonly discoveryCache?: DiscoveryDiskCache;
  /** Most concurrent watches this gateway serves (the subscription hub enforces it). */
  readonly maxWatches: number;
  /** Whether requests act as the call's caller ({@link GatewayOptions.impersonate}). */
  readonly impersonate: boolean;

  /**
   * Loads the kubeconfig (file, default chain, or in-cluster service account).
   * @throws Error when the context named does not exist.
   */
  constructor(opts: GatewayOptions) {
    this.policy = opts.policy;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxBytes = opts.maxResponseBytes ?? 64 * 1024 * 1024;
    this.ttl = opts.discoveryTtlMs ?? 5 * 60_000;
    this.maxWatches = opts.maxWatches ?? 100;
    this.impersonate = opts.impersonate ?? false;
    // Scopes and kinds from a disk entry could widen a namespace allow-list or a kind deny-list
    // (both are checked on what discovery says): with either, only live discovery is trusted.
    this.discoveryCache =
      opts.policy.allowedNamespaces.length || opts.policy.deniedKinds.length ? undefined : opts.discoveryCache;
    this.base = new k8s.KubeConfig();
    if (opts.kubeconfig) this.base.loadFromFile(opts.kubeconfig);
    else this.base.loadFromDefault();
    const names = this.base.getContexts().map((c) => c.name);
    this.defaultContext = opts.context ?? this.base.getCurrentContext();
    if (!names.includes(this.defaultContext))
      throw new Error(
        `context "${this.defaultContext}" not found in kubeconfig (contexts: ${names.join(', ') || 'none'})`,
      );
    const allow = opts.allowContexts ?? [];
    if (allow.includes('*')) this.allowedContexts = names;
    else {
      for (const c of allow)
        if (!names.includes(c))
          throw new Error(`context "${c}" not found in kubeconfig (contexts: ${names.join(', ')})`);
      this.allowedContexts = [...new Set([this.defaultContext, ...allow])];
    }
  }

  /** The kubeconfig's contexts, marking the default and whether each is allowed. */
  contexts(): Array<{
    name: string;
    cluster: string;
    user: string;
    namespace?: string;
    default: boolean;
    allowed: boolean;
  }> {
    return this.base.getContexts().map((c) => ({
      name: c.name,
      cluster: c.cluster,
      user: c.user,
      ...(c.namespace ? { namespace: c.namespace } : {}),
      default: c.name === this.defaultContext,
      allowed: this.allowedContexts.includes(c.name),
    }));
  }

  /**
   * The context a call uses: the one named, or the default when only one context is allowed.
   * @throws InvalidArgumentError naming `context` when the context is not allowed, or none is
   *   named while several are.
   */
  resolveContext(context?: string): string {
    if (context === undefined || context === '') {
      if (this.allowedContexts.length > 1)
        throw new InvalidArgumentError(
          'context',
          `the "context" argument is required: allowed contexts are ${this.allowedContexts.join(', ')}`,
        );
      return this.defaultContext;
    }
    if (!this.allowedContexts.includes(context))
      throw new InvalidArgumentError(
        'context',
        `context "${context}" is not allowed; allowed contexts: ${this.allowedContexts.join(', ')}`,
      );
    return context;
  }

  /** Default namespace of a context (its kubeconfig namespace, else `default`). */
  defaultNamespace(context?: string): string {
    const name = this.resolveContext(context);
    return this.base.getContextObject(name)?.namespace || 'default';
  }

  private state(context: string): ContextState {
    let s = this.states.get(context);
    if (!s) {
      const kc = new k8s.KubeConfig();
      kc.loadFromString(this.base.exportConfig());
      kc.setCurrentContext(context);
      const cluster = kc.getCurrentCluster();
      if (!cluster) throw new KubeError(0, 'Unreachable', `context "${context}" has no cluster`);
      s = { kc, server: new URL(cluster.server) };
      this.states.set(context, s);
    }
    return s;
  }

  /** Builds the URL path of a resource request (each segment percent-encoded). */
  pathOf(req: Pick<KubeRequest, 'api' | 'namespace' | 'name' | 'subresource' | 'subpath'>): string {
    const api = req.api!;
    let p = api.group
      ? `/apis/${encodeURIComponent(api.group)}/${encodeURIComponent(api.version)}`
      : `/api/${encodeURIComponent(api.version)}`;
    if (api.namespaced && req.namespace) p += `/namespaces/${encodeURIComponent(req.namespace)}`;
    p += `/${encodeURIComponent(api.resource)}`;
    if (req.name) p += `/${encodeURIComponent(req.name)}`;
    if (req.subresource) p += `/${encodeURIComponent(req.subresource)}`;
    if (req.subpath !== undefined) p += `/${req.subpath.split('/').map(encodeURIComponent).join('/')}`;
    return p;
  }

  private target(req: KubeRequest): RequestTarget | undefined {
    if (!req.api) return undefined;
    return {
      method: req.method ?? 'GET',
      group: req.api.group,
      resource: req.api.resource,
      kind: req.api.kind,
      namespaced: req.api.namespaced,
      ...(req.api.namespaced && req.namespace ? { namespace: req.namespace } : {}),
      ...(req.name ? { name: req.name } : {}),
      ...(req.subresource ? { subresource: req.subresource } : {}),
    };
  }

  /**
   * The one enforcement point (issue 9, item 2): checks the arguments as Kubernetes would
   * (names, namespaces), the policy on the resolved target and the body, then parses the URL
   * about to be sent and verifies that it designates exactly that target (after `new URL()`
   * normalisation), or, for a raw path, that it is one of the non-resource paths.
   * @throws InvalidArgumentError (bad name/namespace), PolicyError (refused), Error (a URL that
   *   designates something else: nothing is sent).
   */
  private authorize(req: KubeRequest, server: URL): URL {
    const t = this.target(req);
    if (req.api && t) {
      if (t.namespace !== undefined) checkNamespace(t.namespace);
      if (t.name !== undefined) checkName(t.name, t.group, t.resource);
      if (t.subresource !== undefined && !/^[a-z]+$/.test(t.subresource))
        throw new InvalidArgumentError('subresource', `${JSON.stringify(t.subresource)} is not a subresource`);
      if (req.subpath !== undefined && !isNodeLogsPath(t, req.subpath))
        throw new PolicyError(
          `refused: only logs/ paths of a node's proxy subresource may be sent (${t.resource}/${t.subresource ?? ''}/${req.subpath})`,
        );
      this.policy.checkRequest(t);
      this.policy.checkWrite(t, req.body, req.contentType);
    } else if (!req.path) throw new Error('KubeRequest needs api or path');
    const url = new URL(req.api ? this.pathOf(req) : req.path!, server);
    const got = parseApiPath(url.pathname);
    const refuse = (why: string) =>
      new PolicyError(`refused: the request URL ${url.pathname} ${why}; nothing was sent`);
    if (url.origin !== server.origin) throw refuse(`is not on the apiserver ${server.origin}`);
    if (!got) throw refuse('does not designate an API resource');
    if (!req.api || !t) {
      if (got.kind !== 'non-resource')
        throw refuse(
          'is a resource path, and resource requests must name a resolved kind so the policy can check them',
        );
      return url;
    }
    if (got.kind !== 'resource') throw refuse('is not the resource request the policy checked');
    // Namespace objects are addressed as /api/v1/namespaces/NAME: the parser reports no namespace.
    const wantNs = t.namespaced ? t.namespace : undefined;
    const same =
      got.group === t.group &&
      got.version === req.api.version &&
      got.resource === t.resource &&
      got.namespace === wantNs &&
      got.name === t.name &&
      got.subresource === t.subresource &&
      got.subpath === req.subpath;
    if (!same)
      throw refuse(
        `designates ${JSON.stringify(got)}, not the ${t.method} of ${t.resource}${t.namespace ? ` in ${t.namespace}` : ''}${t.name ? ` named ${t.name}` : ''} that the policy checked`,
      );
    return url;
  }

  private agentOf(s: ContextState, opts: https.RequestOptions, tls: boolean, watch: boolean): http.Agent {
    const make = (maxSockets: number, keepAlive: boolean) =>
      tls
        ? new https.Agent({ keepAlive, maxSockets, ...tlsOptionsOf(opts) })
        : new http.Agent({ keepAlive, maxSockets });
    if (watch) return (s.watchAgent ??= make(this.maxWatches + 8, false));
    return (s.agent ??= make(64, true));
  }

  /**
   * Everything a request carries before it is sent, built once for HTTP requests ({@link open})
   * and WebSocket upgrades ({@link exec}) alike: the URL {@link authorize} checked (the policy
   * included) with the query added (array values repeat the parameter, as `command` of exec),
   * the context's credentials and TLS material (`KubeConfig.applyToHTTPSOptions`: bearer token,
   * exec plugins, client certificates, CA, insecure-skip-tls-verify), and the caller's
   * `Impersonate-*` headers when the gateway acts as its caller (the kubeconfig's own
   * impersonation headers are then dropped).
   * @throws as authorize(); PolicyError when impersonating and the call has no caller.
   */
  private async prepare(req: KubeRequest): Promise<{
    context: string;
    s: ContextState;
    url: URL;
    opts: https.RequestOptions;
    tls: boolean;
    headers: Record<string, string | string[]>;
  }> {
    const context = this.resolveContext(req.context);
    const s = this.state(context);
    const url = this.authorize(req, s.server);
    // Discovery and /version go out as the server itself; everything else as the call's caller.
    const asCaller = this.impersonate && !(req.asServer && !req.api);
    const caller = asCaller ? currentCaller() : undefined;
    if (asCaller && !caller)
      throw new PolicyError(
        `refused: this server acts as its caller (--impersonate) and ${req.method ?? 'GET'} ${url.pathname} has no verified caller; nothing was sent`,
      );
    for (const [k, v] of Object.entries(req.query ?? {})) {
      if (Array.isArray(v)) for (const x of v) url.searchParams.append(k, x);
      else if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    }
    const opts: https.RequestOptions = { method: req.method ?? 'GET', headers: {} };
    await s.kc.applyToHTTPSOptions(opts);
    const tls = url.protocol === 'https:';
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {}))
      if (v !== undefined && !(caller && /^impersonate-/i.test(k)))
        headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
    if (caller) {
      // One Impersonate-Group header per group (the apiserver reads every value).
      headers['Impersonate-User'] = caller.username;
      if (caller.groups.length) headers['Impersonate-Group'] = caller.groups;
    }
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    headers['User-Agent'] = 'kubemcp-serve';
    return { context, s, url, opts, tls, headers };
  }

  /**
   * Sends one request and returns the raw response (status, headers, readable body).
   * Every request has a deadline from the moment it is made (queued for a socket included):
   * `req.timeoutMs` (default the gateway's timeout) for the whole exchange, or for a watch only
   * until its response headers arrive. Watches use their own connection pool, so they never
   * hold the sockets tool calls need (issue 9, item 3).
   */
  private async open(
    req: KubeRequest,
    watch = false,
  ): Promise<{ res: http.IncomingMessage; abort: (err?: Error) => void; url: URL; done: () => void }> {
    const { context, s, url, opts, tls, headers } = await this.prepare(req);
    const agent = this.agentOf(s, opts, tls, watch);
    headers.Accept = req.accept ?? 'application/json';
    let payload: Buffer | undefined;
    if (req.body !== undefined) {
      payload = Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
      headers['Content-Type'] = req.contentType ?? 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const mod = tls ? https : http;
    const timeout = req.timeoutMs ?? this.timeoutMs;
    return await new Promise((resolve, reject) => {
      let res: http.IncomingMessage | undefined;
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
      };
      const r = mod.request(url, { method: opts.method, headers, agent }, (response) => {
        res = response;
        if (watch) done();
        resolve({
          res: response,
          abort: (err?: Error) => {
            done();
            response.destroy(err);
            r.destroy(err);
          },
          url,
          done,
        });
      });
      if (timeout > 0) {
        timer = setTimeout(() => {
          const err = new KubeError(
            0,
            'Timeout',
            `the apiserver at ${s.server.origin} did not answer ${req.method ?? 'GET'} ${url.pathname} within ${timeout} ms`,
          );
          res?.destroy(err);
          r.destroy(err);
        }, timeout);
        timer.unref?.();
      }
      r.on('error', (err: NodeJS.ErrnoException) => {
        done();
        if (err instanceof KubeError) reject(err);
        else
          reject(
            new KubeError(
              0,
              'Unreachable',
              `cannot reach the apiserver at ${s.server.origin} (context ${context}): ${err.code ?? err.message}`,
            ),
          );
      });
      r.end(payload);
    });
  }

  private async readBody(res: http.IncomingMessage, limit: number): Promise<{ buf: Buffer; cut: boolean }> {
    const chunks: Buffer[] = [];
    let n = 0;
    let cut = false;
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        if (n + c.length > limit) {
          chunks.push(c.subarray(0, limit - n));
          n = limit;
          cut = true;
          res.destroy();
          break;
        }
        chunks.push(c);
        n += c.length;
      }
    } catch (err) {
      if (err instanceof KubeError) throw err;
      throw new KubeError(
        0,
        'Unreachable',
        `the apiserver connection broke while reading the answer: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    return { buf: Buffer.concat(chunks), cut };
  }

  /** A KubeError from an apiserver answer, its message Secret-masked (issue 9, items 1 and 5). */
  private errorOf(status: number, buf: Buffer, what: string, req: KubeRequest): KubeError {
    const text = buf.toString('utf8');
    let reason = String(status);
    let message: string;
    try {
      const st = JSON.parse(text) as {
        message?: string;
        reason?: string;
        details?: { causes?: Array<{ message?: unknown }> };
      };
      reason = st.reason ?? reason;
      message = st.message ?? text;
      // Causes the message does not already say (an eviction's 429 names the PodDisruptionBudget only there).
      const causes = (st.details?.causes ?? [])
        .map((c) => (typeof c?.message === 'string' ? c.message : ''))
        .filter((m) => m && !message.includes(m))
        .slice(0, 5);
      if (causes.length) message = `${message} (${causes.join('; ')})`;
    } catch {
      message = `${what}: HTTP ${status} ${text.slice(0, 500)}`;
    }
    if (!this.policy.showSecrets) {
      const secrets = isSecrets(req.api);
      const keep = [req.name, req.namespace, req.api?.kind, req.api?.resource, req.api?.version, 'v1'].filter(
        (x): x is string => !!x,
      );
      message = maskErrorText(message, secrets, [], keep);
    }
    return new KubeError(status, reason, message);
  }

  /** Masks Secret values and hides Namespaces outside the allow-list in an answer. */
  private clean<T>(body: T, req: KubeRequest): T {
    let out = this.policy.sanitize(body, isSecrets(req.api));
    if (req.api && req.api.group === '' && req.api.resource === 'namespaces') out = this.policy.filterNamespaces(out);
    return out;
  }

  /**
   * Sends a request and returns the parsed JSON body, Secret values masked, Namespaces outside
   * the allow-list removed.
   * @throws KubeError for non-2xx answers (with the apiserver's Status message, masked) and
   *   network errors or timeouts; PolicyError when the policy refuses the request and
   *   InvalidArgumentError for bad names (nothing is sent).
   */
  async request<T = unknown>(req: KubeRequest): Promise<T> {
    return this.clean(await this.requestUnmasked<T>(req), req);
  }

  /**
   * request() without the Secret masking and Namespace filtering of its answer: only for
   * callers that mask what they return themselves ({@link helmRelease}). The policy's checks of
   * the request apply as for request().
   * @throws as request().
   */
  private async requestUnmasked<T = unknown>(req: KubeRequest): Promise<T> {
    const { res, url, done } = await this.open(req);
    try {
      const { buf, cut } = await this.readBody(res, this.maxBytes);
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) throw this.errorOf(status, buf, `${req.method ?? 'GET'} ${url.pathname}`, req);
      if (cut)
        throw new KubeError(
          413,
          'TooLarge',
          `the answer to ${url.pathname} exceeds ${this.maxBytes} bytes: narrow the query (selector, namespace, limit)`,
        );
      // The apiserver's JSON for the resource requested: callers name its shape (kube-types.ts).
      return (buf.length ? JSON.parse(buf.toString('utf8')) : {}) as T;
    } finally {
      done();
    }
  }

  /**
   * Sends a GET and returns the body as text (pod logs), reading at most `maxBytes` bytes.
   * @throws as request().
   */
  async requestText(req: KubeRequest, maxBytes: number): Promise<{ text: string; cut: boolean }> {
    const { res, url, done } = await this.open(req);
    try {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        const { buf } = await this.readBody(res, 1 << 20);
        throw this.errorOf(status, buf, `GET ${url.pathname}`, req);
      }
      const { buf, cut } = await this.readBody(res, maxBytes);
      return { text: buf.toString('utf8'), cut };
    } finally {
      done();
    }
  }

  /**
   * Starts a watch (`?watch=1`, bookmarks on) of a collection on the watch connection pool and
   * calls `onEvent` for each event (objects Secret-masked, Namespaces filtered by the allow-list;
   * BOOKMARK events carry only the resourceVersion). Returns a stop function. `onEnd` is called
   * once when the stream ends or fails; an ERROR event (e.g. 410 Gone: the resourceVersion is too
   * old) ends it with a KubeError of that code. The open waits at most the gateway's timeout for
   * headers. (Kubernetes API concepts, "Efficient detection of changes".)
   * @throws KubeError when the watch cannot start (status and message as request()).
   */
  async watch(ref: WatchRef, onEvent: (e: WatchEvent) => void, onEnd: (err?: Error) => void): Promise<() => void> {
    const req: KubeRequest = {
      context: ref.context,
      api: ref.api,
      namespace: ref.namespace,
      query: {
        labelSelector: ref.labelSelector,
        fieldSelector: ref.fieldSelector,
        resourceVersion: ref.resourceVersion,
        timeoutSeconds: ref.timeoutSeconds,
        watch: 1,
        allowWatchBookmarks: true,
      },
    };
    const { res, abort, url } = await this.open(req, true);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const { buf } = await this.readBody(res, 1 << 20).catch(() => ({ buf: Buffer.alloc(0) }));
      throw this.errorOf(status, buf, `watch ${url.pathname}`, req);
    }
    let pending = '';
    let ended = false;
    const end = (err?: Error) => {
      if (!ended) {
        ended = true;
        onEnd(err);
      }
    };
    // A connection that goes silent (no bytes, not even bookmarks) for this long is treated as broken.
    res.socket?.setTimeout(Math.max(60_000, (ref.timeoutSeconds ?? 0) * 1000 + 30_000), () =>
      abort(new KubeError(0, 'Timeout', 'watch connection silent')),
    );
    res.setEncoding('utf8');
    const namespaces = ref.api.group === '' && ref.api.resource === 'namespaces';
    res.on('data', (chunk: string) => {
      pending += chunk;
      let i: number;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i).trim();
        pending = pending.slice(i + 1);
        if (!line) continue;
        let e: RawWatchEvent;
        try {
          e = JSON.parse(line) as RawWatchEvent;
        } catch {
          continue; // a malformed line is skipped
        }
        if (e.type === 'ERROR') {
          const st = e.object ?? {};
          end(
            new KubeError(
              Number(st.code) || 500,
              String(st.reason ?? 'WatchError'),
              String(st.message ?? 'watch error'),
            ),
          );
          abort();
          return;
        }
        if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED' && e.type !== 'BOOKMARK') continue;
        const raw = e.object ?? {};
        if (
          namespaces &&
          e.type !== 'BOOKMARK' &&
          this.policy.allowedNamespaces.length &&
          !this.policy.namespaceAllowed(String(raw.metadata?.name))
        )
          continue;
        onEvent({ type: e.type, object: this.clean(raw, req) });
      }
    });
    res.on('end', () => end());
    res.on('error', (err) => end(err));
    res.on('close', () => end());
    return () => {
      ended = true;
      abort();
    };
  }

  /**
   * Reads one object (or one of its subresources, e.g. `status`).
   * @throws KubeError (404 NotFound, 403 Forbidden, ...), PolicyError, InvalidArgumentError (bad name/namespace).
   */
  async get<T extends KubernetesObject = KubernetesObject>(ref: ObjectRef & { subresource?: string }): Promise<T> {
    return this.request<T>({
      context: ref.context,
      api: ref.api,
      namespace: ref.namespace,
      name: ref.name,
      subresource: ref.subresource,
    });
  }

  /**
   * Lists a collection (all namespaces when a namespaced kind is given no namespace, which a
   * namespace allow-list refuses). `items` is always an array.
   * @throws as get().
   */
  async list<T extends KubernetesObject = KubernetesObject>(
    ref: CollectionRef,
    opts: ListOptions = {},
  ): Promise<KubeList<T>> {
    const body = await this.request<Partial<KubeList<T>>>({
      context: ref.context,
      api: ref.api,
      namespace: ref.namespace,
      query: { ...opts },
    });
    return { ...body, items: Array.isArray(body.items) ? body.items : [] };
  }

  /**
   * Lists a collection as the apiserver's Table rendering (`kubectl get` columns; Kubernetes API
   * concepts, "Receiving resources as Tables").
   * @throws as get().
   */
  async table(ref: CollectionRef, opts: ListOptions = {}): Promise<Table> {
    return this.request<Table>({
      context: ref.context,
      api: ref.api,
      namespace: ref.namespace,
      query: { ...opts },
      accept: TABLE_ACCEPT,
    });
  }

  /**
   * Creates an object (POST) as {@link FIELD_MANAGER}.
   * @throws KubeError (409 AlreadyExists, 422 Invalid, ...), PolicyError, InvalidArgumentError.
   */
  async create<T extends KubernetesObject = KubernetesObject>(
    ref: CollectionRef,
    body: KubernetesObject,
    opts: { dryRun?: boolean } = {},
  ): Promise<T> {
    return this.request<T>({
      context: ref.context,
      method: 'POST',
      api: ref.api,
      namespace: ref.namespace,
      body,
      query: { fieldManager: FIELD_MANAGER, dryRun: opts.dryRun ? 'All' : undefined },
    });
  }

  /**
   * Server-side apply of `body` to the object `ref` names, as {@link FIELD_MANAGER}; `force`
   * takes ownership of fields other managers own (else they are 409 Conflicts).
   * (https://kubernetes.io/docs/reference/using-api/server-side-apply/)
   * @throws KubeError (409 Conflict, 422 Invalid, ...), PolicyError, InvalidArgumentError.
   */
  async apply<T extends KubernetesObject = KubernetesObject>(
    ref: ObjectRef,
    body: KubernetesObject,
    opts: { force?: boolean; dryRun?: boolean } = {},
  ): Promise<T> {
    return this.request<T>({
      context: ref.context,
      method: 'PATCH',
      api: ref.api,
      namespace: ref.namespace,
      name: ref.name,
      body,
      contentType: PATCH_CONTENT_TYPE.apply,
      query: {
        fieldManager: FIELD_MANAGER,
        force: opts.force ? true : undefined,
        dryRun: opts.dryRun ? 'All' : undefined,
      },
    });
  }

  /**
   * Patches one object (or its `status`/`scale` subresource) as {@link FIELD_MANAGER}: `patch`
   * is a JSON object for merge and strategic patches, an array of operations for a JSON patch.
   * @throws InvalidArgumentError naming `patch` when its shape does not fit the type (nothing is
   *   sent); otherwise as apply().
   */
  async patch<T extends KubernetesObject = KubernetesObject>(
    ref: ObjectRef & { subresource?: string },
    type: PatchType,
    patch: unknown,
    opts: { dryRun?: boolean } = {},
  ): Promise<T> {
    if (type === 'json' && !Array.isArray(patch))
      throw new InvalidArgumentError('patch', 'a json patch is an array of operations');
    if (type !== 'json' && (typeof patch !== 'object' || patch === null || Array.isArray(patch)))
      throw new InvalidArgumentError('patch', `a ${type} patch is a JSON object`);
    return this.request<T>({
      context: ref.context,
      method: 'PATCH',
      api: ref.api,
      namespace: ref.namespace,
      name: ref.name,
      subresource: ref.subresource,
      body: patch,
      contentType: PATCH_CONTENT_TYPE[type],
      query: { fieldManager: FIELD_MANAGER, dryRun: opts.dryRun ? 'All' : undefined },
    });
  }

  /**
   * Deletes one object (propagation Background unless told). Returns the object (with
   * `metadata.deletionTimestamp` while finalizers or graceful termination are pending) or a
   * Status once it is gone.
   * @throws as get().
   */
  async delete(ref: ObjectRef, opts: DeleteOptions = {}): Promise<KubernetesObject> {
    return this.request<KubernetesObject>({
      context: ref.context,
      method: 'DELETE',
      api: ref.api,
      namespace: ref.namespace,
      name: ref.name,
      body: {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        propagationPolicy: opts.propagationPolicy ?? 'Background',
        ...(opts.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: opts.gracePeriodSeconds } : {}),
        // With a body, the apiserver reads DeleteOptions (dryRun included) from it, not the query.
        ...(opts.dryRun ? { dryRun: ['All'] } : {}),
      },
    });
  }

  /**
   * Reads the scale subresource of a workload.
   * @throws InvalidArgumentError naming `kind` when the kind has no scale subresource; else as get().
   */
  async getScale(ref: ObjectRef): Promise<Scale> {
    if (!ref.api.subresources.includes('scale'))
      throw new InvalidArgumentError('kind', `${ref.api.kind} has no scale subresource`);
    return this.get<Scale>({ ...ref, subresource: 'scale' });
  }

  /**
   * Sets the replicas of a workload through its scale subresource (a merge patch, as
   * `kubectl scale` does). Returns the Scale the apiserver stored.
   * @throws as getScale() and patch().
   */
  async scale(ref: ObjectRef, replicas: number): Promise<Scale> {
    if (!ref.api.subresources.includes('scale'))
      throw new InvalidArgumentError('kind', `${ref.api.kind} has no scale subresource`);
    return this.patch<Scale>({ ...ref, subresource: 'scale' }, 'merge', { spec: { replicas } });
  }

  /**
   * Reads the log of one container of a pod (`ref.api` is core/v1 pods), at most
   * `opts.maxBytes` bytes; `cut` says the cap was reached.
   * @throws as get().
   */
  async logs(ref: ObjectRef, opts: LogOptions): Promise<{ text: string; cut: boolean }> {
    return this.requestText(
      {
        context: ref.context,
        api: ref.api,
        namespace: ref.namespace,
        name: ref.name,
        subresource: 'log',
        accept: 'text/plain, */*',
        query: {
          container: opts.container,
          tailLines: opts.tailLines,
          sinceSeconds: opts.sinceSeconds,
          previous: opts.previous ? true : undefined,
          limitBytes: opts.maxBytes,
        },
      },
      opts.maxBytes,
    );
  }

  /**
   * Runs a command in a container of a pod (`ref.api` is core/v1 pods) through the `exec`
   * subresource over a WebSocket with the channel protocol ({@link EXEC_PROTOCOLS}, as kubectl
   * 1.30+; KEP-4006): `GET .../pods/NAME/exec?command=...&container=...&stdout=true&stderr=true`
   * with `Upgrade: websocket`, no stdin, no TTY. The request goes through the same checks as
   * every other ({@link authorize}: names, the policy, which refuses `exec` in read-only mode
   * and with disable-destructive unless allowExec; denied kinds; the namespace allow-list) and
   * carries the same credentials, TLS material and `Impersonate-*` headers ({@link prepare}).
   *
   * stdout and stderr are kept apart; the exit code comes from the error channel's Status. Once
   * open, the stream is closed after `timeoutMs` (`timedOut`) or when stdout and stderr together
   * pass `maxBytes` (`truncated`); Kubernetes does not signal the process then, so it may go on
   * running in the container. A command the runtime cannot start is a result with `error` (the
   * Status message), not a throw.
   * @throws InvalidArgumentError naming `command` (empty argv), `timeoutMs` or `maxBytes` (not
   *   positive), nothing sent; PolicyError (refused); KubeError with the apiserver's status when
   *   the upgrade is refused (404 pod not found, 400 container not valid or pod not running, 403
   *   forbidden), `Timeout` when the handshake takes longer than the gateway's timeout,
   *   `Unreachable` when the apiserver cannot be reached.
   */
  async exec(ref: ObjectRef, o: ExecOptions): Promise<ExecResult> {
    if (o.command.length === 0 || o.command.some((c) => typeof c !== 'string'))
      throw new InvalidArgumentError('command', 'must be a non-empty array of strings (argv)');
    if (!(o.timeoutMs > 0)) throw new InvalidArgumentError('timeoutMs', 'must be positive');
    if (!(o.maxBytes > 0)) throw new InvalidArgumentError('maxBytes', 'must be positive');
    const req: KubeRequest = {
      context: ref.context,
      method: 'GET',
      api: ref.api,
      namespace: ref.namespace,
      name: ref.name,
      subresource: 'exec',
      query: { container: o.container, command: o.command, stdout: true, stderr: true },
    };
    const { context, s, url, opts, tls, headers } = await this.prepare(req);
    url.protocol = tls ? 'wss:' : 'ws:';
    const { WebSocket } = await import('ws');
    return await new Promise<ExecResult>((resolve, reject) => {
      const ws = new WebSocket(url, [...EXEC_PROTOCOLS], {
        headers,
        handshakeTimeout: this.timeoutMs,
        perMessageDeflate: false,
        followRedirects: false,
        // ws hands its options to https.request / tls.connect, which read servername (kubeconfig tls-server-name).
        ...tlsOptionsOf(opts),
      });
      const chunks: Record<1 | 2, Buffer[]> = { 1: [], 2: [] };
      const status: Buffer[] = [];
      let bytes = 0;
      let opened = false;
      let stopped = false;
      let truncated = false;
      let timedOut = false;
      let streamError: string | undefined;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const stop = () => {
        stopped = true;
        ws.terminate();
      };
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        reject(err);
      };
      ws.on('unexpected-response', (_r, res) => {
        this.readBody(res, 1 << 20)
          .catch(() => ({ buf: Buffer.alloc(0) }))
          .then(({ buf }) => {
            const code = res.statusCode ?? 0;
            // A 101 with a subprotocol we did not offer, or a 2xx without the upgrade.
            fail(this.errorOf(code >= 200 && code < 300 ? 502 : code, buf, `exec ${url.pathname}`, req));
            ws.terminate();
          }, fail);
      });
      ws.on('open', () => {
        opened = true;
        timer = setTimeout(() => {
          timedOut = true;
          stop();
        }, o.timeoutMs);
      });
      ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
        if (stopped) return;
        const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        if (buf.length < 1) return;
        const ch = buf[0];
        const body = buf.subarray(1);
        if (ch === EXEC_CHANNEL.stdout || ch === EXEC_CHANNEL.stderr) {
          const room = o.maxBytes - bytes;
          chunks[ch].push(body.length > room ? body.subarray(0, room) : body);
          bytes += Math.min(body.length, room);
          if (body.length > room) {
            truncated = true;
            stop();
          }
        } else if (ch === EXEC_CHANNEL.error) status.push(body);
      });
      ws.on('error', (err: Error) => {
        if (!opened) {
          const timeout = /handshake has timed out/i.test(err.message);
          fail(
            new KubeError(
              0,
              timeout ? 'Timeout' : 'Unreachable',
              timeout
                ? `the apiserver at ${s.server.origin} did not upgrade GET ${url.pathname} (exec) within ${this.timeoutMs} ms`
                : `cannot reach the apiserver at ${s.server.origin} (context ${context}) for exec: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
            ),
          );
        } else if (!stopped) streamError = err.message;
      });
      ws.on('close', () => {
        if (timer) clearTimeout(timer);
        if (settled) return;
        if (!opened) return fail(new KubeError(0, 'Unreachable', `exec ${url.pathname}: closed before the upgrade`));
        settled = true;
        const out: ExecResult = {
          stdout: Buffer.concat(chunks[1]).toString('utf8'),
          stderr: Buffer.concat(chunks[2]).toString('utf8'),
          exitCode: null,
          truncated,
          timedOut,
          protocol: ws.protocol,
        };
        const text = Buffer.concat(status).toString('utf8').trim();
        if (text) {
          let st: ExecStatus = {};
          try {
            st = JSON.parse(text) as ExecStatus;
          } catch {
            st = { status: 'Failure', message: text };
          }
          if (st.status === 'Success') out.exitCode = 0;
          else {
            const code = st.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
            if (st.reason === 'NonZeroExitCode' && code !== undefined && /^\d+$/.test(code))
              out.exitCode = Number(code);
            else out.error = st.message ?? text;
            if (st.reason) out.reason = st.reason;
          }
        } else if (!truncated && !timedOut)
          out.error = streamError ?? 'the stream closed before the command reported its exit status';
        resolve(out);
      });
    });
  }

  /**
   * Lists the metadata of Helm's release Secrets (Helm 3/4 storage: label `owner=helm`, field
   * `type=helm.sh/release.v1`; helm-storage.ts) in a namespace, or in all namespaces when none is
   * given (which a namespace allow-list refuses), as a PartialObjectMetadataList: names and labels
   * (`name`, `status`, `version`), no release data (Kubernetes API concepts, "Retrieving resource
   * metadata only"). `release` narrows to one release's revisions (label `name`).
   * @throws InvalidArgumentError naming `name` when `release` is not a Helm release name; else as list().
   */
  async helmReleaseIndex(
    ref: { context?: string; namespace?: string },
    opts: { release?: string; limit?: number; continue?: string } = {},
  ): Promise<KubeList> {
    if (opts.release !== undefined && !validReleaseName(opts.release))
      throw new InvalidArgumentError('name', `${JSON.stringify(opts.release)} is not a Helm release name`);
    const api = await this.resolve('secrets', 'v1', ref.context);
    const body = await this.request<Partial<KubeList>>({
      context: ref.context,
      api,
      namespace: ref.namespace,
      accept: 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
      query: {
        labelSelector: opts.release ? `${HELM_OWNER_SELECTOR},name=${opts.release}` : HELM_OWNER_SELECTOR,
        fieldSelector: `type=${HELM_RELEASE_TYPE}`,
        limit: opts.limit,
        continue: opts.continue,
      },
    });
    return { ...body, items: Array.isArray(body.items) ? body.items : [] };
  }

  /**
   * Reads one revision of a Helm release from its storage Secret `ref.name`
   * (`sh.helm.release.v1.<release>.v<revision>`) and returns it decoded (helm-storage.ts
   * decodeRelease, releaseFields). The one read of a Secret's data that request() does not mask,
   * so it is narrow: one GET of one Secret, checked by the policy as get() is (denied kinds, the
   * namespace allow-list, impersonation); accepted only when what came back is a Secret of type
   * `helm.sh/release.v1` with `data.release`. The Secret itself is never returned, only the
   * release's fields, with its manifest's Secrets and every copy of their values masked
   * (maskRelease) unless the policy shows Secrets.
   * @throws KubeError 404 when the Secret is missing; 422 `NotHelmRelease` when it is not a Helm
   *   release Secret, 422 `BadHelmRelease` when its data does not decode (nothing of it is
   *   returned); else as get().
   */
  async helmRelease(ref: { context?: string; namespace: string; name: string }): Promise<HelmRelease> {
    const api = await this.resolve('secrets', 'v1', ref.context);
    const s = await this.requestUnmasked<KubernetesObject>({
      context: ref.context,
      api,
      namespace: ref.namespace,
      name: ref.name,
    });
    const data = s.data && typeof s.data === 'object' ? (s.data as Record<string, unknown>) : {};
    const what = `secret ${ref.namespace}/${ref.name}`;
    if (s.kind !== 'Secret' || s.type !== HELM_RELEASE_TYPE || typeof data.release !== 'string')
      throw new KubeError(
        422,
        'NotHelmRelease',
        `${what} is not a Helm release (type ${JSON.stringify(String(s.type ?? '').slice(0, 63))}, not ${HELM_RELEASE_TYPE}): nothing of it is read`,
      );
    let decoded: ReturnType<typeof releaseFields>;
    try {
      decoded = releaseFields(decodeRelease(data.release));
    } catch (err) {
      throw new KubeError(422, 'BadHelmRelease', `${what}: ${(err as Error).message}`);
    }
    return this.policy.showSecrets ? decoded.release : maskRelease(decoded.release, decoded.hookManifests);
  }

  /**
   * Resolves every `--deny-kinds` entry through discovery of the default context, so short
   * names and singulars deny the kind under all its names (issue 9, item 9).
   * @throws Error naming the entries discovery does not know (the server must not start).
   */
  async resolveDenyKinds(): Promise<void> {
    const entries = this.policy.deniedKinds;
    if (entries.length === 0) return;
    const unknown: string[] = [];
    const resolved: ApiResource[] = [];
    for (const e of entries) {
      try {
        resolved.push(await this.resolve(e));
      } catch (err) {
        if (err instanceof KubeError && err.code === 404) unknown.push(e);
        else throw new Error(`--deny-kinds: cannot resolve the kinds through discovery: ${errorText(err)}`);
      }
    }
    if (unknown.length)
      throw new Error(
        `--deny-kinds: unknown kind${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}: not served by the cluster (use a kind, resource, short name or resource.group that kubectl accepts)`,
      );
    this.policy.addDeniedResources(resolved);
  }

  /**
   * All API resources of a context (cached; `refresh` forces a new discovery), from aggregated
   * discovery of /api and /apis, preferred version first for each group.
   * @throws KubeError when the apiserver is unreachable.
   */
  async resources(context?: string, refresh = false): Promise<ApiResource[]> {
    const ctx = this.resolveContext(context);
    const s = this.state(ctx);
    if (!refresh && s.discovery && Date.now() - s.discovery.at < this.ttl) return s.discovery.resources;
    // A new process: the disk cache (discovery.ts); one discovery at a time per context.
    const cluster = s.kc.getCurrentCluster()!;
    const cached = !refresh && !s.discovery ? this.discoveryCache?.read(cluster, this.ttl) : undefined;
    if (cached) return (s.discovery = cached).resources;
    s.discovering ??= fetchAggregated((path) =>
      this.request({ context: ctx, path, accept: DISCOVERY_ACCEPT, asServer: true }),
    ).finally(() => (s.discovering = undefined));
    const out = await s.discovering;
    s.discovery = { at: Date.now(), resources: out };
    this.discoveryCache?.write(cluster, s.discovery.at, out);
    return out;
  }

  /**
   * Resolves a kind or resource name as kubectl does (case-insensitive: `Pod`, `pods`, `pod`,
   * `po`, `deployments.apps`, `Deployment.apps`, `mcps`), optionally pinned by `apiVersion`.
   * Core and earlier groups win ties; the preferred version of a group wins.
   * @throws KubeError 404 when nothing matches (after one fresh discovery); InvalidArgumentError
   *   naming `kind` when it is empty.
   */
  async resolve(kind: string, apiVersion?: string, context?: string): Promise<ApiResource> {
    const want = kind.trim().toLowerCase();
    if (!want) throw new InvalidArgumentError('kind', 'must not be empty');
    const [gv, ver] = apiVersion
      ? apiVersion.includes('/')
        ? apiVersion.split('/', 2)
        : ['', apiVersion]
      : [undefined, undefined];
    const find = (all: ApiResource[]) => {
      const cands = all.filter((r) => {
        if (!r.kind) return false;
        if (gv !== undefined && (r.group !== gv || (ver && r.version !== ver))) return false;
        const names = [r.kind, r.resource, r.singular, ...r.shortNames].map((n) => n.toLowerCase());
        if (names.includes(want)) return true;
        const dot = want.indexOf('.');
        if (dot > 0) {
          const head = want.slice(0, dot);
          const grp = want.slice(dot + 1);
          return (
            names.includes(head) && (r.group.toLowerCase() === grp || `${r.version}.${r.group}`.toLowerCase() === grp)
          );
        }
        return false;
      });
      return cands[0];
    };
    let r = find(await this.resources(context));
    if (!r) r = find(await this.resources(context, true));
    if (!r)
      throw new KubeError(
        404,
        'NotFound',
        `the server has no resource type "${kind}"${apiVersion ? ` in ${apiVersion}` : ''}`,
      );
    return r;
  }

  /** Frees the keep-alive connections. */
  close(): void {
    for (const s of this.states.values()) {
      s.agent?.destroy();
      s.watchAgent?.destroy();
    }
  }
}

/** A short human reason for any error a tool may meet (KubeError, PolicyError, zod, others). */
export function errorText(err: unknown): string {
  if (err instanceof KubeError) {
    return err.code ? `${err.reason} (${err.code}): ${err.message}` : `${err.reason}: ${err.message}`;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
