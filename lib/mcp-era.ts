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
