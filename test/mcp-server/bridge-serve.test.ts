/**
 * The kubemcp image's own stdio mode behind the bridge: `kubemcp serve --transport stdio` as the
 * command, wired through the launcher and FIFOs as in a pod, with the bridge as the real
 * `kubemcp bridge` CLI child process (tsx cli.ts bridge), against the local control plane.
 * Both processes are stopped by pid.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KUBEMCP_SERVE_STDIO, ROOT, startBridged, until, type Bridged } from './bridge-harness.js';

let b: Bridged;

beforeAll(async () => {
  b = await startBridged({
    argv: [...KUBEMCP_SERVE_STDIO, '--read-only'],
    env: { KUBECONFIG: process.env.KUBECONFIG!, LOG_LEVEL: 'warn' },
    cliBridge: true,
  });
  await until(
    async () => (await b.ready()).status === 200,
    'the bridge in front of kubemcp serve to be ready',
    90_000,
    200,
  );
});
afterAll(async () => {
  await b?.close();
});

describe('kubemcp serve --transport stdio through kubemcp bridge', () => {
  it("answers initialize with kubemcp serve's server info and lists its read-only tools", async () => {
    const c = await b.connect();
    expect(c.getServerVersion()?.name).toBe('kubemcp');
    const tools = (await c.listTools()).tools.map((t) => t.name);
    const snapshot = JSON.parse(readFileSync(path.join(ROOT, 'test/mcp-server/tools-list.snapshot.json'), 'utf8')) as {
      tools: Array<{ name: string; annotations?: { readOnlyHint?: boolean } }>;
    };
    expect(tools).toEqual(snapshot.tools.filter((t) => t.annotations?.readOnlyHint).map((t) => t.name));
  });

  it('calls a tool and reads a resource against the cluster, through the FIFOs', async () => {
    const c = await b.connect();
    const ns = await c.callTool({ name: 'list-namespaces', arguments: {} });
    expect(ns.isError).toBeFalsy();
    expect(JSON.stringify(ns.structuredContent ?? ns.content)).toContain('kube-system');
    const nodes = await c.readResource({ uri: 'k8s://cluster/nodes' });
    expect((nodes.contents[0] as { text: string }).text).toContain('kwok-node-0');
  });

  it('the bridge process logs JSON lines and exits on SIGTERM', async () => {
    expect(b.bridgeLog()).toMatch(/"msg":"stdio process initialized"/);
    const child = b.bridgeProcess!;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    process.kill(child.pid!, 'SIGTERM');
    expect(await exited).toBe(0);
  });
});
