/**
 * The audit log (issue 5): one JSON line per mutating tool call, with time, tool, arguments
 * (Secret values masked), target and result, written to a sink: `stderr` (default), a file path
 * (appended), or `off`.
 */
import { appendFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { MASK, maskErrorText, maskSecrets } from './policy.js';
import { currentCaller } from './kube.js';

/** One audit record before it is stamped with the time. */
export interface AuditRecord {
  tool: string;
  args: Record<string, unknown>;
  target?: string;
  result: 'ok' | 'error';
  error?: string;
}

/**
 * Whether a kind as a client spelled it resolves to core Secrets, decided as the gateway
 * resolves kinds (kube.ts `resolve`: trimmed, case-insensitive, `kind/name`, `kind.group`):
 * `Secret`, ` secrets `, `SECRET/creds`, `secrets.` and `Secret.v1` all count. A kind that is
 * not a string cannot be decided and counts as a Secret.
 */
export function isSecretKind(kind: unknown): boolean {
  if (kind === undefined || kind === null) return false;
  if (typeof kind !== 'string') return true;
  const head = kind.trim().split('/')[0]!.split('.')[0]!.trim().toLowerCase();
  return head === 'secret' || head === 'secrets';
}

/** Every string leaf of a value (the values a Secret document carries, to scrub from error text). */
function leaves(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) leaves(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) leaves(x, out);
  return out;
}

/** Marks parsed documents (and v1 List items) whose kind resolves to Secret as `kind: Secret`, so maskSecrets masks them. */
function normalizeKinds(v: unknown, secrets: unknown[]): unknown {
  if (Array.isArray(v)) return v.map((x) => normalizeKinds(x, secrets));
  if (!v || typeof v !== 'object') return v;
  const o = { ...(v as Record<string, unknown>) };
  if ('kind' in o && isSecretKind(o.kind)) {
    o.kind = 'Secret';
    secrets.push(v);
  }
  if (Array.isArray(o.items)) o.items = normalizeKinds(o.items, secrets);
  return o;
}

/**
 * Masks Secret values in tool arguments, deciding Secret-ness on the parsed documents and the
 * kind as the gateway would resolve it, never on the text (issue 9, item 5): manifests (YAML or
 * JSON text, any quoting, escapes or tags), objects, and the `patch` of a `kind` that resolves to
 * Secret. Text that does not parse as YAML cannot be decided and is masked whole. Returns the
 * masked arguments and the values that were masked (to scrub from error text).
 */
export function maskArgsWithValues(args: Record<string, unknown>): { args: Record<string, unknown>; values: string[] } {
  const out: Record<string, unknown> = {};
  const secrets: unknown[] = [];
  for (const [k, v] of Object.entries(args ?? {})) {
    if (typeof v === 'string' && /[\n:{[]/.test(v)) {
      try {
        const parsed = parseAllDocuments(v);
        if (parsed.some((d) => d.errors.length > 0)) {
          out[k] = MASK;
          secrets.push(v);
          continue;
        }
        const json = parsed.map((d) => d.toJSON() as unknown);
        if (json.every((d) => !d || typeof d !== 'object')) {
          out[k] = v; // a plain string (an image, a name), not a document
          continue;
        }
        const docs = json.map((d) => maskSecrets(normalizeKinds(d, secrets), false));
        out[k] = docs.length === 1 ? docs[0] : docs;
      } catch {
        out[k] = MASK;
        secrets.push(v);
      }
    } else if (v && typeof v === 'object') {
      out[k] = maskSecrets(normalizeKinds(v, secrets), false);
    } else out[k] = v;
  }
  // A patch of a Secret may carry values in any shape: mask it whole.
  if (isSecretKind(args?.kind) && args?.kind !== undefined && 'patch' in out) {
    secrets.push(args.patch);
    out.patch = MASK;
  }
  const values = [
    ...new Set(
      secrets
        .flatMap((s) => leaves(s))
        .flatMap((x) => x.split(/\r?\n/))
        .map((x) => x.trim())
        .filter((x) => x.length >= 4),
    ),
  ];
  return { args: out, values };
}

/** Masks Secret values in tool arguments (see maskArgsWithValues). */
export function maskArgs(args: Record<string, unknown>): Record<string, unknown> {
  return maskArgsWithValues(args).args;
}

/**
 * Masks an error for the audit log: its first line only (YAML errors quote the source lines
 * after it), JSON objects in it masked by kind, and every value the arguments' Secrets carry.
 */
export function maskAuditError(error: string, args: Record<string, unknown>): string {
  const { values } = maskArgsWithValues(args);
  const first = error.split('\n')[0]!;
  return maskErrorText(first, isSecretKind(args?.kind) && args?.kind !== undefined, values);
}

/** The audit sink. */
export class Audit {
  constructor(private readonly sink: string = 'stderr') {}

  /**
   * Writes one JSON line for a mutating call; never throws (a failing sink is reported on stderr).
   * Acting as a caller (--impersonate), the line names it: `user`, `groups`.
   */
  record(r: AuditRecord): void {
    if (this.sink === 'off') return;
    const caller = currentCaller();
    const line =
      JSON.stringify({
        time: new Date().toISOString(),
        audit: true,
        ...(caller ? { user: caller.username, groups: caller.groups } : {}),
        ...r,
        args: maskArgs(r.args),
        ...(r.error !== undefined ? { error: maskAuditError(r.error, r.args) } : {}),
      }) + '\n';
    try {
      if (this.sink === 'stderr') process.stderr.write(line);
      else appendFileSync(this.sink, line);
    } catch (err) {
      process.stderr.write(`audit sink ${this.sink} failed: ${(err as Error).message}\n`);
    }
  }
}
