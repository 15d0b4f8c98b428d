/**
 * `kubemcp bridge` against a real stdio MCP server nobody here wrote: npm's
 * @modelcontextprotocol/server-everything, run through the static busybox launcher on real FIFOs
 * made by bridge-init, exactly as a bridged pod wires them (test/mcp-server/bridge-harness.ts).
 * Clients are the MCP SDK's Streamable HTTP client on 127.0.0.1. No cluster needed.
 *
 * Covers: ready only after initialize; tools, echo, a resource, progress; one initialize shared
 * by sessions; 2 sessions x 50 interleaved concurrent calls (the SDK numbers requests from 0 in
 * every session, so their ids collide unless the bridge rewrites them); progress and resource
 * updates to the right session; cancellation; the process killed and restarted (in-flight calls
 * fail, new calls succeed, list_changed to every session); a malformed line skipped; oversize
 * messages refused with JSON-RPC errors; a process that never answers initialize.
 */
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import {
  McpError,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BRIDGE_ERROR } from '../../gateway/bridge.js';
import { EVERYTHING, startBridged, until, type Bridged } from './bridge-harness.js';
import { ToolPolicy } from '../../gateway/tools.js';
import { text } from './helpers.js';

async function metric(b: Bridged, name: string): Promise<number> {
  const body = await (await fetch(`${b.base}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  return body
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('bridge in front of server-everything', () => {
  let b: Bridged;
  let a: Client;
  let c: Client;

  beforeAll(async () => {
    // readyWaitMs: a restarted node process can take many seconds to answer on a busy machine.
    b = await startBridged({
      argv: EVERYTHING,
      bridge: { maxMessageBytes: 64 * 1024, readyWaitMs: 90_000 },
      env: { BIG_VALUE: 'x'.repeat(100_000) },
    });
    await until(async () => (await b.ready()).status === 200, 'the bridge to be ready', 60_000);
    a = await b.connect('session-a');
    c = await b.connect('session-c');
  });
  afterAll(async () => {
    await b?.close();
  });

  it('is ready once the process answered initialize, and answers every session from that one initialize', async () => {
    const r = await b.ready();
    expect(r.body).toMatchObject({ status: 'ready', serverInfo: { name: 'mcp-servers/everything' } });
    expect(a.getServerVersion()).toEqual(c.getServerVersion());
    expect(a.getServerVersion()?.name).toBe('mcp-servers/everything');
    expect(a.getServerCapabilities()?.resources?.subscribe).toBe(true);
    // Two sessions, one process started, one initialize.
    expect(b.bridge!.status()).toMatchObject({ starts: 1, sessions: 2 });
    const health = await (await fetch(`${b.base}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', state: 'ready', sessions: 2 });
  });

  it('lists tools, calls echo, reads a resource', async () => {
    const tools = (await a.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['echo', 'get-sum', 'trigger-long-running-operation', 'get-env']));
    // The bridge declares no client capabilities: no sampling/elicitation tools are offered.
    expect(tools).not.toContain('trigger-sampling-request');
    expect(text(await a.callTool({ name: 'echo', arguments: { message: 'hello bridge' } }))).toBe('Echo: hello bridge');
    const sum = await c.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } });
    expect(text(sum)).toContain('42');
    const resources = (await a.listResources()).resources;
    expect(resources.length).toBeGreaterThan(0);
    const read = await c.readResource({ uri: resources[0]!.uri });
    expect(read.contents[0]!.uri).toBe(resources[0]!.uri);
    expect(String((read.contents[0] as { text?: string }).text ?? '')).toContain('Everything');
    const templates = (await a.listResourceTemplates()).resourceTemplates;
    expect(templates.length).toBeGreaterThan(0);
    expect((await a.listPrompts()).prompts.length).toBeGreaterThan(0);
  });

  it('2 sessions x 50 interleaved concurrent calls: every answer reaches the session that asked', async () => {
    const calls: Array<Promise<[string, string]>> = [];
    for (let i = 0; i < 50; i++) {
      for (const [name, client] of [
        ['a', a],
        ['c', c],
      ] as const) {
        const msg = `${name}-${i}`;
        calls.push(client.callTool({ name: 'echo', arguments: { message: msg } }).then((r) => [msg, text(r)]));
      }
    }
    const answers = await Promise.all(calls);
    expect(answers).toHaveLength(100);
    for (const [msg, got] of answers) expect(got).toBe(`Echo: ${msg}`);
    expect(b.bridge!.status().inflight).toBe(0);
  });

  it('progress notifications reach only the session of the request, with its own token', async () => {
    const pa: Array<{ progress: number; total?: number }> = [];
    const pc: Array<{ progress: number; total?: number }> = [];
    const [ra, rc] = await Promise.all([
      a.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, {
        onprogress: (p) => pa.push(p),
      }),
      c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } }, undefined, {
        onprogress: (p) => pc.push(p),
      }),
    ]);
    expect(text(ra)).toContain('Steps: 4');
    expect(text(rc)).toContain('Steps: 2');
    expect(pa.map((p) => [p.progress, p.total])).toEqual([
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ]);
    expect(pc.map((p) => [p.progress, p.total])).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it('resource updates go to the sessions subscribed to the URI', async () => {
    const resources = (await a.listResources()).resources.map((r) => r.uri);
    const [ua, uc] = [resources[0]!, resources[1]!];
    const seenA: string[] = [];
    const seenC: string[] = [];
    a.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => void seenA.push(n.params.uri));
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => void seenC.push(n.params.uri));
    await a.subscribeResource({ uri: ua });
    await c.subscribeResource({ uri: uc });
    const started = await a.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    try {
      expect(text(started)).toContain('Started');
      await until(() => seenA.length > 0 && seenC.length > 0, 'resource updates in both sessions', 20_000);
      expect(new Set(seenA)).toEqual(new Set([ua]));
      expect(new Set(seenC)).toEqual(new Set([uc]));
    } finally {
      await a.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
      await a.unsubscribeResource({ uri: ua });
      await c.unsubscribeResource({ uri: uc });
    }
  });

  it('a cancelled call is cancelled in the process, and the session goes on', async () => {
    const ctl = new AbortController();
    let progressed = false;
    const call = a.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 20 } },
      undefined,
      {
        signal: ctl.signal,
        onprogress: () => {
          progressed = true;
          ctl.abort('test cancels');
        },
      },
    );
    await expect(call).rejects.toThrow();
    expect(progressed).toBe(true);
    await until(() => b.bridge!.status().inflight === 0, 'the cancelled request to be forgotten', 10_000);
    expect(text(await a.callTool({ name: 'echo', arguments: { message: 'after cancel' } }))).toBe('Echo: after cancel');
  });

  it("a pinned 2026-07-28 client (SDK v2): server/discover from the process's initialize, stateless calls with progress and cancellation carried onto the bridge's own session (issue 18)", async () => {
    const m = new ClientV2({ name: 'modern', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await m.connect(new TransportV2(new URL(b.url)));
    try {
      expect(m.getProtocolEra()).toBe('modern');
      expect(m.getServerVersion()).toEqual(a.getServerVersion()); // the process's serverInfo, through the bridge
      expect((await m.listTools()).tools.map((t) => t.name)).toEqual((await a.listTools()).tools.map((t) => t.name));
      const echoed = await m.callTool({ name: 'echo', arguments: { message: 'modern' } });
      expect(JSON.stringify(echoed.content)).toContain('Echo: modern');
      const progress: Array<[number, number | undefined]> = [];
      const long = await m.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, {
        onprogress: (p: { progress: number; total?: number }) => void progress.push([p.progress, p.total]),
      } as never);
      expect(JSON.stringify(long.content)).toContain('Steps: 3');
      expect(progress).toEqual([
        [1, 3],
        [2, 3],
        [3, 3],
      ]);
      // Cancellation: aborting the modern request cancels the process's call; the bridge forgets it.
      const ctl = new AbortController();
      const cancelled = m.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 20 } }, {
        signal: ctl.signal,
        onprogress: () => ctl.abort('test cancels'),
      } as never);
      await expect(cancelled).rejects.toThrow();
      await until(() => b.bridge!.status().inflight === 0, 'the cancelled request to be forgotten', 10_000);
      // An unknown tool: the process's own answer, carried back.
      const unknown = await m.callTool({ name: 'no-such-tool', arguments: {} }).then(
        (r) => JSON.stringify(r),
        (e: Error) => e.message,
      );
      expect(unknown).toMatch(/no-such-tool/);
    } finally {
      await m.close();
    }
    // The 2025 sessions are untouched.
    expect(text(await a.callTool({ name: 'echo', arguments: { message: 'legacy' } }))).toBe('Echo: legacy');
  });

  it('a malformed line from the process is logged and skipped', async () => {
    const before = await metric(b, 'kubemcp_bridge_malformed_lines_total');
    // A second writer on the process's stdout FIFO, as a server printing a banner would.
    const fd = openSync(b.paths.stdout, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      writeSync(fd, 'Starting server... (not JSON)\n{"hello":"not JSON-RPC"}\n');
    } finally {
      closeSync(fd);
    }
    await until(
      async () => (await metric(b, 'kubemcp_bridge_malformed_lines_total')) === before + 2,
      'two malformed lines counted',
      10_000,
    );
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'still here' } }))).toBe('Echo: still here');
    expect((await b.ready()).status).toBe(200);
  });

  it('a response over the size limit becomes a JSON-RPC error for its request; an oversize request gets 413 with a JSON-RPC error', async () => {
    // get-env returns the environment, which carries a 100 kB value: over the 64 KiB limit.
    const err = await a.callTool({ name: 'get-env', arguments: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(BRIDGE_ERROR.messageTooLarge);
    expect((err as McpError).message).toMatch(
      /response to tools\/call is \d+ bytes, over the bridge's limit of 65536 bytes/,
    );
    expect(text(await a.callTool({ name: 'echo', arguments: { message: 'small' } }))).toBe('Echo: small');

    const sid = (a.transport as unknown as { sessionId?: string }).sessionId!;
    const res = await fetch(b.url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'Mcp-Session-Id': sid,
        'Mcp-Protocol-Version': '2025-11-25',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 99,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'y'.repeat(70_000) } },
      }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({
      jsonrpc: '2.0',
      error: { code: BRIDGE_ERROR.messageTooLarge, message: expect.stringContaining('65536 bytes') },
    });
    expect(await metric(b, 'kubemcp_bridge_oversize_messages_total')).toBeGreaterThanOrEqual(1);
  });

  it('answers a plain request as one JSON body, and a request asking for progress as an SSE stream', async () => {
    const sid = (c.transport as unknown as { sessionId?: string }).sessionId!;
    const post = (id: number, params: object) =>
      fetch(b.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          'Mcp-Session-Id': sid,
          'Mcp-Protocol-Version': '2025-11-25',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params }),
        signal: AbortSignal.timeout(30_000),
      });
    const plain = await post(7001, { name: 'echo', arguments: { message: 'json' } });
    expect(plain.headers.get('content-type')).toBe('application/json');
    expect(await plain.json()).toEqual({
      jsonrpc: '2.0',
      id: 7001,
      result: { content: [{ type: 'text', text: 'Echo: json' }] },
    });
    const streamed = await post(7002, {
      name: 'trigger-long-running-operation',
      arguments: { duration: 0.2, steps: 2 },
      _meta: { progressToken: 'mine' },
    });
    expect(streamed.headers.get('content-type')).toBe('text/event-stream');
    const events = (await streamed.text())
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)));
    expect(events.filter((e) => e.method === 'notifications/progress').map((e) => e.params.progressToken)).toEqual([
      'mine',
      'mine',
    ]);
    expect(events.at(-1)).toMatchObject({ jsonrpc: '2.0', id: 7002, result: { content: [{ type: 'text' }] } });
  });

  it('refuses a foreign Host header on its loopback bind (DNS rebinding)', async () => {
    // node:http, unlike fetch, lets the test set the Host header.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${b.base}/health`, { headers: { Host: 'evil.example:80' }, timeout: 10_000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('the process killed: in-flight calls get errors at once, the bridge re-initializes the restarted process, new calls succeed, sessions hear list_changed', async () => {
    const changedA: number[] = [];
    const changedC: number[] = [];
    a.setNotificationHandler(ToolListChangedNotificationSchema, async () => void changedA.push(1));
    c.setNotificationHandler(ToolListChangedNotificationSchema, async () => void changedC.push(1));
    const inflight: Array<Promise<unknown>> = [];
    let started = 0;
    for (const client of [a, c]) {
      inflight.push(
        client
          .callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } }, undefined, {
            onprogress: () => void started++,
          })
          .then(
            () => 'answered',
            (e: unknown) => e,
          ),
      );
    }
    await until(() => started >= 2, 'both long calls to be running in the process', 20_000);
    const pid = await b.server.kill();
    const outcomes = await Promise.all(inflight);
    for (const o of outcomes) {
      expect(o).toBeInstanceOf(McpError);
      expect((o as McpError).code).toBe(BRIDGE_ERROR.processExited);
      expect((o as McpError).message).toContain('exited while handling tools/call');
    }
    await until(
      async () => (await b.ready()).status === 200 && b.bridge!.status().starts === 2,
      'the restarted process to be initialized',
      60_000,
    );
    expect(b.server.child?.pid).not.toBe(pid);
    expect(text(await a.callTool({ name: 'echo', arguments: { message: 'new process' } }))).toBe('Echo: new process');
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'new process too' } }))).toBe(
      'Echo: new process too',
    );
    await until(() => changedA.length > 0 && changedC.length > 0, 'tools/list_changed in both sessions', 20_000);
    expect(await metric(b, 'kubemcp_bridge_process_starts_total')).toBe(2);
  });

  it('a session opened while the process restarts waits for it and then works', async () => {
    await b.server.kill();
    const late = await b.connect('late');
    expect(late.getServerVersion()?.name).toBe('mcp-servers/everything');
    expect(text(await late.callTool({ name: 'echo', arguments: { message: 'late' } }))).toBe('Echo: late');
    expect(b.bridge!.status().starts).toBe(3);
  });
});

