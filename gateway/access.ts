/**
 * The gateway's access layer (issue 17), the same for its stdio mode (`kubemcp bridge`) and its
 * reverse-proxy mode (`kubemcp gateway`): who the caller is, whether it may call this MCPServer,
 * what the server is told about the caller, and one audit line per MCP request.
 *
 * Order, as kube-rbac-proxy's filters (anchors/gateway.md section 1) with ToolHive's audit around
 * them (section 3):
 * 1. every inbound identity header (`X-Remote-*`, `X-Forwarded-User`, `Impersonate-*`, ...) is
 *    dropped, whatever the mode (pitfall 1: a spoofed header never arrives);
 * 2. authentication by the mode: `kubernetes` verifies the bearer token with a TokenReview bound
 *    to the server's audiences (./auth/tokenreview.ts); `none` lets everyone in as anonymous
 *    (an explicit opt-out the operator reports in status); `oidc` verifies a JWT of the configured
 *    issuer (./auth/oidc.ts; Kubernetes tokens still by TokenReview) and serves the RFC 9728
 *    protected resource metadata that its 401s point to;
 * 3. authorization: a SubjectAccessReview for `create mcpservers/proxy` on the MCPServer
 *    (./auth/sar.ts);
 * 4. upstream, the bearer token is never forwarded (pitfall 2, MCP authorization spec: "MUST NOT
 *    ... transit any other tokens"); the verified identity goes in `X-Remote-User` and one
 *    `X-Remote-Group` per group, the names of Kubernetes' own front-proxy (requestheader)
 *    authentication, with privileged groups (`system:masters`) never passed on.
 *
 * A refusal is 401 (no, malformed, invalid, expired or wrong-audience token; with
 * `WWW-Authenticate: Bearer`, RFC 6750 section 3), 403 (no right; the JSON-RPC error names the
 * missing right) or 503 (the apiserver could not be asked; the caller may retry), never a crash,
 * and never reaches the server.
 */
import type * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { AuthResult, Identity } from './auth/tokenreview.js';
import { rightText, type AuthzResult } from './auth/sar.js';
import { rpcError } from '../lib/http-json.js';

import { AUTH_MODES, type AuthMode } from '../charts/api/constants.js';

/** How callers are authenticated: the MCPServer API's `spec.auth.mode` values. */
export { AUTH_MODES, type AuthMode };

/** The identity headers the gateway sets upstream (Kubernetes' requestheader names). */
export const USER_HEADER = 'x-remote-user';
export const GROUP_HEADER = 'x-remote-group';

/**
 * Inbound headers that claim an identity, under the names the gateway, Kubernetes and common
 * proxies (oauth2-proxy, kube-rbac-proxy, Envoy/Istio, ToolHive) use; all are dropped from every
 * request before anything else. Prefixes end with `-`.
 */
export const IDENTITY_HEADER_NAMES: readonly string[] = [
  'x-remote-user',
  'x-remote-group',
  'x-remote-groups',
  'x-remote-uid',
  'x-remote-extra-',
  'x-forwarded-user',
  'x-forwarded-groups',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-access-token',
  'x-auth-request-',
  'x-user',
  'x-email',
  'x-userinfo',
  'x-jwt-payload',
  'x-kubemcp-',
  'impersonate-',
  'proxy-authorization',
];

/** Groups a verified identity may hold but the gateway never passes upstream. */
export const PRIVILEGED_GROUPS: readonly string[] = ['system:masters'];

/** Whether header `name` (lowercase) claims an identity ({@link IDENTITY_HEADER_NAMES}). */
export function isIdentityHeader(name: string): boolean {
  const n = name.toLowerCase();
  return IDENTITY_HEADER_NAMES.some((h) => (h.endsWith('-') ? n.startsWith(h) : n === h));
}

/**
 * The headers to send upstream for one request: the inbound ones without `Authorization`,
 * `Cookie`, hop-by-hop headers and every identity header, plus the verified identity's
 * `X-Remote-User` and `X-Remote-Group` (one value per group, privileged and malformed groups left
 * out). `identity` undefined (mode `none`) sets no identity at all.
 */
