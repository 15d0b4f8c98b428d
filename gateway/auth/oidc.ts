/**
 * The gateway's `oidc` authentication mode (issue 17): a caller's bearer token is a JWT from an
 * OpenID Connect issuer, verified with `jose` against the issuer's JWKS (signature, `iss`, `aud`
 * among the MCPServer's audiences, `exp`/`nbf` with a small clock tolerance), never by hand. The
 * identity is mapped as kube-apiserver maps OIDC tokens (Kubernetes docs, "Authenticating",
 * OpenID Connect Tokens: `--oidc-username-claim`, `--oidc-username-prefix`, `--oidc-groups-claim`,
 * `--oidc-groups-prefix`), so RBAC on `create mcpservers/proxy` binds `User oidc:alice` or
 * `Group oidc:admins`. The prefixes are never empty by default: a token claiming
 * `sub: system:admin` or `groups: [system:masters]` becomes `oidc:system:admin`, not an admin.
 *
 * Besides the issuer's tokens, Kubernetes ServiceAccount tokens for the same audience stay
 * accepted (as kube-apiserver unions its authenticators): a token whose `iss` is not the OIDC
 * issuer goes to the TokenReview authenticator, so the operator's verification handshake and
 * in-cluster clients keep working. The MCP authorization spec's discovery (RFC 9728 protected
 * resource metadata naming the issuer) is served by the gateway (../access.ts).
 */
import type { createRemoteJWKSet, JWTPayload } from 'jose';

/** jose, loaded on the first token an OIDC gateway sees: gateways in other modes never load it (their idle RSS). */
type Jose = typeof import('jose');
let josePending: Promise<Jose> | undefined;
const loadJose = (): Promise<Jose> => (josePending ??= import('jose'));
import type { AuthResult, Identity } from './tokenreview.js';
import { MAX_TOKEN_BYTES } from './tokenreview.js';

/** Options of {@link OidcAuthenticator}. */
export interface OidcOptions {
  /** The issuer URL, exactly as tokens carry it in `iss` (https, or http on a loopback host). */
  issuer: string;
  /** The JWKS URL; default: `jwks_uri` of `<issuer>/.well-known/openid-configuration`. */
  jwksUri?: string;
  /** Audiences a token's `aud` must include one of (the MCPServer's `status.url` first). */
  audiences: readonly string[];
  /** The claim that names the user (default `sub`). */
  usernameClaim?: string;
  /** Prepended to the username (default `oidc:`). */
  usernamePrefix?: string;
  /** The claim that lists the groups (default `groups`; a string or an array of strings). */
  groupsClaim?: string;
  /** Prepended to each group (default `oidc:`). */
  groupsPrefix?: string;
  /** Allowed clock skew, in seconds (default 30). */
  clockToleranceSeconds?: number;
  /** Deadline of a discovery or JWKS fetch, in ms (default 5 000). */
  timeoutMs?: number;
  /** Verifies tokens of other issuers (Kubernetes ServiceAccount tokens by TokenReview). */
  fallback?: { authenticate(token: string | undefined): Promise<AuthResult> };
  /** Fetch for discovery (tests). */
  fetch?: typeof globalThis.fetch;
}

