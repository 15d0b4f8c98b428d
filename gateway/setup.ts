/**
 * Builds the gateway's access layer (./access.ts) from its command-line options, the same for
 * `kubemcp bridge` (stdio mode) and `kubemcp gateway` (reverse-proxy mode). In mode `kubernetes`
 * the gateway talks to the apiserver as its pod's ServiceAccount (the in-cluster config; a
 * kubeconfig outside a pod), which needs `system:auth-delegator` (create tokenreviews and
 * subjectaccessreviews; the operator binds it).
 */
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Registry } from 'prom-client';
import { AUTH_MODES, GatewayAccess, GatewayMetrics, type AuthMode } from './access.js';
import { TokenReviewAuthenticator } from './auth/tokenreview.js';
import { OidcAuthenticator } from './auth/oidc.js';
import { SubjectAccessReviewAuthorizer } from './auth/sar.js';
import { kubeFetch } from '../lib/kube-http.js';
import { inClusterCredentials, type ApiCredentials } from '../lib/in-cluster.js';
import { SessionKeys, SessionRouter, SessionSeal, dnsPeers, hostPort, staticPeers } from './sessions.js';
import net from 'node:net';
import { POD_IP_ENV, POD_NAME_ENV } from './wiring.js';

/** The access options shared by both gateway commands. */
export interface AccessCliOptions {
  auth: string;
  /** `<namespace>/<name>` of the MCPServer. */
  mcpserver?: string;
  /** Audiences a token must be bound to (`status.url` first). */
  audience?: string[];
  /** `spec.auth.tools` as JSON (./tools.ts), both modes. */
  toolPolicy?: string;
  /** Mode `oidc` (./auth/oidc.ts). */
  oidcIssuer?: string;
  oidcJwksUri?: string;
  oidcUsernameClaim?: string;
  oidcUsernamePrefix?: string;
  oidcGroupsClaim?: string;
  oidcGroupsPrefix?: string;
  /** Sealed sessions (./sessions.ts): the directory of the session keys (the mounted Secret). */
  sessionKeys?: string;
  /** Sealed sessions: the MCPServer's headless Service, whose A records are its current pods. */
  peers?: string;
}

/**
 * The session router of a gateway listening on `port` (./sessions.ts; `unwrap` true in
 * reverse-proxy mode, false in stdio mode), from `--peers` (a DNS name, the headless Service; or
 * a comma-separated list of IP addresses, a fixed set of pods),
 * `--session-keys` and the pod's {@link POD_IP_ENV} and {@link POD_NAME_ENV}; undefined without
 * `--peers` (sessions stay in their pod). Keys are read from the directory as they come and go:
 * without a `current` key nothing is sealed, and the log says so.
 * @throws Error naming what is missing when `--peers` is given without the pod's IP or name, or without `--mcpserver`.
 */
export function sessionRouterFromOptions(
  o: AccessCliOptions,
  port: number,
  unwrap: boolean,
  log: Logger,
  registry: Registry,
  env: NodeJS.ProcessEnv = process.env,
): SessionRouter | undefined {
  if (!o.peers) return undefined;
  const ip = env[POD_IP_ENV];
  const pod = env[POD_NAME_ENV];
  if (!ip || !pod) throw new Error(`--peers needs the pod's ${POD_IP_ENV} and ${POD_NAME_ENV} (downward API)`);
  const ref = parseServerRef(o.mcpserver);
  const ips = o.peers.split(',').map((x) => x.trim());
  const keys = new SessionKeys(o.sessionKeys, undefined, log);
  const router = new SessionRouter({
    seal: new SessionSeal(keys, `${ref.namespace}/${ref.name}`),
    self: { address: hostPort(ip, port), pod },
    peers: ips.every((x) => net.isIP(x)) ? staticPeers(ips, port) : dnsPeers(o.peers, port),
    unwrap,
    log,
    registry,
  });
  if (!router.enabled)
    log.warn({ dir: o.sessionKeys }, 'no session key: sessions are not sealed and live in the pod that opened them');
  return router;
}

/**
 * A new, empty metrics registry for one gateway process. Built here, where prom-client is a static
 * import: the bundle (build.ts) gives a lazily `import()`ed CommonJS package only a `default`
 * export, so `(await import('prom-client')).Registry` was undefined in the image and the gateway
 * container crashed at start ("Registry is not a constructor").
 */
export function gatewayRegistry(): Registry {
  return new Registry();
}

