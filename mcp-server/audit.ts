/**
 * The audit log (issue 5): one JSON line per mutating tool call, with time, tool, arguments
 * (Secret values masked), target and result, written to a sink: `stderr` (default), a file path
 * (appended), or `off`.
 */
import { appendFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { MASK, maskSecrets } from './policy.js';

/** One audit record before it is stamped with the time. */
export interface AuditRecord {
  tool: string;
  args: Record<string, unknown>;
  target?: string;
  result: 'ok' | 'error';
  error?: string;
}

/** Masks Secret values in tool arguments: manifests (YAML/JSON text or objects) and `stringData`/`data` maps of Secrets. */
export function maskArgs(args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args ?? {})) {
    if (typeof v === 'string' && /\bkind:\s*"?Secret\b|"kind"\s*:\s*"Secret"/i.test(v)) {
      try {
        const docs = parseAllDocuments(v).map((d) => maskSecrets(d.toJSON(), false));
        out[k] = docs.length === 1 ? docs[0] : docs;
      } catch {
        out[k] = MASK;
      }
    } else if (v && typeof v === 'object') {
      out[k] = maskSecrets(v, false);
    } else out[k] = v;
  }
  // A patch of a Secret may carry values in any shape: mask it whole.
  if (typeof args?.kind === 'string' && /^secrets?$/i.test(args.kind.split(/[./]/)[0] ?? '') && 'patch' in out) out.patch = MASK;
  return out;
}

/** The audit sink. */
export class Audit {
  constructor(private readonly sink: string = 'stderr') {}

  /** Writes one JSON line for a mutating call; never throws (a failing sink is reported on stderr). */
  record(r: AuditRecord): void {
    if (this.sink === 'off') return;
    const line = JSON.stringify({ time: new Date().toISOString(), audit: true, ...r, args: maskArgs(r.args) }) + '\n';
    try {
      if (this.sink === 'stderr') process.stderr.write(line);
      else appendFileSync(this.sink, line);
    } catch (err) {
      process.stderr.write(`audit sink ${this.sink} failed: ${(err as Error).message}\n`);
    }
  }
}