/** Whether `url` is https, or http on a loopback host (RFC 8252 section 7.3's exception). */
export function isAllowedIssuerUrl(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

/** How long after a failed discovery the next is tried, in ms. */
export const DISCOVERY_RETRY_MS = 10_000;

/** At most this many groups are taken from a token (a larger list is refused as malformed). */
export const MAX_GROUPS = 256;

/**
 * Verifies OIDC JWTs (see the module comment). Never throws from `authenticate`: a bad token is
 * `{ok: false, reason}` (401), an issuer that cannot be reached is reason `error` (503).
 * @throws Error from the constructor when the issuer or JWKS URL is not https (or loopback http),
 *   or `audiences` is empty.
 */
export class OidcAuthenticator {
  private jwks?: ReturnType<typeof createRemoteJWKSet>;
  private jwksPending?: Promise<ReturnType<typeof createRemoteJWKSet>>;
  private lastFailure?: { at: number; error: Error };
  /** Tokens verified (metrics and tests). */
  verified = 0;

  constructor(private readonly opts: OidcOptions) {
    if (!isAllowedIssuerUrl(opts.issuer))
      throw new Error(`OIDC issuer must be an https URL (http only on a loopback host), got "${opts.issuer}"`);
    if (opts.jwksUri !== undefined && !isAllowedIssuerUrl(opts.jwksUri))
      throw new Error(`OIDC JWKS URL must be an https URL (http only on a loopback host), got "${opts.jwksUri}"`);
    if (!opts.audiences.length) throw new Error('OidcAuthenticator: at least one audience is required');
  }

  /** The issuer (for the protected resource metadata). */
  get issuer(): string {
    return this.opts.issuer;
  }

  /** Verifies `token`; tokens of another issuer go to the fallback, if any. */
  async authenticate(token: string | undefined): Promise<AuthResult> {
    if (!token) return { ok: false, reason: 'missing', message: 'no bearer token' };
    if (token.length > MAX_TOKEN_BYTES) return { ok: false, reason: 'malformed', message: 'the token is too large' };
    const jose = await loadJose();
    let claims: JWTPayload;
    try {
      claims = jose.decodeJwt(token);
    } catch {
      return this.opts.fallback
        ? this.opts.fallback.authenticate(token)
        : { ok: false, reason: 'malformed', message: 'the token is not a JWT' };
    }
    if (claims.iss !== this.opts.issuer)
      return this.opts.fallback
        ? this.opts.fallback.authenticate(token)
        : { ok: false, reason: 'invalid', message: 'the token was not issued by this server’s OIDC issuer' };
    let jwks: ReturnType<typeof createRemoteJWKSet>;
    try {
      jwks = await this.keySet();
    } catch (err) {
      return {
        ok: false,
        reason: 'error',
        message: `the OIDC issuer's keys could not be read: ${(err as Error).message}`,
      };
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, jwks, {
        issuer: this.opts.issuer,
        audience: [...this.opts.audiences],
        clockTolerance: this.opts.clockToleranceSeconds ?? 30,
      }));
    } catch (err) {
      return refusal(err, jose.errors);
    }
    const identity = this.identityOf(payload);
    if (typeof identity === 'string') return { ok: false, reason: 'malformed', message: identity };
    this.verified++;
    const aud = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    return { ok: true, identity, audiences: aud.filter((a) => this.opts.audiences.includes(a)) };
  }

  /** The identity a verified payload names, or why it names none. */
  private identityOf(payload: JWTPayload): Identity | string {
    const userClaim = this.opts.usernameClaim ?? 'sub';
    const user = payload[userClaim];
    if (typeof user !== 'string' || !user || user.length > 1024)
      return `the token has no usable "${userClaim}" claim for the username`;
    const groupsClaim = this.opts.groupsClaim ?? 'groups';
    const raw = payload[groupsClaim];
    const list = raw === undefined ? [] : typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(list) || list.length > MAX_GROUPS || list.some((g) => typeof g !== 'string' || g.length > 1024))
      return `the token's "${groupsClaim}" claim is not a list of at most ${MAX_GROUPS} strings`;
    const gp = this.opts.groupsPrefix ?? 'oidc:';
    return {
      username: `${this.opts.usernamePrefix ?? 'oidc:'}${user}`,
      groups: (list as string[]).map((g) => `${gp}${g}`),
    };
  }

  /**
   * The issuer's key set, discovered once. A failed discovery is retried no sooner than
   * {@link DISCOVERY_RETRY_MS} later (until then its error is returned), so callers sending
   * tokens cannot make the gateway hammer an unreachable issuer.
   */
  private async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return this.jwks;
    if (this.lastFailure && Date.now() - this.lastFailure.at < DISCOVERY_RETRY_MS) throw this.lastFailure.error;
    this.jwksPending ??= this.discover()
      .catch((error: Error) => {
        this.lastFailure = { at: Date.now(), error };
        throw error;
      })
      .finally(() => (this.jwksPending = undefined));
    this.jwks = await this.jwksPending;
    return this.jwks;
  }

  private async discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const timeoutDuration = this.opts.timeoutMs ?? 5000;
    let uri = this.opts.jwksUri;
    if (!uri) {
      const url = `${this.opts.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
      const res = await (this.opts.fetch ?? globalThis.fetch)(url, {
        headers: { Accept: 'application/json' },
        signal: AbortSignal.timeout(timeoutDuration),
      });
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
      // OpenID Connect Discovery 1.0 section 4.3: the issuer in the document must be the one asked.
      if (doc.issuer !== this.opts.issuer) throw new Error(`${url} names issuer ${JSON.stringify(doc.issuer)}`);
      if (typeof doc.jwks_uri !== 'string' || !isAllowedIssuerUrl(doc.jwks_uri))
        throw new Error(`${url} has no https jwks_uri`);
      uri = doc.jwks_uri;
    }
    const { createRemoteJWKSet } = await loadJose();
    return createRemoteJWKSet(new URL(uri), { timeoutDuration, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  }
}

/** The 401 reason and message for a jose verification error (`errors`: jose's error classes). */
function refusal(err: unknown, errors: Jose['errors']): AuthResult {
  if (err instanceof errors.JWTExpired) return { ok: false, reason: 'invalid', message: 'the token has expired' };
  if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'aud')
    return { ok: false, reason: 'audience', message: 'the token is not bound to this server’s audience' };
  if (err instanceof errors.JWTClaimValidationFailed)
    return { ok: false, reason: 'invalid', message: `the token's "${err.claim}" claim is not valid (${err.reason})` };
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWSSignatureVerificationFailed)
    return { ok: false, reason: 'invalid', message: 'the token is not signed by the OIDC issuer' };
  // Not a verdict on the token: the issuer's JWKS could not be fetched (network, timeout).
  if (err instanceof errors.JWKSTimeout || !(err instanceof errors.JOSEError))
    return {
      ok: false,
      reason: 'error',
      message: `the OIDC issuer's keys could not be read: ${(err as Error).message}`,
    };
  return { ok: false, reason: 'malformed', message: `the token could not be verified: ${(err as Error).message}` };
}
