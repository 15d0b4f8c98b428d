/**
 * The JSON side of kubemcp's two HTTP servers, `kubemcp serve` (./http.ts) and `kubemcp bridge`
 * (./bridge/http.ts): JSON (or plain text) answers, JSON-RPC error answers with `id: null` (JSON-RPC
 * 2.0, section 5.1), a request body read with a byte bound, and the session lookup of GET and
 * DELETE on /mcp (MCP spec, Streamable HTTP, "Session Management").
 */
import type * as http from 'node:http';

/**
 * Answers `status` with `body`: a string as text/plain, anything else as JSON. Does nothing once
 * headers were sent (a transport already answered).
 */
export function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    ...headers,
  });
  res.end(text);
}

/** Answers `status` with a JSON-RPC error object `{ code, message }` and `id: null`. */
export function rpcError(
  res: http.ServerResponse,
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  send(res, status, { jsonrpc: '2.0', error: { code, message }, id: null }, headers);
}

/**
 * Reads the request body.
 * @param limit most bytes accepted.
 * @returns the body, or `'too-large'` as soon as more than `limit` bytes arrived (the rest is not read).
 */
export async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) return 'too-large';
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/**
 * The session a GET or DELETE on /mcp names by its `Mcp-Session-Id` header (`sid`), marked as seen
 * now; or, when there is none, answers 400 (no header) or 404 "Session not found" (unknown id, so
 * the client starts a new session, as the MCP spec asks) and returns undefined. A session that is not
 * `visible` to this caller (another caller's, gateway/http.ts) is answered as unknown.
 */
export function sessionFor<S extends { seen: number }>(
  res: http.ServerResponse,
  sid: string | undefined,
  sessions: ReadonlyMap<string, S>,
  visible: (s: S) => boolean = () => true,
): S | undefined {
  const s = sid ? sessions.get(sid) : undefined;
  if (!s || !visible(s)) {
    rpcError(
      res,
      sid ? 404 : 400,
      sid ? -32001 : -32000,
      sid ? 'Session not found' : 'Bad Request: Mcp-Session-Id header required',
    );
    return undefined;
  }
  s.seen = Date.now();
  return s;
}
