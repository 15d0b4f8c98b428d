/**
 * Reaching an MCPServer that runs in the cluster from outside it, as a user does with kubectl:
 * `kubectl port-forward svc/<name> :<port>` (Kubernetes docs "Use Port Forwarding to Access
 * Applications in a Cluster": kubectl picks one ready pod of the Service and forwards to the
 * container port its targetPort names, the MCPServer's gateway), then the MCP SDK's Streamable
 * HTTP client on the forwarded loopback port with `Authorization: Bearer <token>`.
 *
 * Not the apiserver's service proxy: it drops the client's `Authorization` header after
 * authenticating it (kubernetes/kubernetes#38775), so the gateway (issue 17) would answer 401.
 * A port-forward keeps one TCP stream to one pod, so a session stays on its pod too.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** Options of {@link portForward}. */
export interface PortForwardOptions {
  /** The kubectl binary. */
  kubectl: string;
  /** The kubeconfig file kubectl uses. */
  kubeconfig: string;
  namespace: string;
  /** `svc/<name>`, `pod/<name>` or `deploy/<name>`. */
  target: string;
  /** The remote port: the Service's port (number or name) for `svc/`. */
  port: number | string;
  /** Bound of the wait for kubectl to listen, in ms (default 30 000). */
  timeoutMs?: number;
}

/** A running `kubectl port-forward`. */
export interface PortForward {
  /** `http://127.0.0.1:<local port>`. */
  origin: string;
  localPort: number;
  child: ChildProcess;
  /** Stops kubectl (SIGTERM by PID). */
  stop: () => void;
}

/**
 * Starts `kubectl port-forward --address 127.0.0.1 <target> :<port>` (a free local port) and
 * resolves once kubectl prints `Forwarding from 127.0.0.1:<local port>`.
 * @throws Error with kubectl's stderr when it exits first or does not listen within `timeoutMs`
 *   (the child is stopped then).
 */
export async function portForward(o: PortForwardOptions): Promise<PortForward> {
  const child = spawn(
    o.kubectl,
    ['--kubeconfig', o.kubeconfig, '-n', o.namespace, 'port-forward', '--address', '127.0.0.1', o.target, `:${o.port}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGTERM');
  };
  let out = '';
  let err = '';
  const localPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`kubectl port-forward ${o.target} did not listen within ${o.timeoutMs ?? 30_000} ms: ${err}`));
    }, o.timeoutMs ?? 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4096)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward ${o.target} exited (${code}): ${err.trim()}`));
    });
  });
  return { origin: `http://127.0.0.1:${localPort}`, localPort, child, stop };
}

/** An MCP SDK client connected through a {@link portForward}; `close` closes both. */
export interface ForwardedClient {
  client: Client;
  forward: PortForward;
  close: () => Promise<void>;
}

/**
 * Connects an MCP SDK client (initialize handshake done) to `path` of Service `name`'s port
 * `port` through a port-forward, sending `token` as a bearer token when given.
 * @throws Error from kubectl (see {@link portForward}) or from the SDK (e.g. `Error POSTing to
 *   endpoint (HTTP 401)` without a valid token).
 */
export async function connectThroughPortForward(
  o: Omit<PortForwardOptions, 'target'> & { name: string; path?: string; token?: string },
): Promise<ForwardedClient> {
  const forward = await portForward({ ...o, target: `svc/${o.name}` });
  try {
    const transport = new StreamableHTTPClientTransport(new URL(o.path ?? '/mcp', forward.origin), {
      requestInit: o.token ? { headers: { authorization: `Bearer ${o.token}` } } : undefined,
    });
    const client = new Client({ name: 'kubemcp-port-forward', version: '0.1.0' });
    await client.connect(transport);
    return {
      client,
      forward,
      close: async () => {
        await client.close().catch(() => undefined);
        forward.stop();
      },
    };
  } catch (err) {
    forward.stop();
    throw err;
  }
}
