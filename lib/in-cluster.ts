/**
 * The in-cluster credentials of a pod's ServiceAccount, without @kubernetes/client-node (whose
 * full load costs a process about 70 MiB; the gateway runs in every MCPServer pod and needs only
 * this). Same sources as client-go's rest.InClusterConfig and client-node's `loadFromCluster`
 * (https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/#directly-accessing-the-rest-api):
 * the apiserver at `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, its CA at
 * `<dir>/ca.crt`, the bearer token at `<dir>/token`, re-read at most every minute, as client-go
 * does, because the kubelet rotates projected tokens.
 */
import { readFileSync } from 'node:fs';
import type * as https from 'node:https';
import type { HttpsCredentials } from './kube-http.js';

/** Where a pod's ServiceAccount token, CA and namespace are mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How long a read token is used before the file is read again, in ms. */
const TOKEN_REREAD_MS = 60_000;

/** Credentials of the apiserver: its URL and what {@link HttpsCredentials} applies. */
export interface ApiCredentials extends HttpsCredentials {
  /** `https://host:port`, without a trailing slash. */
  server: string;
}

/**
 * The pod's in-cluster credentials, or undefined outside a pod (no KUBERNETES_SERVICE_HOST).
 * `env.KUBEMCP_SERVICEACCOUNT_DIR` replaces {@link SERVICE_ACCOUNT_DIR} (to run the in-cluster path
 * outside a pod: the gateway bench).
 * @throws Error naming the file when the CA or the token cannot be read.
 */
export function inClusterCredentials(env: NodeJS.ProcessEnv = process.env): ApiCredentials | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return undefined;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  const dir = env.KUBEMCP_SERVICEACCOUNT_DIR || SERVICE_ACCOUNT_DIR;
  const read = (name: string) => {
    try {
      return readFileSync(`${dir}/${name}`, 'utf8');
    } catch (err) {
      throw new Error(`in-cluster credentials: cannot read ${dir}/${name}: ${(err as Error).message}`);
    }
  };
  const ca = read('ca.crt');
  let token = read('token').trim();
  let readAt = Date.now();
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
      if (Date.now() - readAt > TOKEN_REREAD_MS) {
        try {
          token = read('token').trim();
          readAt = Date.now();
        } catch {
          /* keep the last token; the apiserver says when it is no longer valid */
        }
      }
      opts.ca = ca;
      opts.headers = { ...(opts.headers as Record<string, string> | undefined), Authorization: `Bearer ${token}` };
      return Promise.resolve();
    },
  };
}
