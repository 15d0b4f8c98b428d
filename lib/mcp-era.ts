/**
 * Telling an MCP 2026-07-28 request from a 2025-era one without loading an SDK: shared by the
 * gateway (gateway/eras.ts, in front of 2025-era servers) and `kubemcp serve` (mcp-server/modern.ts),
 * so that 2025-era traffic never loads the SDK v2 at all.
 */

/** The `_meta` key every MCP 2026-07-28 request carries (its protocol version; the spec's request envelope). */
export const MODERN_ENVELOPE_KEY = 'io.modelcontextprotocol/protocolVersion';

/**
 * Whether a JSON-RPC body may be an MCP 2026-07-28 request: one message (not a batch) that is
 * `server/discover` or carries {@link MODERN_ENVELOPE_KEY} in `params._meta`. A cheap first look
 * (no SDK loaded) before the SDK's own `isLegacyRequest` decides.
 */
export function looksModern(body: unknown): boolean {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return false;
  const m = body as { method?: unknown; params?: { _meta?: unknown } };
  if (m.method === 'server/discover') return true;
  const meta = m.params?._meta;
  return !!meta && typeof meta === 'object' && MODERN_ENVELOPE_KEY in meta;
}

/**
 * Whether a JSON-RPC body is a 2025-era `initialize` request: one message (not a batch; the
 * 2025-06-18 and later revisions removed batching) with `method: "initialize"` and an `id`. The
 * gateway's drain refuses these (a new session) without loading an SDK: `@modelcontextprotocol/sdk`'s
 * `isInitializeRequest` parses with zod, ~10 MiB of the reverse proxy's idle RSS (docs/gateway.md,
 * "Speed and memory"). Broader than the SDK's check (params are not validated), which is the safe
 * side for a refusal: a malformed initialize would be refused upstream anyway.
 */
export function isInitializeMessage(body: unknown): boolean {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return false;
  const m = body as { method?: unknown; id?: unknown };
  return m.method === 'initialize' && (typeof m.id === 'string' || typeof m.id === 'number');
}
