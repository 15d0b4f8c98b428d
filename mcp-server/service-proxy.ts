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
import https from 'node:https';
import { Readable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** Bound of one proxied HTTP request's connection + response headers, in ms. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * A `fetch` that sends requests with the kubeconfig's TLS settings and credentials (node:https;
 * the global fetch cannot take a client certificate). Bodies are strings or absent (what the MCP
 * SDK sends); the response body streams.
 */
export function kubeFetch(kc: KubeConfig): typeof fetch {
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const opts: https.RequestOptions = { method: init?.method ?? 'GET', headers: {}, timeout: REQUEST_TIMEOUT_MS };
    await kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = { ...(opts.headers as Record<string, string>) };
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    opts.headers = headers;
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== 'string')
      throw new TypeError('kubeFetch: only string bodies are supported');
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(url, opts, (res) => {
        const h = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const status = res.statusCode ?? 502;
        const stream =
          status === 204 || status === 304 || opts.method === 'HEAD'
            ? null
            : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolve(new Response(stream, { status, statusText: res.statusMessage, headers: h }));
      });
      req.on('timeout', () =>
        req.destroy(new Error(`${opts.method} ${url.pathname}: no response within ${REQUEST_TIMEOUT_MS} ms`)),
      );
      req.on('error', reject);
      init?.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
      if (typeof body === 'string') req.write(body);
      req.end();
    });
  };
}

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
    fetch: kubeFetch(kc),
  });
  const client = new Client({ name: 'kubemcp-service-proxy', version: '0.1.0' });
  await client.connect(transport);
  return client;
}
