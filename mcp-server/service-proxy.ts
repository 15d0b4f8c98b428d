/**
 * Reaching an MCP server that runs in the cluster (an MCPServer's Service) from outside, through
 * the kube-apiserver's service proxy
 * (`/api/v1/namespaces/<ns>/services/http:<name>:<port>/proxy/<path>`, Kubernetes docs "Manually
 * constructing apiserver proxy URLs"), with the MCP SDK's Streamable HTTP client. The apiserver
 * authenticates us with the kubeconfig's credentials (client certificate or token) and forwards
 * to a ready endpoint of the Service, streaming the response (SSE included).
 *
 * @module
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { kubeFetch } from '../lib/kube-http.js';

/** Bound of a proxied request's silence (no bytes on its connection), in ms. */
const REQUEST_TIMEOUT_MS = 30_000;

/** The apiserver service-proxy URL of `path` on Service `name`'s port `port` (a name or number). */
export function serviceProxyUrl(
  kc: KubeConfig,
  namespace: string,
  name: string,
  port: string | number,
  path = '/mcp',
): URL {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('kubeconfig has no current cluster');
  return new URL(
    `${server.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(namespace)}/services/http:${encodeURIComponent(name)}:${encodeURIComponent(String(port))}/proxy${path}`,
  );
}

/**
 * Connects an MCP SDK client (initialize handshake done) to the Streamable HTTP endpoint `/mcp`
 * of Service `name` through the apiserver's service proxy.
 * @throws Error (from the SDK) when the handshake fails, e.g. 503 when the Service has no ready endpoint.
 */
export async function connectThroughServiceProxy(
  kc: KubeConfig,
  namespace: string,
  name: string,
  port: string | number = 'mcp',
): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(serviceProxyUrl(kc, namespace, name, port), {
    fetch: kubeFetch(kc, { idleTimeoutMs: REQUEST_TIMEOUT_MS }),
  });
  const client = new Client({ name: 'kubemcp-service-proxy', version: '0.1.0' });
  await client.connect(transport);
  return client;
}
