/**
 * The gateway's 2026-07-28 front (gateway/eras.ts, issue 18), pure logic: which bodies are looked
 * at as 2026-07-28 requests before the SDK is loaded, and a 2025 "resource not found" in the
 * SEP-2164 shape. The front itself is tested against real servers in test/gateway/proxy.test.ts,
 * test/mcp-server/bridge.test.ts and the conformance suite.
 */
import { describe, expect, it } from '@jest/globals';
import { ProtocolError } from '@modelcontextprotocol/server';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { isInitializeMessage, looksModern, MODERN_ENVELOPE_KEY } from '../../lib/mcp-era.js';
import { resourceNotFound } from '../../gateway/eras.js';

describe('looksModern', () => {
  it('is true for server/discover and for a request carrying the protocol version in _meta', () => {
    expect(looksModern({ jsonrpc: '2.0', id: 1, method: 'server/discover' })).toBe(true);
    expect(
      looksModern({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
        params: { _meta: { [MODERN_ENVELOPE_KEY]: '2026-07-28' } },
      }),
    ).toBe(true);
  });
  it('is false for 2025 requests, batches and anything that is not a JSON-RPC object', () => {
    expect(looksModern({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })).toBe(false);
    expect(looksModern({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { _meta: { progressToken: 1 } } })).toBe(
      false,
    );
    expect(looksModern([{ jsonrpc: '2.0', id: 1, method: 'server/discover' }])).toBe(false);
    for (const v of [undefined, null, 'server/discover', 42, { params: { _meta: 'x' } }])
      expect(looksModern(v)).toBe(false);
  });
});

describe('isInitializeMessage', () => {
  const init = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
  };
  it('is true wherever the SDK v1 isInitializeRequest is (a valid initialize, string or number id)', () => {
    for (const m of [init, { ...init, id: 'a' }]) {
      expect(isInitializeRequest(m)).toBe(true);
      expect(isInitializeMessage(m)).toBe(true);
    }
  });
  it('is true for a malformed initialize too (a drain refuses it; the server would), false for anything else', () => {
    expect(isInitializeMessage({ jsonrpc: '2.0', id: 2, method: 'initialize' })).toBe(true);
    expect(isInitializeMessage({ jsonrpc: '2.0', method: 'initialize' })).toBe(false);
    expect(isInitializeMessage({ jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBe(false);
    expect(isInitializeMessage([init])).toBe(false);
    for (const v of [null, undefined, 'initialize', 3, { id: {}, method: 'initialize' }])
      expect(isInitializeMessage(v)).toBe(false);
  });
});

describe('resourceNotFound (SEP-2164)', () => {
  it('turns -32002 into -32602 with data.uri, keeping the message and other data', () => {
    const e = resourceNotFound(
      Object.assign(new Error('Resource test://x not found'), { code: -32002, data: { k: 1 } }),
      'test://x',
    );
    expect(e).toBeInstanceOf(ProtocolError);
    expect(e).toMatchObject({ code: -32602, data: { k: 1, uri: 'test://x' } });
    expect((e as Error).message).toContain('Resource test://x not found');
  });
  it('adds data.uri to a -32602 "not found" without one, keeps one that is there', () => {
    expect(resourceNotFound(Object.assign(new Error('not found'), { code: -32602 }), 'a://b')).toMatchObject({
      code: -32602,
      data: { uri: 'a://b' },
    });
    expect(
      resourceNotFound(Object.assign(new Error('not found'), { code: -32602, data: { uri: 'a://c' } }), 'a://b'),
    ).toMatchObject({ data: { uri: 'a://c' } });
  });
  it('leaves other errors as they are', () => {
    const other = Object.assign(new Error('boom'), { code: -32603 });
    expect(resourceNotFound(other, 'a://b')).toBe(other);
    const bad = Object.assign(new Error('Invalid arguments'), { code: -32602 });
    expect(resourceNotFound(bad, 'a://b')).toBe(bad);
    expect(resourceNotFound('text', 'a://b')).toBe('text');
  });
});
