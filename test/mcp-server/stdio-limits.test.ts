/**
 * Issue 9, item 10: a stdio message over the 10 MiB limit is answered with a JSON-RPC error
 * (with the request's id) and the server keeps serving, in a real `kubemcp serve` child process.
 */
import { describe, expect, it } from '@jest/globals';
import { waitFor } from '../kube.js';
import { spawnRaw } from './helpers.js';

describe('stdio message size limit', () => {
  it('an 11 MiB request gets a -32600 error with its id; the next requests are served', async () => {
    const child = spawnRaw();
    try {
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const send = (s: string) => child.stdin!.write(s + '\n');
      send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 0,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
        }),
      );
      send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      const big = JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'list-contexts', arguments: { pad: 'x'.repeat(11 * 1024 * 1024) } },
      });
      send(big);
      send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 8,
          method: 'tools/call',
          params: { name: 'list-contexts', arguments: {} },
        }),
      );
      await waitFor('answers to 7 and 8', async () => out.includes('"id":8') && out.includes('"id":7'), 60_000, 100);
      const msgs = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const tooBig = msgs.find((m) => m.id === 7);
      expect(tooBig.error.code).toBe(-32600);
      expect(tooBig.error.message).toMatch(/exceeds the 10485760-byte limit/);
      expect(msgs.find((m) => m.id === 8).result.isError).toBeFalsy();
      expect(err).toMatch(/stdio message too large; skipped/);
      // A second oversized line, split over many writes without a newline until the end, then a ping.
      const chunk = 'y'.repeat(1024 * 1024);
      child.stdin!.write('{"jsonrpc":"2.0","id":"big-2","method":"ping","params":{"p":"');
      for (let i = 0; i < 11; i++) child.stdin!.write(chunk);
      send('"}}');
      send(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }));
      await waitFor('answer to ping 9', async () => out.includes('"id":9'), 60_000, 100);
      const later = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(later.find((m) => m.id === 'big-2').error.code).toBe(-32600);
      expect(later.find((m) => m.id === 9).result).toEqual({});
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
    }
  });
});
