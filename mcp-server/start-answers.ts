/**
 * The start answers of the stdio server (issue 9, "Speed and memory"): `initialize` and
 * `tools/list` answered from a snapshot taken at bundle time, while the MCP SDK, zod and the tool
 * definitions (most of the start) load behind them (mcp-server/stdio.ts).
 *
 * The snapshot (start-snapshot.ts computes it; build.ts embeds it in the bundle) holds what the
 * real server answers, taken from the real server: the `initialize` result without its
 * `protocolVersion`, the SDK's supported protocol versions, and every tool's compact listing entry
 * with and without the `context` argument, with the tool's effect. At run time the policy of the
 * flags picks the tools as registerTools does (`Policy.toolEnabled`, registration order), and
 * the protocol version is chosen as the SDK's `Server._oninitialize` does (the requested one when
 * supported, else the latest). test/mcp-server/start-answers.test.ts checks both against the real
 * server's answers under several flag sets.
 *
 * Only well-formed requests are answered here; anything else (odd params, a cursor that is not a
 * string, no tool enabled) returns undefined and is left to the real server, which gives the
 * SDK's answer or error.
 *
 * This module must stay light: it is loaded before the SDK (types only are imported).
 */
import type { Implementation, InitializeResult, JSONRPCMessage, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Policy, ToolEffect } from './policy.js';

/** What the real server answers at start, as taken at bundle time (see the module comment). */
export interface StartSnapshot {
  /** The MCP SDK's SUPPORTED_PROTOCOL_VERSIONS, newest first. */
  protocolVersions: string[];
  /** The MCP SDK's LATEST_PROTOCOL_VERSION. */
  latestProtocolVersion: string;
  /** The `initialize` result of the real server, without `protocolVersion`. */
  initialize: Omit<InitializeResult, 'protocolVersion'>;
  /** Every tool in registration order: its effect and its listing entries without and with `context`. */
  tools: Array<{ name: string; effect: ToolEffect; entry: Tool; withContext: Tool }>;
}

/** A JSON-RPC request id (JSON-RPC 2.0, section 4: a string or a number; MCP excludes null). */
type RequestId = string | number;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isId = (v: unknown): v is RequestId => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** A request of `method` in the JSON-RPC 2.0 shape, else undefined. */
function request(json: unknown, method: string): { id: RequestId; params: unknown } | undefined {
  if (!isObject(json) || json.jsonrpc !== '2.0' || json.method !== method || !isId(json.id)) return undefined;
  if (json.params !== undefined && !isObject(json.params)) return undefined;
  return { id: json.id, params: json.params };
}

/** Answers `initialize` and `tools/list` from a snapshot under one policy (see the module comment). */
export class StartAnswers {
  private readonly tools: Tool[];

  /**
   * @param snapshot what the real server answers (start-snapshot.ts).
   * @param policy the policy of the flags: which tools are listed.
   * @param contextArgument whether tools take the `context` argument (ServerDeps.contextArgument).
   */
  constructor(
    private readonly snapshot: StartSnapshot,
    policy: Pick<Policy, 'toolEnabled'>,
    contextArgument: boolean,
  ) {
    this.tools = snapshot.tools
      .filter((t) => policy.toolEnabled(t.name, t.effect))
      .map((t) => (contextArgument ? t.withContext : t.entry));
  }

  /**
   * The answer to a well-formed `initialize` request (MCP 2025-06-18, "Lifecycle"): protocol
   * version as the SDK chooses it, the snapshot's capabilities, serverInfo and instructions.
   * @returns the JSON-RPC response, or undefined when `json` is not such a request.
   */
  initialize(json: unknown): JSONRPCMessage | undefined {
    const req = request(json, 'initialize');
    if (!req || !isObject(req.params)) return undefined;
    const { protocolVersion, capabilities, clientInfo } = req.params as {
      protocolVersion?: unknown;
      capabilities?: unknown;
      clientInfo?: Partial<Implementation>;
    };
    if (typeof protocolVersion !== 'string' || !isObject(capabilities) || !isObject(clientInfo)) return undefined;
    if (typeof clientInfo.name !== 'string' || typeof clientInfo.version !== 'string') return undefined;
    const version = this.snapshot.protocolVersions.includes(protocolVersion)
      ? protocolVersion
      : this.snapshot.latestProtocolVersion;
    return { jsonrpc: '2.0', id: req.id, result: { protocolVersion: version, ...this.snapshot.initialize } };
  }

  /**
   * The answer to a well-formed `tools/list` request: the enabled tools' compact entries (the
   * server lists them all on one page; a string `cursor` is ignored, as the SDK's handler does).
   * @returns the JSON-RPC response, or undefined when `json` is not such a request or no tool is enabled.
   */
  toolsList(json: unknown): JSONRPCMessage | undefined {
    const req = request(json, 'tools/list');
    if (!req || this.tools.length === 0) return undefined;
    const cursor = (req.params as { cursor?: unknown } | undefined)?.cursor;
    if (cursor !== undefined && typeof cursor !== 'string') return undefined;
    return { jsonrpc: '2.0', id: req.id, result: { tools: this.tools } };
  }
}
