/**
 * `kubemcp serve -t http` for MCP 2026-07-28 clients (issue 18; mcp-server/modern.ts): the SDK
 * v2's modern leg beside the sessionful 2025 one, against the local cluster's real apiserver.
 * A pinned SDK v2 client (no fallback to `initialize`) and raw requests on 127.0.0.1 check:
 * discovery and the deterministic, cacheable lists (the same tools, in the same order, a 2025
 * client lists); tool calls with validation errors as error results and unknown tools as -32602;
 * the seed's resources (SEP-2164 not-found) and prompts with completion; a destructive call's
 * confirmation as an InputRequiredResult whose state binds it to its arguments; resource
 * subscriptions over `subscriptions/listen` driven by a real watch; the policy (read-only) and the
 * Host check applying to modern requests; `--legacy-only` leaving 2025-era answers only; and a
 * stateless server answering modern requests; over stdio, resource subscriptions on a real watch,
 * their refusals and their bound. Every namespace made here is deleted; the stdio server is stopped by pid.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createNamespace, deleteTestNamespace, kubeConfig, waitFor } from '../kube.js';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { raw, ROOT, startHttpServer, TSX, type HttpServer } from './helpers.js';

const PINNED = { versionNegotiation: { mode: { pin: '2026-07-28' as const } } };
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
};

/** The fields of a 2026-07-28 result these tests read. */
interface ModernResult {
  resultType?: string;
  inputRequests: Record<string, { method: string; params: { message: string } }>;
  requestState?: string;
  structuredContent?: { status?: string };
  isError?: boolean;
  ttlMs?: number;
  cacheScope?: string;
}

/** One raw 2026-07-28 request (the headers the spec requires), its JSON-RPC answer parsed. */
async function modern(
  url: string,
  method: string,
  params: Record<string, unknown>,
  name?: string,
): Promise<{ status: number; body: { result?: ModernResult; error?: { code: number; message: string } } }> {
  const r = await raw(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2026-07-28',
      'Mcp-Method': method,
      ...(name ? { 'Mcp-Name': name } : {}),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: ENVELOPE } }),
  });
  const text = r.body.startsWith('{') ? r.body : (/^data: (.*)$/m.exec(r.body)?.[1] ?? '{}');
  return { status: r.status, body: JSON.parse(text) };
}

const pinned = async (url: string, capabilities: Record<string, unknown> = {}) => {
  const c = new ClientV2({ name: 'modern-test', version: '1' }, { ...PINNED, capabilities });
  await c.connect(new TransportV2(new URL(url)));
  return c;
};

/**
 * Listens for `k8s://namespace/<ns>/pods` on `c`, creates pod `ping` in `ns` and waits (30 s) until
 * `notifications/resources/updated` names the URI. `whileHeld` runs while the listen is open.
 * @returns the open listen (the caller closes it) and its URI.
 */
async function podChangeNotified(c: ClientV2, core: k8s.CoreV1Api, ns: string, whileHeld?: () => void) {
  const uri = `k8s://namespace/${ns}/pods`;
  const updated: string[] = [];
  c.setNotificationHandler('notifications/resources/updated', (n) => {
    updated.push(n.params.uri);
  });
  const sub = await c.listen({ resourceSubscriptions: [uri] });
  expect(sub.honoredFilter.resourceSubscriptions).toEqual([uri]);
  whileHeld?.();
  await core.createNamespacedPod({
    namespace: ns,
    body: { metadata: { name: 'ping' }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } },
  });
  await waitFor(`a resources/updated notification for ${uri}`, async () => updated.includes(uri), 30_000, 200);
  return { sub, uri };
}

