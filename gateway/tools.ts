/**
 * Per-tool access in the gateway (issue 17, `spec.auth.tools`): which tools a verified caller may
 * see and call. Unset, every caller the access layer lets in (./access.ts) may call every tool.
 * Set, a caller sees in `tools/list` and may call with `tools/call` only the tools named by the
 * rules that name it: its username, one of its groups, or its ServiceAccount as `<namespace>/<name>`
 * (username `system:serviceaccount:<namespace>:<name>`, Kubernetes' ServiceAccount user names);
 * a rule without subjects names every caller, and the tool name `*` means every tool. A refused
 * `tools/call` is answered by the gateway with a JSON-RPC error naming the tool and never reaches
 * the server (agentgateway's and ToolHive's tool filters do the same in front of a server).
 *
 * Pure logic: {@link ToolPolicy} decides; {@link filterToolsListBody} rewrites a `tools/list`
 * answer (one JSON body or an SSE stream, MCP 2025-11-25 Transports > Streamable HTTP).
 */
import type { Identity } from './auth/tokenreview.js';

/** One rule of `spec.auth.tools`. */
export interface ToolRule {
  /** Tool names, or `*` for every tool. */
  names: string[];
  users?: string[];
  groups?: string[];
  /** `<namespace>/<name>`. */
  serviceAccounts?: string[];
}

/** What a caller may use: every tool, or the named ones. */
export type ToolGrant = { all: true } | { all: false; names: ReadonlySet<string> };

/** The JSON-RPC error code of a refused `tools/call` (the gateway's refusals use -32001). */
export const TOOL_FORBIDDEN_CODE = -32001;

/**
 * Decides per-tool access from the rules of `spec.auth.tools`.
 * @throws Error from {@link ToolPolicy.parse} when the JSON is not a list of rules.
 */
export class ToolPolicy {
  constructor(private readonly rules: readonly ToolRule[]) {}

  /**
   * Parses `--tool-policy` (the JSON the operator renders from `spec.auth.tools`).
   * @throws Error saying what is wrong with it.
   */
  static parse(json: string): ToolPolicy {
    let v: unknown;
    try {
      v = JSON.parse(json);
    } catch {
      throw new Error('--tool-policy is not JSON');
    }
    const strings = (x: unknown) => x === undefined || (Array.isArray(x) && x.every((s) => typeof s === 'string'));
    if (
      !Array.isArray(v) ||
      !v.every(
        (r: Record<string, unknown>) =>
          r &&
          typeof r === 'object' &&
          Array.isArray(r.names) &&
          strings(r.names) &&
          strings(r.users) &&
          strings(r.groups) &&
          strings(r.serviceAccounts),
      )
    )
      throw new Error(
        '--tool-policy must be a JSON list of {names, users?, groups?, serviceAccounts?} with string lists',
      );
    return new ToolPolicy(v as ToolRule[]);
  }

  /** The tools `identity` may see and call (`undefined`: an anonymous caller of mode none, who is named by subject-less rules only). */
  grant(identity: Identity | undefined): ToolGrant {
    const names = new Set<string>();
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(identity?.username ?? '');
    const saRef = sa ? `${sa[1]}/${sa[2]}` : undefined;
    for (const r of this.rules) {
      const subjectless = !r.users?.length && !r.groups?.length && !r.serviceAccounts?.length;
      const named =
        subjectless ||
        (identity !== undefined &&
          ((r.users ?? []).includes(identity.username) ||
            (r.groups ?? []).some((g) => identity.groups.includes(g)) ||
            (saRef !== undefined && (r.serviceAccounts ?? []).includes(saRef))));
      if (!named) continue;
      if (r.names.includes('*')) return { all: true };
      for (const n of r.names) names.add(n);
    }
    return { all: false, names };
  }
}

/** Whether `grant` allows tool `name`. */
export function allows(grant: ToolGrant, name: string): boolean {
  return grant.all || grant.names.has(name);
}

/**
 * The `tools/call` messages of a JSON-RPC body (one message or a batch) that `grant` refuses:
 * their ids and tool names. A call without a string `params.name` is refused too (named `""`).
 */
