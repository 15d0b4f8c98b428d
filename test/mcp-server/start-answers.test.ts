/**
 * The start answers of the stdio server (mcp-server/start-answers.ts): `initialize` and
 * `tools/list` answered from the bundle's snapshot must equal the real server's answers, under
 * every flag that changes the tool list and for supported, older and unknown protocol versions;
 * requests that are not well formed are left to the real server. Pure logic, no cluster: the
 * real server is built in memory with a gateway that throws when touched.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { Policy, type PolicyOptions } from '../../mcp-server/policy.js';
import { StartAnswers, type StartSnapshot } from '../../mcp-server/start-answers.js';
import { computeStartSnapshot, realStartAnswers } from '../../mcp-server/start-snapshot.js';
import { allTools } from '../../mcp-server/server.js';

let snapshot: StartSnapshot;
beforeAll(async () => {
  snapshot = await computeStartSnapshot();
});

const init = (protocolVersion: unknown, id: unknown = 1, extra: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion, capabilities: {}, clientInfo: { name: 'c', version: '1' }, ...extra },
});

const FLAG_SETS: PolicyOptions[] = [
  {},
  { readOnly: true },
  { disableDestructive: true },
  { allowTools: ['list-resources', 'get-resource', 'scale-workload'] },
  { denyTools: ['delete-resource', 'list-events'] },
  { readOnly: true, denyTools: ['get-resource'] },
];

describe('start answers', () => {
  it('the snapshot holds every tool in registration order, each with its effect', () => {
    expect(snapshot.tools.map((t) => t.name)).toEqual(allTools().map((t) => t.name));
    expect(snapshot.tools.map((t) => t.effect)).toEqual(allTools().map((t) => t.effect));
    expect(snapshot.protocolVersions).toEqual([...SUPPORTED_PROTOCOL_VERSIONS]);
    // The snapshot is JSON (build.ts embeds it as a JSON string).
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
  });

  for (const flags of FLAG_SETS) {
    for (const contextArgument of [false, true]) {
      it(`tools/list and initialize equal the real server's: ${JSON.stringify(flags)}, context argument ${contextArgument}`, async () => {
        const policy = new Policy(flags);
        const answers = new StartAnswers(snapshot, policy, contextArgument);
        for (const version of [SUPPORTED_PROTOCOL_VERSIONS[0]!, SUPPORTED_PROTOCOL_VERSIONS.at(-1)!, '1999-01-01']) {
          const real = await realStartAnswers(policy, contextArgument, version);
          expect(answers.initialize(init(version, 'a'))).toEqual({ jsonrpc: '2.0', id: 'a', result: real.initialize });
          expect(answers.toolsList({ jsonrpc: '2.0', id: 7, method: 'tools/list' })).toEqual({
            jsonrpc: '2.0',
            id: 7,
            result: { tools: real.tools },
          });
        }
      });
    }
  }

  it('leaves requests that are not well formed, and an empty tool list, to the real server', () => {
    const answers = new StartAnswers(snapshot, new Policy({}), false);
    expect(answers.initialize(init(20250618))).toBeUndefined();
    expect(answers.initialize(init('2025-06-18', null))).toBeUndefined();
    expect(answers.initialize(init('2025-06-18', { x: 1 }))).toBeUndefined();
    expect(answers.initialize(init('2025-06-18', 1, { clientInfo: { name: 'c' } }))).toBeUndefined();
    expect(answers.initialize(init('2025-06-18', 1, { capabilities: 'all' }))).toBeUndefined();
    expect(answers.initialize({ ...init('2025-06-18'), jsonrpc: '1.0' })).toBeUndefined();
    expect(answers.initialize({ jsonrpc: '2.0', id: 1, method: 'initialize' })).toBeUndefined();
    expect(answers.initialize({ jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBeUndefined();
    expect(answers.toolsList({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { cursor: 5 } })).toBeUndefined();
    expect(answers.toolsList({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: [] })).toBeUndefined();
    expect(answers.toolsList({ jsonrpc: '2.0', method: 'tools/list' })).toBeUndefined();
    expect(answers.toolsList('tools/list')).toBeUndefined();
    expect(answers.toolsList({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { cursor: 'x' } })).toBeDefined();
    const none = new StartAnswers(snapshot, new Policy({ allowTools: ['no-such-tool'] }), false);
    expect(none.toolsList({ jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBeUndefined();
  });
});