export function upstreamHeaders(
  inbound: http.IncomingHttpHeaders,
  identity: Identity | undefined,
): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const hop = new Set([
    'connection',
    'keep-alive',
    'proxy-connection',
    'te',
    'trailer',
    'transfer-encoding',
    'upgrade',
  ]);
  for (const token of String(inbound.connection ?? '').split(','))
    if (token.trim()) hop.add(token.trim().toLowerCase());
  for (const [name, value] of Object.entries(inbound)) {
    if (value === undefined || name === 'authorization' || name === 'cookie' || hop.has(name)) continue;
    if (isIdentityHeader(name)) continue;
    out[name] = value;
  }
  if (identity) {
    out[USER_HEADER] = identity.username;
    const groups = passedGroups(identity.groups);
    if (groups.length) out[GROUP_HEADER] = groups;
  }
  return out;
}

/** The groups passed upstream: without {@link PRIVILEGED_GROUPS} and values a header cannot carry. */
export function passedGroups(groups: readonly string[]): string[] {
  // eslint-disable-next-line no-control-regex
  return groups.filter((g) => g && !PRIVILEGED_GROUPS.includes(g) && !/[\x00-\x1f\x7f,]/.test(g));
}

/** Outcome of one request, as audited and counted. */
export type Outcome = 'success' | 'unauthenticated' | 'denied' | 'error' | 'invalid';

/** The caller's verdict from {@link GatewayAccess.check}. */
export type AccessDecision =
  | { ok: true; identity: Identity | undefined }
  | { ok: false; status: 401 | 403 | 503; outcome: Outcome; reason: string; message: string; identity?: Identity };

/** What the gateway learnt of one JSON-RPC message for the audit line and metrics. */
export interface RpcSummary {
  method?: string;
  /** `params.name` of a `tools/call` (or `prompts/get`), at most 128 characters. */
  name?: string;
  id?: string | number;
}

/** Summaries of a JSON-RPC body (one message or a batch), bounded to 32 entries. */
export function summarize(body: unknown): RpcSummary[] {
  const msgs = Array.isArray(body) ? body.slice(0, 32) : [body];
  return msgs.map((m) => {
    const o = (m && typeof m === 'object' ? m : {}) as { method?: unknown; id?: unknown; params?: { name?: unknown } };
    const method = typeof o.method === 'string' ? o.method.slice(0, 128) : undefined;
    const name =
      (method === 'tools/call' || method === 'prompts/get') && typeof o.params?.name === 'string'
        ? o.params.name.slice(0, 128)
        : undefined;
    const id = typeof o.id === 'string' ? o.id.slice(0, 128) : typeof o.id === 'number' ? o.id : undefined;
    return { method, name, id };
  });
}

/**
 * The `_meta` key by which a 2025-era server may name the input key of a request it sends while a
 * 2026-07-28 client's call is in flight (./eras.ts: the key of that request in the client's
 * `InputRequiredResult`); without it the gateway names it `<method>-<n>`.
 */
export const INPUT_KEY_META = 'dev.kubemcp/input-key';

/** The Prometheus metrics of one gateway (issue 17: calls by method, tool and outcome; latency; refusals by reason). */
export class GatewayMetrics {
  readonly requests: Counter<'mcpserver' | 'method' | 'tool' | 'outcome'>;
  readonly duration: Histogram<'mcpserver' | 'method'>;
  readonly refusals: Counter<'mcpserver' | 'reason'>;
  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'kubemcp_gateway_requests_total',
      help: 'MCP requests through the gateway, by JSON-RPC method, tool (tools/call) and outcome',
      labelNames: ['mcpserver', 'method', 'tool', 'outcome'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'kubemcp_gateway_request_duration_seconds',
      help: 'Time from a request to its response (to the end of an SSE stream), by JSON-RPC method',
      labelNames: ['mcpserver', 'method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.refusals = new Counter({
      name: 'kubemcp_gateway_auth_refusals_total',
      help: 'Requests refused before reaching the server, by reason (missing, malformed, invalid, audience, forbidden, error)',
      labelNames: ['mcpserver', 'reason'],
      registers: [registry],
    });
  }
}

