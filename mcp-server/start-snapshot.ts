/**
 * Takes the start snapshot (start-answers.ts) from the real server: builds it (buildServer) with
 * every tool, once without and once with the `context` argument, connects it to
 * an in-memory transport, sends raw JSON-RPC requests and records its `initialize` result and `tools/list` answer. build.ts
 * embeds the result in the bundle; tests compare StartAnswers with the real server through it.
 * The gateway is never touched (listing needs no cluster).
 */
import { pino } from 'pino';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import {
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type InitializeResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { allTools, buildServer, type ServerDeps } from './server.js';
import { Policy } from './policy.js';
import type { KubeGateway } from './kube.js';
import type { StartSnapshot } from './start-answers.js';

/** The real server's answers to `initialize` (with `protocolVersion`) and `tools/list` under `policy`. */
export async function realStartAnswers(
  policy: Policy,
  contextArgument: boolean,
  protocolVersion = LATEST_PROTOCOL_VERSION,
): Promise<{ initialize: InitializeResult; tools: Tool[] }> {
  const deps: ServerDeps = {
    get kube(): KubeGateway {
      throw new Error('the start snapshot must not need the Kubernetes gateway');
    },
    policy,
    contextArgument,
    log: pino({ level: 'silent' }),
  };
  const built = buildServer(deps);
  const [a, b] = InMemoryTransport.createLinkedPair();
  // Raw requests (not the SDK Client): the test chooses the requested protocol version.
  try {
    await built.server.connect(a);
    await b.start();
    const answers = new Map<number, unknown>();
    b.onmessage = (m) => {
      if ('id' in m && ('result' in m || 'error' in m)) answers.set(Number(m.id), 'result' in m ? m.result : m.error);
    };
    await b.send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 'kubemcp-start-snapshot', version: '1.0.0' } },
    });
    await b.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await b.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    for (let i = 0; i < 100 && answers.size < 2; i++) await new Promise((r) => setTimeout(r, 5));
    const list = answers.get(2) as { tools?: Tool[] } | undefined;
    return { initialize: answers.get(1) as InitializeResult, tools: list?.tools ?? [] };
  } finally {
    await b.close().catch(() => undefined);
    await built.close();
  }
}

/**
 * The snapshot of every tool, without and with `context`, and of `initialize`.
 * @throws Error when the real server does not answer, or lists tools other than allTools().
 */
export async function computeStartSnapshot(): Promise<StartSnapshot> {
  const policy = new Policy({});
  const without = await realStartAnswers(policy, false);
  const withContext = await realStartAnswers(policy, true);
  const defs = allTools();
  if (!without.initialize || without.tools.length !== defs.length || withContext.tools.length !== defs.length) {
    throw new Error(
      `start snapshot: the server answered ${without.tools.length}/${withContext.tools.length} tools, expected ${defs.length}`,
    );
  }
  const { protocolVersion: _v, ...initialize } = without.initialize;
  return {
    protocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS],
    latestProtocolVersion: LATEST_PROTOCOL_VERSION,
    initialize,
    tools: defs.map((d, i) => {
      const entry = without.tools[i]!;
      const ctx = withContext.tools[i]!;
      if (entry.name !== d.name || ctx.name !== d.name)
        throw new Error(`start snapshot: tool ${i} is ${entry.name}/${ctx.name}, expected ${d.name}`);
      return { name: d.name, effect: d.effect, entry, withContext: ctx };
    }),
  };
}