export function refusedCalls(body: unknown, grant: ToolGrant): Array<{ id: unknown; name: string }> {
  if (grant.all) return [];
  const out: Array<{ id: unknown; name: string }> = [];
  for (const m of Array.isArray(body) ? body : [body]) {
    const o = (m && typeof m === 'object' ? m : {}) as { method?: unknown; id?: unknown; params?: { name?: unknown } };
    if (o.method !== 'tools/call') continue;
    const name = typeof o.params?.name === 'string' ? o.params.name : '';
    if (!allows(grant, name)) out.push({ id: o.id ?? null, name });
  }
  return out;
}

/** The ids of the `tools/list` requests in a JSON-RPC body (one message or a batch). */
export function toolsListIds(body: unknown): unknown[] {
  const out: unknown[] = [];
  for (const m of Array.isArray(body) ? body : [body]) {
    const o = (m && typeof m === 'object' ? m : {}) as { method?: unknown; id?: unknown };
    if (o.method === 'tools/list' && o.id !== undefined) out.push(o.id);
  }
  return out;
}

/**
 * `message` with `result.tools` reduced to what `grant` allows when it answers one of `ids`
 * (JSON-RPC ids compared by value); any other message unchanged (the same object).
 */
export function filterToolsListMessage<T>(message: T, ids: readonly unknown[], grant: ToolGrant): T {
  if (grant.all || !message || typeof message !== 'object') return message;
  const m = message as { id?: unknown; result?: { tools?: unknown } };
  if (!ids.some((id) => id === m.id) || !m.result || !Array.isArray(m.result.tools)) return message;
  const tools = (m.result.tools as Array<{ name?: unknown }>).filter(
    (t) => typeof t?.name === 'string' && allows(grant, t.name),
  );
  return { ...m, result: { ...m.result, tools } } as T;
}

/**
 * Rewrites a whole `tools/list` answer body: `application/json` (one message or a batch) or
 * `text/event-stream` (each event's `data` is one JSON-RPC message; other fields kept). A body
 * that does not parse is returned unchanged only when it holds no tool list at all; otherwise
 * (a malformed event with `"tools"` in it) undefined, and the caller answers with an error rather
 * than pass an unfiltered list.
 */
export function filterToolsListBody(
  contentType: string,
  body: string,
  ids: readonly unknown[],
  grant: ToolGrant,
): string | undefined {
  if (grant.all || !ids.length) return body;
  if (/^application\/json/i.test(contentType)) {
    try {
      const v = JSON.parse(body) as unknown;
      const out = Array.isArray(v)
        ? v.map((m) => filterToolsListMessage(m, ids, grant))
        : filterToolsListMessage(v, ids, grant);
      return JSON.stringify(out);
    } catch {
      return body.includes('"tools"') ? undefined : body;
    }
  }
  if (/^text\/event-stream/i.test(contentType)) {
    const events = body.split(/\r?\n\r?\n/);
    const out: string[] = [];
    for (const ev of events) {
      const lines = ev.split(/\r?\n/);
      const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
      if (!data.length) {
        out.push(ev);
        continue;
      }
      let msg: unknown;
      try {
        msg = JSON.parse(data.join('\n'));
      } catch {
        if (data.join('\n').includes('"tools"')) return undefined;
        out.push(ev);
        continue;
      }
      const filtered = filterToolsListMessage(msg, ids, grant);
      if (filtered === msg) {
        out.push(ev);
        continue;
      }
      out.push([...lines.filter((l) => !l.startsWith('data:')), `data: ${JSON.stringify(filtered)}`].join('\n'));
    }
    return out.join('\n\n');
  }
  return body.includes('"tools"') ? undefined : body;
}

/** The JSON-RPC error of a refused `tools/call` (the message names the tool and the caller). */
export function toolRefusal(id: unknown, name: string, identity: Identity | undefined): object {
  return {
    jsonrpc: '2.0',
    id: id ?? null,
    error: {
      code: TOOL_FORBIDDEN_CODE,
      message: `Forbidden: ${identity?.username ?? 'system:anonymous'} may not call tool "${name}" of this MCPServer (spec.auth.tools)`,
    },
  };
}
