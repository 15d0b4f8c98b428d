/**
 * The bundled stdio server's start (issue 9, "Speed and memory"; mcp-server/stdio.ts): the bin
 * built by build.ts answers `initialize` and `tools/list` from its start snapshot before it loads
 * the real server, with the same answers as the real server (`tsx cli.ts serve`, which has no
 * snapshot), then serves the requests queued meanwhile, against the local control
 * plane: the replayed `initialize` is not answered twice, a line that is not JSON gets -32700 and
 * one that is not JSON-RPC gets -32600. Every process is stopped by pid; every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildBundle } from '../../build.js';
import { waitFor } from '../kube.js';
import { ROOT } from './helpers.js';

/** A JSON-RPC answer as the tests below read it: a result (tools/list or tools/call) or an error. */
interface Answer {
  id?: unknown;
  result: { tools: unknown[]; isError?: boolean; content: [{ text?: string }, ...Array<{ text?: string }>] };
  error?: { code: number; message?: string };
}

let outdir: string;

beforeAll(async () => {
  outdir = mkdtempSync(path.join(tmpdir(), 'kubemcp-start-bundle-'));
  await buildBundle(outdir);
}, 300_000);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

/** A server process speaking JSON-RPC lines; `bundle` false runs the sources with tsx. */
function serve(bundle: boolean, args: string[]) {
  const command = bundle ? process.execPath : path.join(ROOT, 'node_modules/.bin/tsx');
  const child: ChildProcess = spawn(
    command,
    [bundle ? path.join(outdir, 'kubemcp.js') : 'cli.ts', 'serve', '--audit-log', 'off', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'debug' },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const messages = () =>
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Answer);
  return {
    child,
    send: (m: unknown) => child.stdin!.write((typeof m === 'string' ? m : JSON.stringify(m)) + '\n'),
    messages,
    answer: async (id: unknown) => {
      await waitFor(`answer ${JSON.stringify(id)}`, async () => messages().some((m) => m.id === id), 90_000, 20);
      return messages().find((m) => m.id === id)!;
    },
    stderr: () => err,
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}

const INIT = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'start-bundle-test', version: '1' } },
};

describe('bundled stdio start', () => {
  for (const args of [[], ['--read-only', '--allow-contexts', '*']]) {
    it(`answers initialize and tools/list from the snapshot, equal to the real server's (${args.join(' ') || 'no flags'})`, async () => {
      const fast = serve(true, args);
      const real = serve(false, args);
      try {
        for (const s of [fast, real]) {
          s.send(INIT);
          await s.answer(0);
          s.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
          s.send({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
          await s.answer(1);
        }
        expect(fast.messages()).toEqual(real.messages());
        expect(fast.messages()[1]!.result.tools.length).toBeGreaterThan(5);
        // The bundle answered both before its server was connected (one stream: stderr, in order).
        await waitFor('server connected', async () => fast.stderr().includes('kubemcp serve: stdio'), 90_000, 20);
        const e = fast.stderr();
        expect(e.indexOf('initialize answered from the start snapshot')).toBeGreaterThanOrEqual(0);
        expect(e.indexOf('tools/list answered from the start snapshot')).toBeGreaterThan(
          e.indexOf('initialize answered from the start snapshot'),
        );
        expect(e.indexOf('kubemcp serve: stdio')).toBeGreaterThan(
          e.indexOf('tools/list answered from the start snapshot'),
        );
        // The sources (no snapshot) answer from the real server only.
        expect(real.stderr()).not.toContain('answered from the start snapshot');
      } finally {
        fast.stop();
        real.stop();
      }
    });
  }

  it('serves a 2026-07-28 opening (server/discover, then requests with the `_meta` envelope) with the SDK v2, never from the 2025 snapshot', async () => {
    const s = serve(true, []);
    const meta = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'start-bundle-test', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    };
    try {
      // All at once, before the server is loaded: the first request decides the era.
      s.send({ jsonrpc: '2.0', id: 0, method: 'server/discover', params: { _meta: meta } });
      s.send({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta } });
      s.send({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'list-namespaces', arguments: {}, _meta: meta },
      });
      const discovered = (await s.answer(0)) as unknown as {
        result: { supportedVersions: string[] };
      };
      expect(discovered.result.supportedVersions).toContain('2026-07-28');
      expect(JSON.stringify(discovered.result)).toContain('"name":"kubemcp"');
      const listed = (await s.answer(1)) as unknown as { result: { tools: unknown[]; ttlMs?: number } };
      expect(listed.result.tools.length).toBeGreaterThan(5);
      expect(listed.result.ttlMs).toBe(60_000); // the modern leg's answer, not the snapshot's
      expect((await s.answer(2)).result.content[0].text).toMatch(/kube-system/);
      expect(s.stderr()).not.toContain('answered from the start snapshot');
      expect(s.stderr()).toContain('kubemcp serve: stdio (MCP 2026-07-28)');
    } finally {
      s.stop();
    }
  });

  it('serves the lines queued while the server loads, each once, against the cluster', async () => {
    const s = serve(true, []);
    try {
      // All at once, before the server can be loaded: only initialize and tools/list are answered early.
      s.send(INIT);
      s.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      s.send({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      s.send('{"jsonrpc": "2.0", "id": 2, "method": ');
      s.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list-namespaces', arguments: {} } });
      s.send({ hello: 'not json-rpc' });
      s.send({
        jsonrpc: '2.0',
        id: 4,
        method: 'tools/call',
        params: { name: 'list-resources', arguments: { kind: 'namespaces' } },
      });
      s.send({ jsonrpc: '2.0', id: 5, method: 'ping' });
      const call = await s.answer(3);
      expect(call.result.isError).toBeFalsy();
      expect(call.result.content[0].text).toMatch(/kube-system/);
      expect((await s.answer(4)).result.content[0].text).toMatch(/kube-system/);
      expect((await s.answer(5)).result).toEqual({});
      const msgs = s.messages();
      // One answer to initialize (the replay's is not written), and nothing for the notification.
      expect(msgs.filter((m) => m.id === 0)).toHaveLength(1);
      expect(msgs.some((m) => typeof m.id === 'string' && m.id.startsWith('kubemcp-start-'))).toBe(false);
      expect(msgs.find((m) => m.error?.code === -32700)?.id).toBeNull();
      expect(msgs.find((m) => m.error?.code === -32600)?.id).toBeNull();
      // The early answers come first; every request is answered once.
      const order = msgs.filter((m) => typeof m.id === 'number').map((m) => m.id);
      expect(order.slice(0, 2)).toEqual([0, 1]);
      expect([...order].sort()).toEqual([0, 1, 3, 4, 5]);
      expect(s.child.exitCode).toBeNull();
    } finally {
      s.stop();
    }
  });

  it('with stdin closed before the server loads, the process ends with code 0', async () => {
    const s = serve(true, []);
    s.send(INIT);
    await s.answer(0);
    s.child.stdin!.end();
    await waitFor('process exit', async () => s.child.exitCode !== null, 60_000, 20);
    expect(s.child.exitCode).toBe(0);
  });
});