/** Options of {@link GatewayAccess}. */
export interface GatewayAccessOptions {
  mode: AuthMode;
  /** The MCPServer in front of which the gateway stands (audit lines, metrics, SAR, messages). */
  namespace: string;
  name: string;
  /** The MCPServer's canonical URL (`status.url`), the resource of the protected resource metadata. */
  resource?: string;
  /** Mode `oidc`: the issuer named as authorization server in the protected resource metadata. */
  oidcIssuer?: string;
  /** Modes `kubernetes` and `oidc`: verifies bearer tokens (./auth/tokenreview.ts, ./auth/oidc.ts). */
  authenticator?: { authenticate(token: string | undefined): Promise<AuthResult> };
  /** Mode `kubernetes`: decides whether an identity may call (./auth/sar.ts). */
  authorizer?: { authorize(identity: Identity): Promise<AuthzResult> };
  /** Where the audit lines go: one JSON object per line (pino to stdout in a pod). */
  audit: Logger;
  metrics: GatewayMetrics;
}

/**
 * Authenticates, authorizes and audits requests to one MCPServer (see the module comment).
 * @throws Error from the constructor when mode `kubernetes` lacks an authenticator or authorizer.
 */
export class GatewayAccess {
  readonly mode: AuthMode;
  private readonly server: string;

  constructor(private readonly opts: GatewayAccessOptions) {
    this.mode = opts.mode;
    this.server = `${opts.namespace}/${opts.name}`;
    if (opts.mode !== 'none' && (!opts.authenticator || !opts.authorizer))
      throw new Error(`GatewayAccess: mode ${opts.mode} needs an authenticator and an authorizer`);
    if (opts.mode === 'oidc' && (!opts.oidcIssuer || !opts.resource))
      throw new Error('GatewayAccess: mode oidc needs the issuer and the resource (status.url)');
  }

  /** Who sends `req` and whether it may call the server. Never throws. */
  async check(req: http.IncomingMessage): Promise<AccessDecision> {
    if (this.mode === 'none') return { ok: true, identity: undefined };
    const token = bearer(req.headers.authorization);
    const authn = await this.opts.authenticator!.authenticate(token);
    if (!authn.ok) {
      const status = authn.reason === 'error' ? 503 : 401;
      return {
        ok: false,
        status,
        outcome: status === 503 ? 'error' : 'unauthenticated',
        reason: authn.reason,
        message:
          status === 503
            ? `Service Unavailable: the gateway could not verify the token (${authn.message}); retry`
            : this.mode === 'oidc'
              ? `Unauthorized: ${authn.message}. Send "Authorization: Bearer <token>" with a token of ${this.opts.oidcIssuer} for this server's audience (${this.opts.resource}); its protected resource metadata is at ${this.metadataUrl()}`
              : `Unauthorized: ${authn.message}. Send "Authorization: Bearer <token>" with a Kubernetes token for this server's audience (kubectl create token <serviceaccount> --audience <the MCPServer's status.url>)`,
      };
    }
    const authz = await this.opts.authorizer!.authorize(authn.identity);
    if (!authz.allowed)
      return authz.error
        ? {
            ok: false,
            status: 503,
            outcome: 'error',
            reason: 'error',
            identity: authn.identity,
            message: `Service Unavailable: the gateway could not check access (${authz.message}); retry`,
          }
        : {
            ok: false,
            status: 403,
            outcome: 'denied',
            reason: 'forbidden',
            identity: authn.identity,
            message: `Forbidden: ${authz.message || `${authn.identity.username} may not ${rightText(this.opts.namespace, this.opts.name)}`}`,
          };
    return { ok: true, identity: authn.identity };
  }

  /**
   * Answers a refused request: the status, `WWW-Authenticate` on a 401, a JSON-RPC error (code
   * -32001 on 401/403, -32603 on 503) saying why; counts the refusal.
   */
  refuse(res: http.ServerResponse, d: Extract<AccessDecision, { ok: false }>): void {
    this.opts.metrics.refusals.inc({ mcpserver: this.server, reason: d.reason });
    const headers: Record<string, string> = {};
    if (d.status === 401) {
      // RFC 9728 section 5.1 (mode oidc): the challenge points OAuth-capable MCP clients to the
      // protected resource metadata, which names the issuer (MCP authorization spec, discovery).
      const metadata = this.mode === 'oidc' ? `, resource_metadata="${this.metadataUrl()}"` : '';
      headers['WWW-Authenticate'] =
        d.reason === 'missing'
          ? `Bearer realm="kubemcp"${metadata}`
          : `Bearer realm="kubemcp", error="invalid_token"${metadata}`;
    }
    if (d.status === 503) headers['Retry-After'] = '1';
    rpcError(res, d.status, d.status === 503 ? -32603 : -32001, d.message, headers);
  }

