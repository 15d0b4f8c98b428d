/**
 * Pieces the benches share (and test/package.test.ts, which drives the installed bin the way
 * `npm run bench:start` does): the bench pods and stopping an MCP server started over stdio.
 */
import type * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

/**
 * Creates `n` pods `bench-0000`... in namespace `ns` (labels `app=bench`, `shard=<i % 10>`; one
 * nginx container requesting 1m CPU and 1Mi), `concurrency` requests at a time. On kwok's node
 * they become Running without running anything.
 * @throws the apiserver's error for the first pod it refuses (e.g. 409 when one exists).
 */
export async function createPods(core: k8s.CoreV1Api, ns: string, n: number, concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: `bench-${String(i).padStart(4, '0')}`, labels: { app: 'bench', shard: String(i % 10) } },
          spec: {
            containers: [{ name: 'c', image: 'nginx:1.27', resources: { requests: { cpu: '1m', memory: '1Mi' } } }],
          },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * Closes `client` (errors ignored) and sends SIGTERM to the stdio server process `transport`
 * started, by its pid, in case closing stdin did not end it. Never throws.
 */
export async function closeStdio(client: Client, transport: StdioClientTransport): Promise<void> {
  await client.close().catch(() => undefined);
  if (transport.pid) {
    try {
      process.kill(transport.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}
