/**
 * Per-tool access (gateway/tools.ts, issue 17 `spec.auth.tools`), pure logic: who a rule names,
 * which calls are refused, and how a tools/list answer is filtered in JSON and SSE bodies.
 */
import { describe, expect, it } from '@jest/globals';
import {
  filterToolsListBody,
  refusedCalls,
  toolRefusal,
  toolsListIds,
  ToolPolicy,
  type ToolGrant,
} from '../../gateway/tools.js';

const policy = new ToolPolicy([
  { names: ['read'], users: ['oidc:alice'] },
  { names: ['write'], groups: ['oidc:admins'] },
  { names: ['logs'], serviceAccounts: ['team-a/bot'] },
  { names: ['ping'] },
  { names: ['*'], users: ['root'] },
]);
const names = (g: ToolGrant) => (g.all ? '*' : [...g.names].sort());

describe('ToolPolicy', () => {
  it('a caller gets the tools of the rules naming its user, a group, or its ServiceAccount, plus subject-less rules', () => {
    expect(names(policy.grant({ username: 'oidc:alice', groups: [] }))).toEqual(['ping', 'read']);
    expect(names(policy.grant({ username: 'oidc:bob', groups: ['oidc:admins'] }))).toEqual(['ping', 'write']);
    expect(names(policy.grant({ username: 'system:serviceaccount:team-a:bot', groups: [] }))).toEqual(['logs', 'ping']);
    // The ServiceAccount is matched by its name, not a look-alike username or another namespace.
    expect(names(policy.grant({ username: 'system:serviceaccount:team-b:bot', groups: [] }))).toEqual(['ping']);
    expect(names(policy.grant({ username: 'team-a/bot', groups: [] }))).toEqual(['ping']);
    expect(names(policy.grant({ username: 'root', groups: [] }))).toBe('*');
    expect(names(policy.grant(undefined))).toEqual(['ping']);
  });

  it('parse refuses what is not a list of rules, naming the option', () => {
    for (const bad of ['{', '{}', '[{"users":["a"]}]', '[{"names":[1]}]', '[null]'])
      expect(() => ToolPolicy.parse(bad)).toThrow(/--tool-policy/);
    expect(names(ToolPolicy.parse('[{"names":["a"]}]').grant(undefined))).toEqual(['a']);
  });
});

describe('refusedCalls and toolRefusal', () => {
  const grant = policy.grant({ username: 'oidc:alice', groups: [] });
  it('refuses calls of other tools (and calls without a name), in single messages and batches', () => {
    expect(refusedCalls({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read' } }, grant)).toEqual([]);
    expect(refusedCalls({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'write' } }, grant)).toEqual([
      { id: 2, name: 'write' },
    ]);
    expect(
      refusedCalls(
        [
          { id: 3, method: 'tools/call', params: {} },
          { id: 4, method: 'tools/list' },
        ],
        grant,
      ),
    ).toEqual([{ id: 3, name: '' }]);
    expect(refusedCalls({ id: 5, method: 'tools/call', params: { name: 'x' } }, { all: true })).toEqual([]);
  });
  it('the error names the tool and the caller', () => {
    expect(toolRefusal(7, 'write', { username: 'oidc:alice', groups: [] })).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32001, message: expect.stringMatching(/oidc:alice may not call tool "write"/) },
    });
  });
});

describe('filterToolsListBody', () => {
  const grant = policy.grant({ username: 'oidc:alice', groups: [] });
  const list = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'read' }, { name: 'write' }, { name: 'ping' }] } };
  it('filters a JSON answer to the requested ids only', () => {
    expect(JSON.parse(filterToolsListBody('application/json', JSON.stringify(list), [1], grant)!)).toEqual({
      ...list,
      result: { tools: [{ name: 'read' }, { name: 'ping' }] },
    });
    // Another id: not an answer to this tools/list, unchanged.
    expect(filterToolsListBody('application/json', JSON.stringify(list), [2], grant)).toBe(JSON.stringify(list));
    expect(
      toolsListIds([
        { id: 1, method: 'tools/list' },
        { id: 2, method: 'ping' },
      ]),
    ).toEqual([1]);
  });
  it('filters the matching event of an SSE stream, keeping the other events and fields', () => {
    const note = { jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x' } };
    const body = `event: message\nid: 9\ndata: ${JSON.stringify(note)}\n\nevent: message\ndata: ${JSON.stringify(list)}\n\n`;
    const out = filterToolsListBody('text/event-stream', body, [1], grant)!;
    const events = out.split('\n\n').filter(Boolean);
    expect(events[0]).toBe(`event: message\nid: 9\ndata: ${JSON.stringify(note)}`);
    expect(events[1]!.split('\n')[0]).toBe('event: message');
    expect(JSON.parse(events[1]!.split('\n')[1]!.slice(6)).result.tools).toEqual([{ name: 'read' }, { name: 'ping' }]);
  });
  it('an unparsable body that may hold tools is not passed on unfiltered', () => {
    expect(filterToolsListBody('application/json', '{"tools": [', [1], grant)).toBeUndefined();
    expect(filterToolsListBody('text/event-stream', 'data: {"tools"\n\n', [1], grant)).toBeUndefined();
    expect(filterToolsListBody('text/plain', 'not found', [1], grant)).toBe('not found');
  });
});
