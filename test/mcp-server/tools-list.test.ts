/**
 * The compact tools/list (mcp-server/tools-list.ts) and the lazy gateway of the stdio start
 * (mcp-server/server.ts): pure logic over an in-memory MCP session, no cluster. The server is
 * built with a gateway that throws when touched, so listing tools is shown not to need it.
 * KMS_TOOLS_LIST_BYTES is kubernetes-mcp-server v0.0.67's answer, measured by `npm run bench`.
 */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { buildServer, allTools, type ServerDeps } from '../../mcp-server/server.js';
import { Policy } from '../../mcp-server/policy.js';
import { compactSchema, compactTool } from '../../mcp-server/tools-list.js';
import type { KubeGateway } from '../../mcp-server/kube.js';

const KMS_TOOLS_LIST_BYTES = 24_335;
/** KMS v0.0.67's tool count in the same answer: the bound is on bytes per tool (issue 19, "Limits"). */
const KMS_TOOLS = 20;

/** A session with a server whose gateway must never be touched. */
async function session(extra: Partial<ServerDeps> = {}) {
  let touched = 0;
  const deps: ServerDeps = {
    get kube(): KubeGateway {
      touched++;
      throw new Error('the gateway was touched');
    },
    policy: new Policy({}),
    contextArgument: false,
    log: pino({ level: 'silent' }),
    ...extra,
  };
  const built = buildServer(deps);
  const [a, b] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'tools-list-test', version: '1.0.0' });
  await Promise.all([built.server.connect(a), client.connect(b)]);
  return { client, touched: () => touched, close: async () => Promise.all([client.close(), built.close()]) };
}

function walk(node: unknown, visit: (o: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) for (const n of node) walk(n, visit);
  else if (node && typeof node === 'object') {
    visit(node as Record<string, unknown>);
    for (const v of Object.values(node)) walk(v, visit);
  }
}

describe('compact tools/list', () => {
  it('lists every tool without touching the gateway, within KMS v0.0.67 bytes per tool', async () => {
    const s = await session();
    try {
      const list = await s.client.listTools();
      expect(list.tools.map((t) => t.name)).toEqual(allTools().map((t) => t.name));
      expect(Buffer.byteLength(JSON.stringify(list)) / list.tools.length).toBeLessThanOrEqual(
        KMS_TOOLS_LIST_BYTES / KMS_TOOLS,
      );
      // Listed twice (cache): the same answer.
      expect(await s.client.listTools()).toEqual(list);
      expect(s.touched()).toBe(0);
    } finally {
      await s.close();
    }
  });

  it('leaves out only bytes without meaning: $schema, safe-integer bounds, duplicate title, inapplicable hints, default execution', async () => {
    const s = await session();
    try {
      const { tools } = await s.client.listTools();
      for (const t of tools) {
        walk([t.inputSchema, t.outputSchema], (o) => {
          expect(o.$schema).toBeUndefined();
          expect(Math.abs(Number(o.minimum ?? 0))).toBeLessThan(Number.MAX_SAFE_INTEGER);
          expect(Math.abs(Number(o.maximum ?? 0))).toBeLessThan(Number.MAX_SAFE_INTEGER);
        });
        expect(t.title).toBeTruthy();
        expect(t.description).toBeTruthy();
        expect(t.outputSchema?.type).toBe('object');
        expect(t.annotations?.title).toBeUndefined();
        expect(t.annotations?.openWorldHint).toBe(false);
        expect(t.execution).toBeUndefined();
        if (t.annotations?.readOnlyHint) {
          expect(t.annotations.destructiveHint).toBeUndefined();
          expect(t.annotations.idempotentHint).toBeUndefined();
        } else {
          expect(t.annotations?.readOnlyHint).toBe(false);
          expect(typeof t.annotations?.destructiveHint).toBe('boolean');
        }
        expect(Object.keys(t.inputSchema.properties ?? {})).not.toContain('context');
      }
      // Bounds that say something stay: get-pod-logs' tailLines is 1..100000.
      const logs = tools.find((t) => t.name === 'get-pod-logs')!;
      expect(logs.inputSchema.properties?.tailLines).toMatchObject({ type: 'integer', minimum: 1, maximum: 100000 });
      expect(logs.inputSchema.required).toEqual(['name']);
      const del = tools.find((t) => t.name === 'delete-pod')!;
      expect(del.annotations).toEqual({
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      });
    } finally {
      await s.close();
    }
  });

  it('lists the context argument on every tool when several contexts are allowed', async () => {
    const s = await session({ contextArgument: true });
    try {
      const { tools } = await s.client.listTools();
      // Every tool but list-contexts, which lists them.
      for (const t of tools)
        if (t.name !== 'list-contexts') expect(Object.keys(t.inputSchema.properties ?? {})).toContain('context');
      expect(tools.find((t) => t.name === 'get-resource')!.inputSchema.properties?.context).toMatchObject({
        type: 'string',
      });
      expect(s.touched()).toBe(0);
    } finally {
      await s.close();
    }
  });

  it('a tool call is what first touches the gateway, and its failure is an MCP error result', async () => {
    const s = await session();
    try {
      const r = await s.client.callTool({ name: 'list-nodes', arguments: {} });
      expect(r.isError).toBe(true);
      expect((r.content as Array<{ text: string }>)[0]!.text).toContain('the gateway was touched');
      expect(s.touched()).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });

  it('compactSchema and compactTool keep everything else', () => {
    const schema = compactSchema({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: {
        n: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
        m: { type: 'integer', minimum: 0, maximum: 10 },
      },
      required: ['n'],
      additionalProperties: false,
    });
    expect(schema).toEqual({
      type: 'object',
      properties: { n: { type: 'integer' }, m: { type: 'integer', minimum: 0, maximum: 10 } },
      required: ['n'],
      additionalProperties: false,
    });
    const t = compactTool('x-y', {
      title: 'X',
      description: 'd',
      inputSchema: undefined,
      outputSchema: undefined,
      annotations: { title: 'Other', readOnlyHint: true, destructiveHint: false },
      execution: { taskSupport: 'optional' },
      _meta: { a: 1 },
    });
    expect(t).toEqual({
      name: 'x-y',
      title: 'X',
      description: 'd',
      inputSchema: { type: 'object', properties: {} },
      annotations: { title: 'Other', readOnlyHint: true },
      execution: { taskSupport: 'optional' },
      _meta: { a: 1 },
    });
  });
});
