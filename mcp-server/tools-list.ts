/**
 * The `tools/list` answer of `kubemcp serve`, compact and computed once per process.
 *
 * The SDK's own handler (McpServer, `@modelcontextprotocol/sdk` 1.32) converts every tool's zod
 * schemas to JSON Schema on every `tools/list`, and its output carries bytes that say nothing to a
 * model. `serveCompactToolList` replaces that handler with one answering the same tools, names,
 * titles, descriptions and schemas, minus (MCP 2025-06-18, "Tools"; JSON Schema draft 7):
 * - `$schema` on each schema: the keywords used here (type, properties, required, items, enum,
 *   minimum, maximum, minLength, description, additionalProperties) mean the same in draft 7 and
 *   2020-12 (the dialect MCP assumes when `$schema` is absent);
 * - `minimum`/`maximum` of +-(2^53 - 1) that zod adds to every `.int()`: JSON has no smaller
 *   integer range to state;
 * - `annotations.title` when equal to the tool's `title`; `destructiveHint`/`idempotentHint` of a
 *   read-only tool, which the spec defines as meaningful only when `readOnlyHint` is false;
 * - `execution: { taskSupport: "forbidden" }`, the spec's default.
 * The byte count is part of the benchmark (docs/serve.md, "Speed and memory"; `npm run bench`).
 */
import { z } from 'zod';
import { ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { McpServer, RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';

type Json = Record<string, unknown>;

/** Removes `$schema` and zod's safe-integer bounds from a JSON Schema (recursively, in place). */
export function compactSchema<T>(schema: T): T {
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const o = node as Json;
    delete o.$schema;
    if (o.minimum === -Number.MAX_SAFE_INTEGER) delete o.minimum;
    if (o.maximum === Number.MAX_SAFE_INTEGER) delete o.maximum;
    for (const v of Object.values(o)) walk(v);
  };
  walk(schema);
  return schema;
}

const isZod = (s: unknown): s is z.ZodType => !!s && typeof s === 'object' && '_zod' in s;

const jsonSchemaOf = (schema: unknown, io: 'input' | 'output'): Tool['inputSchema'] => {
  const obj = isZod(schema) ? schema : z.object((schema ?? {}) as z.ZodRawShape);
  return compactSchema(z.toJSONSchema(obj, { target: 'draft-7', io })) as Tool['inputSchema'];
};

/**
 * The compact listing entry of one registered tool (see the module comment for what is left out).
 * @throws Error from zod when a schema cannot be expressed in JSON Schema.
 */
export function compactTool(
  name: string,
  tool: Pick<RegisteredTool, 'title' | 'description' | 'annotations' | 'execution' | '_meta'> & {
    /** A zod object, or a zod raw shape (as tool definitions give it). */
    inputSchema?: unknown;
    outputSchema?: unknown;
  },
): Tool {
  const out: Tool = { name, inputSchema: jsonSchemaOf(tool.inputSchema, 'input') };
  if (tool.title !== undefined) out.title = tool.title;
  if (tool.description !== undefined) out.description = tool.description;
  if (tool.outputSchema) out.outputSchema = jsonSchemaOf(tool.outputSchema, 'output') as Tool['outputSchema'];
  if (tool.annotations) {
    const a = { ...tool.annotations };
    if (a.title === tool.title) delete a.title;
    if (a.readOnlyHint === true) {
      delete a.destructiveHint;
      delete a.idempotentHint;
    }
    out.annotations = a;
  }
  if (tool.execution && !(tool.execution.taskSupport === 'forbidden' && Object.keys(tool.execution).length === 1))
    out.execution = tool.execution;
  if (tool._meta) out._meta = tool._meta;
  return out;
}

/** Per process: tool definitions are code, the same for every session, so each is converted once. */
const cache = new Map<string, Tool>();

/**
 * {@link compactTool}, converted once per process for a tool name and input shape (both eras'
 * `tools/list` answer from it).
 */
export function compactToolCached(name: string, tool: Parameters<typeof compactTool>[1]): Tool {
  const key = `${name}\0${Object.keys(schemaShape(tool.inputSchema)).join(',')}`;
  let entry = cache.get(key);
  if (!entry) cache.set(key, (entry = compactTool(name, tool)));
  return entry;
}

/**
 * Registers `tools` on `server` through `register` (registerTools), then answers `tools/list`
 * with their compact entries (enabled tools, registration order). Call before connect().
 * @returns what `register` returns.
 */
export function serveCompactToolList<T>(server: McpServer, register: () => T): T {
  const tools = new Map<string, RegisteredTool>();
  const original = server.registerTool;
  // Records what the SDK stores for each tool; registration itself is unchanged.
  server.registerTool = function (this: McpServer, name: string, ...rest: unknown[]) {
    const t = (original as (...a: unknown[]) => RegisteredTool).call(server, name, ...rest);
    tools.set(name, t);
    return t;
  } as McpServer['registerTool'];
  let result: T;
  try {
    result = register();
  } finally {
    server.registerTool = original;
  }
  if (tools.size) {
    server.server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: [...tools].filter(([, t]) => t.enabled).map(([name, t]) => compactToolCached(name, t)),
    }));
  }
  return result;
}

const schemaShape = (s: unknown): Json =>
  isZod(s) ? (((s as { shape?: Json }).shape ?? {}) as Json) : ((s ?? {}) as Json);