describe('a process that never answers initialize', () => {
  let b: Bridged;
  beforeAll(async () => {
    // Reads stdin forever, writes nothing.
    b = await startBridged({
      argv: [process.execPath, '-e', 'process.stdin.resume(); setInterval(() => {}, 1000)'],
      bridge: { initTimeoutMs: 1000, readyWaitMs: 300 },
    });
  });
  afterAll(async () => {
    await b?.close();
  });

  it('keeps /ready at 503 with the reason, and a client gets a JSON-RPC error instead of a hang', async () => {
    await until(
      async () => /has not answered initialize within 1 s/.test((await b.ready()).body.reason ?? ''),
      'the initialize timeout reason',
      20_000,
    );
    const r = await b.ready();
    expect(r.status).toBe(503);
    expect(r.body.status).toBe('not ready');
    await expect(b.connect()).rejects.toThrow(
      /stdio MCP server is not ready: the stdio process has not answered initialize/,
    );
  });
});

describe('the bridge with spec.auth.tools (gateway/tools.ts)', () => {
  let b: Bridged;
  beforeAll(async () => {
    b = await startBridged({
      argv: EVERYTHING,
      // Mode none here: the caller is anonymous, named by subject-less rules only.
      http: { tools: new ToolPolicy([{ names: ['echo', 'get-sum'] }, { names: ['*'], users: ['root'] }]) },
    });
  }, 120_000);
  afterAll(async () => {
    await b?.close();
  });

  it('lists only the allowed tools (as one JSON body and as an SSE stream) and refuses another tool without reaching the process', async () => {
    const c = await b.connect();
    expect((await c.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'get-sum']);
    // A progress token makes it a streamed answer (the SDK transport's SSE path).
    const streamed = await c.listTools({ _meta: { progressToken: 'p1' } });
    expect(streamed.tools.map((t) => t.name).sort()).toEqual(['echo', 'get-sum']);
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'ok' } }))).toBe('Echo: ok');
    // How many requests the bridge sent to the process (its own counter, every result).
    const sent = async () =>
      (await b.bridge!.registry.getSingleMetric('kubemcp_bridge_requests_total')!.get()).values.reduce(
        (n, v) => n + v.value,
        0,
      );
    const before = await sent();
    expect(before).toBeGreaterThan(0); // the echo call was counted
    await expect(c.callTool({ name: 'get-env', arguments: {} })).rejects.toThrow(
      /Forbidden: system:anonymous may not call tool "get-env"/,
    );
    expect(await sent()).toEqual(before);
  });
});