describe('kubemcp serve -t http, MCP 2026-07-28 clients', () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let s: HttpServer;
  let ns: string;
  beforeAll(async () => {
    ns = await createNamespace(kc, 'modern');
    s = await startHttpServer();
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    if (ns) await deleteTestNamespace(kc, ns);
  });

  it('discovers without initialize or a session; lists the tools a 2025 client lists, in the same order, with cache hints', async () => {
    const c = await pinned(s.url);
    expect(c.getProtocolEra()).toBe('modern');
    expect(c.getServerVersion()).toMatchObject({ name: 'kubemcp' });
    expect(c.getDiscoverResult()!.supportedVersions).toContain('2026-07-28');
    const tools = await c.listTools();
    expect(s.running.sessions()).toBe(0); // no session for the modern client
    const v1 = new Client({ name: 'v1', version: '1' });
    await v1.connect(new StreamableHTTPClientTransport(new URL(s.url)));
    const legacy = await v1.listTools();
    await v1.close();
    expect(tools.tools.map((t) => t.name)).toEqual(legacy.tools.map((t) => t.name));
    expect(tools.tools.find((t) => t.name === 'get-resource')?.inputSchema).toEqual(
      legacy.tools.find((t) => t.name === 'get-resource')?.inputSchema,
    );
    // Same order on every answer.
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(tools.tools.map((t) => t.name));
    const listed = await modern(s.url, 'tools/list', {});
    expect(listed.body.result).toMatchObject({ ttlMs: 60_000, cacheScope: 'private' });
    await c.close();
  });

  it('calls tools; bad arguments are an error result naming the argument; an unknown tool is -32602', async () => {
    const c = await pinned(s.url);
    const r = await c.callTool({ name: 'list-resources', arguments: { kind: 'namespaces' } });
    expect(r.isError).toBeFalsy();
    expect(JSON.stringify(r.content)).toContain(ns);
    const bad = await c.callTool({ name: 'list-resources', arguments: { kind: 42 } });
    expect(bad.isError).toBe(true);
    expect(JSON.stringify(bad.content)).toMatch(/Invalid arguments for tool list-resources: kind: /);
    const unknown = await modern(s.url, 'tools/call', { name: 'no-such-tool', arguments: {} }, 'no-such-tool');
    expect(unknown.body.error).toMatchObject({ code: -32602, message: 'Tool no-such-tool not found' });
    await c.close();
  });

  it("serves seed 001's resources and prompts: read, SEP-2164 not-found, templates, prompt arguments and completion", async () => {
    const c = await pinned(s.url);
    const resources = (await c.listResources()).resources;
    expect(resources[0]).toMatchObject({ uri: 'k8s://cluster/nodes', name: 'cluster-nodes' });
    expect(resources.map((r) => r.uri)).toContain(`k8s://namespace/${ns}/pods`);
    expect((await c.listResourceTemplates()).resourceTemplates).toEqual([
      expect.objectContaining({ uriTemplate: 'k8s://namespace/{namespace}/pods', name: 'namespace-pods' }),
    ]);
    const nodes = await c.readResource({ uri: 'k8s://cluster/nodes' });
    expect(JSON.parse((nodes.contents[0] as { text: string }).text).count).toBeGreaterThan(0);
    const pods = await c.readResource({ uri: `k8s://namespace/${ns}/pods` });
    expect(JSON.parse((pods.contents[0] as { text: string }).text)).toMatchObject({ namespace: ns, count: 0 });
    const missing = await modern(s.url, 'resources/read', { uri: 'k8s://nope' }, 'k8s://nope');
    expect(missing.body.error).toMatchObject({ code: -32602, data: { uri: 'k8s://nope' } });

    const prompts = (await c.listPrompts()).prompts;
    expect(prompts.map((p) => p.name)).toEqual(['troubleshoot-pod', 'optimize-resources']);
    expect(prompts[0]!.arguments).toEqual([
      { name: 'podName', description: 'Name of the pod to troubleshoot', required: true },
      { name: 'namespace', description: 'Namespace of the pod', required: false },
    ]);
    const got = await c.getPrompt({ name: 'optimize-resources', arguments: { namespace: ns } });
    expect((got.messages[0]!.content as { text: string }).text).toContain(`namespace "${ns}"`);
    const noPod = await modern(s.url, 'prompts/get', { name: 'troubleshoot-pod', arguments: {} }, 'troubleshoot-pod');
    expect(noPod.body.error).toMatchObject({ code: -32602, message: expect.stringMatching(/podName is required/) });
    const done = await c.complete({
      ref: { type: 'ref/prompt', name: 'troubleshoot-pod' },
      argument: { name: 'namespace', value: ns.slice(0, 6) },
    });
    expect(done.completion.values).toContain(ns);
    await c.close();
  });

  it('asks before a delete with an InputRequiredResult bound to the call: another call’s state is refused, decline keeps, accept deletes', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'doomed' } } });
    const exists = () =>
      core.readNamespacedConfigMap({ name: 'doomed', namespace: ns }).then(
        () => true,
        () => false,
      );
    const args = { kind: 'configmap', name: 'doomed', namespace: ns };
    const call = (extra: Record<string, unknown> = {}, a: Record<string, unknown> = args) =>
      modern(s.url, 'tools/call', { name: 'delete-resource', arguments: a, ...extra }, 'delete-resource');
    const asked = await call();
    expect(asked.body.result).toMatchObject({ resultType: 'input_required' });
    const req = asked.body.result!.inputRequests.confirm!;
    expect(req.method).toBe('elicitation/create');
    expect(req.params.message).toMatch(new RegExp(`Delete configmap/doomed from namespace ${ns}\\?`));
    const state = asked.body.result!.requestState as string;
    expect(await exists()).toBe(true);
    // The state of this call presented with other arguments: refused, nothing deleted.
    const other = await call(
      { inputResponses: { confirm: { action: 'accept', content: { confirm: true } } }, requestState: state },
      { ...args, name: 'other' },
    );
    expect(other.body.error).toMatchObject({ code: -32602, message: expect.stringMatching(/another call/) });
    const declined = await call({ inputResponses: { confirm: { action: 'decline' } }, requestState: state });
    expect(declined.body.result).toMatchObject({ structuredContent: { status: 'declined' } });
    expect(declined.body.result?.isError).toBeUndefined();
    expect(await exists()).toBe(true);
    // An answer without the state it was asked with is no answer: asked again.
    const unasked = await call({ inputResponses: { confirm: { action: 'accept', content: { confirm: true } } } });
    expect(unasked.body.result).toMatchObject({ resultType: 'input_required' });
    expect(await exists()).toBe(true);
    const accepted = await call({
      inputResponses: { confirm: { action: 'accept', content: { confirm: true } } },
      requestState: state,
    });
    expect(accepted.body.result?.structuredContent?.status).toMatch(/^delet/);
    await waitFor('the ConfigMap gone', async () => !(await exists()), 30_000);
  });

  it('a pinned SDK v2 client answers the confirmation through its elicitation handler', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'doomed2' } } });
    const c = await pinned(s.url, { elicitation: { form: {} } });
    const asked: string[] = [];
    c.setRequestHandler('elicitation/create', async (r) => {
      asked.push(String((r.params as { message?: unknown }).message));
      return { action: 'accept', content: { confirm: true } };
    });
    const r = await c.callTool({
      name: 'delete-resource',
      arguments: { kind: 'configmap', name: 'doomed2', namespace: ns },
    });
    expect(r.isError).toBeFalsy();
    expect(asked).toEqual([expect.stringMatching(/^Delete configmap\/doomed2/)]);
    await c.close();
  });

  it('subscriptions/listen with a pods resource: a pod created in the namespace is notified; an unknown URI is refused', async () => {
    const c = await pinned(s.url);
    const { sub } = await podChangeNotified(c, core, ns, () => expect(s.running.watches()).toBe(1));
    await sub.close();
    await waitFor('the watch released', async () => s.running.watches() === 0, 10_000, 100);
    const bad = await modern(s.url, 'subscriptions/listen', {
      notifications: { resourceSubscriptions: ['k8s://nope'] },
    });
    expect(bad.body.error).toMatchObject({
      code: -32602,
      message: expect.stringMatching(/cannot subscribe to k8s:\/\/nope/),
    });
    await c.close();
  }, 60_000);

  it('the Host check (DNS rebinding) applies to modern requests', async () => {
    const r = await raw(s.url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        Host: `evil.example.com:${s.running.port}`,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: ENVELOPE } }),
    });
    expect(r.status).toBe(403);
  });
});