  /** The URL of the protected resource metadata (RFC 9728 section 3.1: the well-known suffix before the resource's path). */
  metadataUrl(): string {
    return protectedResourceMetadataUrl(this.opts.resource!);
  }

  /**
   * Serves the RFC 9728 protected resource metadata in mode `oidc` (`GET` on
   * `/.well-known/oauth-protected-resource` with or without the resource's path after it):
   * `{resource, authorization_servers: [issuer], bearer_methods_supported: ['header']}`, public
   * as the RFC intends. Returns whether `req` was such a request (answered here); in other modes
   * it answers nothing and returns false.
   */
  serveMetadata(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean {
    if (this.mode !== 'oidc' || !path.startsWith(PRM_WELL_KNOWN)) return false;
    const resourcePath = new URL(this.opts.resource!).pathname.replace(/\/+$/, '');
    if (path !== PRM_WELL_KNOWN && path !== `${PRM_WELL_KNOWN}${resourcePath}`) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      rpcError(res, 405, -32000, 'Method not allowed: GET the protected resource metadata', { Allow: 'GET, HEAD' });
      return true;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=300' });
    res.end(
      JSON.stringify({
        resource: this.opts.resource,
        authorization_servers: [this.opts.oidcIssuer],
        bearer_methods_supported: ['header'],
        resource_name: `MCPServer ${this.server}`,
      }),
    );
    return true;
  }

  /**
   * Starts the audit of one MCP request; call the returned function once when its answer is
   * known (the outcome from the HTTP status unless given). Writes one line per JSON-RPC message:
   * `{audit: 'mcp', auditId, mcpserver, user, groups, method, tool, id, outcome, status, durationMs}`,
   * never arguments, results or tokens.
   */
  audit(
    req: http.IncomingMessage,
    rpc: RpcSummary[],
  ): (status: number, identity: Identity | undefined, outcome?: Outcome) => void {
    const start = process.hrtime.bigint();
    let done = false;
    return (status, identity, outcome) => {
      if (done) return;
      done = true;
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const o = outcome ?? outcomeOf(status);
      const auditId = randomUUID();
      for (const m of rpc.length ? rpc : [{}]) {
        const method = m.method ?? (req.method === 'POST' ? 'unknown' : (req.method ?? 'unknown'));
        this.opts.metrics.requests.inc({ mcpserver: this.server, method, tool: m.name ?? '', outcome: o });
        this.opts.metrics.duration.observe({ mcpserver: this.server, method }, seconds);
        this.opts.audit.info({
          audit: 'mcp',
          auditId,
          mcpserver: this.server,
          user: identity?.username ?? (this.mode === 'none' ? 'system:anonymous' : undefined),
          groups: identity?.groups,
          method,
          ...(m.name ? { tool: m.name } : {}),
          ...(m.id !== undefined ? { id: m.id } : {}),
          outcome: o,
          status,
          durationMs: Math.round(seconds * 1e6) / 1e3,
        });
      }
    };
  }
}

/** RFC 9728 section 3: the well-known path of protected resource metadata. */
export const PRM_WELL_KNOWN = '/.well-known/oauth-protected-resource';

/**
 * The metadata URL of `resource` (RFC 9728 section 3.1): its origin, the well-known path, then its
 * path (`http://h:3001/mcp` -> `http://h:3001/.well-known/oauth-protected-resource/mcp`).
 * @throws TypeError when `resource` is not a URL.
 */
export function protectedResourceMetadataUrl(resource: string): string {
  const u = new URL(resource);
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.origin}${PRM_WELL_KNOWN}${path}`;
}

/** The outcome an HTTP status stands for. */
export function outcomeOf(status: number): Outcome {
  if (status < 400) return 'success';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'denied';
  if (status < 500) return 'invalid';
  return 'error';
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750 section 2.1). */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? '');
  return m?.[1];
}