/** Splits `<namespace>/<name>`. @throws Error naming the option when it is not of that shape. */
export function parseServerRef(ref: string | undefined): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(ref ?? '');
  if (!m) throw new Error(`--mcpserver must be <namespace>/<name> of the MCPServer, got "${ref ?? ''}"`);
  return { namespace: m[1]!, name: m[3]! };
}

/**
 * The gateway's own credentials: in a pod, its ServiceAccount's (lib/in-cluster.ts, without
 * client-node); outside one, the default kubeconfig (KUBECONFIG, ~/.kube/config) through
 * client-node, loaded only then.
 * @throws Error when neither names an apiserver.
 */
export async function gatewayCredentials(): Promise<ApiCredentials> {
  const pod = inClusterCredentials();
  if (pod) return pod;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return credentialsOf(kc);
}

/**
 * A client-node KubeConfig as {@link ApiCredentials} (its current cluster's server, without a
 * trailing slash); credentials pass through.
 * @throws Error when the kubeconfig names no apiserver.
 */
function credentialsOf(kc: k8s.KubeConfig | ApiCredentials): ApiCredentials {
  if ('server' in kc) return kc;
  const server = kc.getCurrentCluster()?.server.replace(/\/+$/, '');
  if (!server) throw new Error('no apiserver: neither the in-cluster config nor a kubeconfig names one');
  return { server, applyToHTTPSOptions: (opts) => kc.applyToHTTPSOptions(opts) };
}

/**
 * The access layer for `o`, its audit lines on `audit` and metrics in `registry`.
 * @param kubeConfig the gateway's own credentials ({@link gatewayCredentials}, or a client-node
 *   KubeConfig); required by modes `kubernetes` and `oidc`.
 * @throws Error naming the option when `--auth` is unknown, modes `kubernetes` and `oidc` lack
 *   `--mcpserver` or `--audience`, mode `oidc` lacks `--oidc-issuer` or an OIDC URL is not https.
 */
export function accessFromOptions(
  o: AccessCliOptions,
  audit: Logger,
  registry: Registry,
  kubeConfig?: k8s.KubeConfig | ApiCredentials,
): GatewayAccess {
  if (!(AUTH_MODES as readonly string[]).includes(o.auth))
    throw new Error(`--auth must be one of ${AUTH_MODES.join(', ')}, got "${o.auth}"`);
  const mode = o.auth as AuthMode;
  const ref = mode === 'none' && !o.mcpserver ? { namespace: '-', name: '-' } : parseServerRef(o.mcpserver);
  const metrics = new GatewayMetrics(registry);
  if (mode === 'none') return new GatewayAccess({ mode, ...ref, audit, metrics });
  const audiences = (o.audience ?? []).filter(Boolean);
  if (!audiences.length)
    throw new Error(`--auth ${mode} needs at least one --audience (the MCPServer status.url first)`);
  if (mode === 'oidc' && !o.oidcIssuer) throw new Error('--auth oidc needs --oidc-issuer');
  if (!kubeConfig) throw new Error(`--auth ${mode} needs the gateway's own credentials (gatewayCredentials)`);
  const kc = credentialsOf(kubeConfig);
  const server = kc.server.replace(/\/+$/, '');
  const fetch = kubeFetch(kc);
  const reviews = new TokenReviewAuthenticator({ server, fetch, audiences });
  const authorizer = new SubjectAccessReviewAuthorizer({ server, fetch, ...ref });
  // Reviews sent to the apiserver (the caches' effect: at most one per token or identity per period).
  new Counter({
    name: 'kubemcp_gateway_reviews_total',
    help: 'TokenReviews and SubjectAccessReviews the gateway sent to the apiserver (cache misses)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ kind: 'tokenreview' }, reviews.reviews);
      this.inc({ kind: 'subjectaccessreview' }, authorizer.reviews);
    },
  });
  return new GatewayAccess({
    mode,
    ...ref,
    audit,
    metrics,
    authenticator:
      mode === 'oidc'
        ? new OidcAuthenticator({
            issuer: o.oidcIssuer!,
            jwksUri: o.oidcJwksUri,
            audiences,
            usernameClaim: o.oidcUsernameClaim,
            usernamePrefix: o.oidcUsernamePrefix,
            groupsClaim: o.oidcGroupsClaim,
            groupsPrefix: o.oidcGroupsPrefix,
            fallback: reviews,
          })
        : reviews,
    resource: audiences[0],
    oidcIssuer: mode === 'oidc' ? o.oidcIssuer : undefined,
    authorizer,
  });
}