describe('kubemcp serve -t http: policy, --legacy-only and stateless for 2026-07-28 clients', () => {
  const started: HttpServer[] = [];
  afterAll(async () => {
    for (const s of started) await s.close();
  });

  it('read-only lists and calls no mutating tool for a modern client either', async () => {
    const s = await startHttpServer({ readOnly: true });
    started.push(s);
    const c = await pinned(s.url);
    const names = (await c.listTools()).tools.map((t) => t.name);
    expect(names).toContain('get-resource');
    expect(names).not.toContain('delete-resource');
    const r = await modern(s.url, 'tools/call', { name: 'delete-resource', arguments: {} }, 'delete-resource');
    expect(r.body.error).toMatchObject({ code: -32602, message: 'Tool delete-resource not found' });
    await c.close();
  });

  it('--legacy-only answers a 2026-07-28 request as a 2025 server does (400: initialize first); a 2025 client is served', async () => {
    const s = await startHttpServer({}, { legacyOnly: true });
    started.push(s);
    const r = await modern(s.url, 'server/discover', {});
    expect(r.status).toBe(400);
    expect(r.body.error?.message).toMatch(/initialize/);
    const v1 = new Client({ name: 'v1', version: '1' });
    await v1.connect(new StreamableHTTPClientTransport(new URL(s.url)));
    expect((await v1.listTools()).tools.length).toBeGreaterThan(10);
    await v1.close();
  });

  it('a stateless server answers modern requests; resource subscriptions are refused there (no hub)', async () => {
    const s = await startHttpServer({}, { stateless: true });
    started.push(s);
    const c = await pinned(s.url);
    const r = await c.callTool({ name: 'list-namespaces', arguments: {} });
    expect(r.isError).toBeFalsy();
    const sub = await modern(s.url, 'subscriptions/listen', {
      notifications: { resourceSubscriptions: ['k8s://cluster/nodes'] },
    });
    expect(sub.body.error).toMatchObject({ code: -32602, message: expect.stringMatching(/stateless/) });
    await c.close();
  });
});

