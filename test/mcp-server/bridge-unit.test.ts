/**
 * Pure parts of the bridge: line framing with a size limit, JSON-RPC line parsing, the pod
 * wiring (launcher script safe from Kubernetes' $(VAR) expansion, argv order). Node alone: the
 * tests that run Debian's busybox-static (bridge-init, the launcher) are in
 * bridge-launcher.test.ts, in the cluster project, whose machine has the real node's packages.
 */
import { describe, expect, it } from '@jest/globals';
import { LineFramer, OVERSIZE_WINDOW, parseLine, type OversizeLine } from '../../gateway/fifo.js';
import { bridgeArgs, bridgeInitArgs, bridgePaths, launcherArgv, launchScript } from '../../gateway/wiring.js';

function frame(max: number, chunks: Array<string | Buffer>): { lines: string[]; over: OversizeLine[] } {
  const lines: string[] = [];
  const over: OversizeLine[] = [];
  const f = new LineFramer(
    max,
    (l) => lines.push(l.toString('utf8')),
    (o) => over.push(o),
  );
  for (const c of chunks) f.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return { lines, over };
}

describe('LineFramer', () => {
  it('splits lines across and within chunks, drops \\r and empty lines', () => {
    expect(frame(100, ['{"a":', '1}\n{"b":2}\r\n\n{"c"', ':3}\n']).lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });
  it('keeps a partial line until its newline arrives', () => {
    expect(frame(100, ['abc']).lines).toEqual([]);
    expect(frame(100, ['abc', 'def\n']).lines).toEqual(['abcdef']);
  });
  it('reports a line over the limit with its size, head and tail, and goes on with the next line', () => {
    const big = 'h'.repeat(OVERSIZE_WINDOW) + 'm'.repeat(50_000) + 't'.repeat(OVERSIZE_WINDOW);
    const { lines, over } = frame(1000, ['ok1\n', big.slice(0, 30_000), big.slice(30_000), '\nok2\n']);
    expect(lines).toEqual(['ok1', 'ok2']);
    expect(over).toHaveLength(1);
    expect(over[0]!.bytes).toBe(big.length);
    expect(over[0]!.head).toBe('h'.repeat(OVERSIZE_WINDOW));
    expect(over[0]!.tail).toBe('t'.repeat(OVERSIZE_WINDOW));
  });
  it('accepts a line of exactly the limit', () => {
    expect(frame(10, ['0123456789\n']).lines).toEqual(['0123456789']);
    expect(frame(10, ['0123456789A\n']).over[0]!.bytes).toBe(11);
  });
});

describe('parseLine', () => {
  it("returns JSON-RPC messages as sent (fields the schema does not know kept), as strict as the SDK's own stdio transport", () => {
    const r = parseLine('{"jsonrpc":"2.0","id":"kb-1","result":{"x":1,"_meta":{"y":2}}}');
    expect(r).toEqual({ message: { jsonrpc: '2.0', id: 'kb-1', result: { x: 1, _meta: { y: 2 } } } });
    expect(parseLine('{"jsonrpc":"2.0","id":1,"result":{},"extra":true}')).toEqual({
      malformed: 'not a JSON-RPC 2.0 message',
    });
  });
  it('names why a line is not a message', () => {
    expect(parseLine('Starting server...')).toEqual({ malformed: 'not JSON' });
    expect(parseLine('{"hello":"world"}')).toEqual({ malformed: 'not a JSON-RPC 2.0 message' });
    expect(parseLine('[1,2]')).toEqual({ malformed: 'not a JSON-RPC 2.0 message' });
  });
});

describe('pod wiring', () => {
  it('the launcher script has no $( or $$, which Kubernetes would expand in a container command', () => {
    const s = launchScript('/bridge');
    expect(s).not.toMatch(/\$\(/);
    expect(s).not.toMatch(/\$\$/);
    expect(s).toContain('<"/bridge/stdin" >"/bridge/stdout"');
  });
  it('the server container argv is launcher, sh -c, script, then command and args in order', () => {
    expect(launcherArgv(['npx', '-y', 'pkg'], ['--flag', '$(X)'])).toEqual([
      '/bridge/bin/busybox',
      'sh',
      '-c',
      launchScript('/bridge'),
      'npx',
      '-y',
      'pkg',
      '--flag',
      '$(X)',
    ]);
    expect(bridgePaths('/tmp/x/')).toEqual({
      dir: '/tmp/x',
      stdin: '/tmp/x/stdin',
      stdout: '/tmp/x/stdout',
      launcher: '/tmp/x/bin/busybox',
    });
    expect(bridgeInitArgs()).toEqual(['bridge-init', '--dir', '/bridge']);
    expect(bridgeArgs(3001)).toEqual(['bridge', '--dir', '/bridge', '--port', '3001', '--host', '0.0.0.0']);
  });
});