describe('kubemcp serve over stdio, MCP 2026-07-28 clients: resource subscriptions', () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let ns: string;
  let c: ClientV2 | undefined;
  let pid: number | undefined;
  beforeAll(async () => {
    ns = await createNamespace(kc, 'modern-stdio');
  }, 60_000);
  afterAll(async () => {
    await c?.close().catch(() => undefined);
    if (pid)
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    if (ns) await deleteTestNamespace(kc, ns);
  });

  it('subscriptions/listen holds a real watch: a pod created is notified; an unknown URI and too many are refused', async () => {
    const transport = new StdioClientTransport({
      command: TSX,
      args: ['cli.ts', 'serve', '--max-subscriptions', '2'],
      cwd: ROOT,
      env: { ...(process.env as Record<string, string>), LOG_LEVEL: 'info', MCP_AUDIT_LOG: 'off' },
      stderr: 'pipe',
    });
    let err = '';
    transport.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    c = new ClientV2({ name: 'modern-stdio-test', version: '1' }, PINNED);
    await c.connect(transport);
    pid = transport.pid ?? undefined;
    expect(c.getServerCapabilities()?.resources?.subscribe).toBe(true);
    const { sub, uri } = await podChangeNotified(c, core, ns);
    // Not a seed resource: refused naming it, nothing held.
    await expect(c.listen({ resourceSubscriptions: ['k8s://nope'] })).rejects.toThrow(
      /cannot subscribe to k8s:\/\/nope/,
    );
    // The connection holds 1 of at most 2 (--max-subscriptions): 2 more are refused.
    await expect(
      c.listen({ resourceSubscriptions: ['k8s://cluster/nodes', `k8s://namespace/${ns}-other/pods`] }),
    ).rejects.toThrow(/at most 2/);
    // Cancelled, the first listen's watch is released and a new one fits (2 of 2).
    await sub.close();
    const two = await c.listen({ resourceSubscriptions: ['k8s://cluster/nodes', uri] });
    expect(two.honoredFilter.resourceSubscriptions).toEqual(['k8s://cluster/nodes', uri]);
    await two.close();
    expect(err).toMatch(/MCP 2026-07-28/); // served by the SDK v2's stdio entry
  }, 120_000);
});
