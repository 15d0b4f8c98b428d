/**
 * Small output (issue 5, "Small output by default"): compact objects (no managedFields, no
 * last-applied annotation), the apiserver's Table rendering as aligned text columns, relative
 * ages, and the response size budget with its "truncated, narrow with ..." message.
 */
import { stringify } from 'yaml';
import { LAST_APPLIED } from './policy.js';
import type { Table } from './kube-types.js';

/** Default response budget in characters of text (about 6k tokens); `--max-output` changes it. */
export { DEFAULT_BUDGET } from './budget.js';

/** A copy of a Kubernetes object without `metadata.managedFields` and the last-applied annotation. */
export function compact<T>(obj: T): T {
  if (!obj || typeof obj !== 'object') return obj;
  const o = { ...(obj as Record<string, unknown>) };
  const meta = o.metadata as Record<string, unknown> | undefined;
  if (meta && typeof meta === 'object') {
    const { managedFields: _m, ...m } = meta;
    const ann = m.annotations as Record<string, string> | undefined;
    if (ann && LAST_APPLIED in ann) {
      const { [LAST_APPLIED]: _l, ...rest } = ann;
      if (Object.keys(rest).length) m.annotations = rest;
      else delete m.annotations;
    }
    o.metadata = m;
  }
  if (Array.isArray(o.items)) o.items = o.items.map((i) => compact(i));
  return o as T;
}

/** YAML of a value (2-space indent, no line folding). */
export function toYaml(v: unknown): string {
  return stringify(v, { lineWidth: 0 });
}

/** Relative age like kubectl: 45s, 12m, 5h, 3d, 2y. */
export function age(ts: string | undefined, now = Date.now()): string {
  if (!ts) return '<unknown>';
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return ts;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  return d < 730 ? `${d}d` : `${Math.floor(d / 365)}y`;
}

/** A compact table: column names and rows of strings. */
export interface TextTable {
  columns: string[];
  rows: string[][];
}

/**
 * Turns a meta.k8s.io/v1 Table into a TextTable: priority-0 columns only, `date` cells as ages,
 * a NAMESPACE column first when `withNamespace` (rows' object metadata gives it).
 */
export function fromApiTable(table: Table, withNamespace: boolean): TextTable {
  const defs = table.columnDefinitions ?? [];
  const keep = defs.map((d, i) => ({ d, i })).filter(({ d }) => !d.priority);
  const columns = [...(withNamespace ? ['NAMESPACE'] : []), ...keep.map(({ d }) => d.name.toUpperCase())];
  const rows = (table.rows ?? []).map((r) => {
    const cells = keep.map(({ d, i }) => cellText(r.cells?.[i], d.type));
    return withNamespace ? [r.object?.metadata?.namespace ?? '', ...cells] : cells;
  });
  return { columns, rows };
}

function cellText(v: unknown, type: string): string {
  if (v === null || v === undefined) return '<none>';
  if (type === 'date' && typeof v === 'string') return age(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Renders a TextTable as space-aligned columns (like `kubectl get`). */
export function renderTable(t: TextTable): string {
  if (t.rows.length === 0) return '';
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(t.columns), ...t.rows.map(line)].join('\n');
}

/** The text of a table cut to `budget` characters by whole rows, and how many rows were kept. */
export function budgetTable(t: TextTable, budget: number): { text: string; shown: number } {
  let text = renderTable(t);
  if (text.length <= budget) return { text, shown: t.rows.length };
  let lo = 0;
  let hi = t.rows.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (renderTable({ columns: t.columns, rows: t.rows.slice(0, mid) }).length <= budget) lo = mid;
    else hi = mid - 1;
  }
  text = renderTable({ columns: t.columns, rows: t.rows.slice(0, lo) });
  return { text, shown: lo };
}

/** The standard "truncated" notice, naming how to narrow the query. */
export function truncatedNote(what: string, hint: string): string {
  return `\n[truncated: ${what}. Narrow with ${hint}.]`;
}

/** Cuts text to `budget` characters (keeping the end when `tail`), and says whether it cut. */
export function budgetText(text: string, budget: number, tail = false): { text: string; cut: boolean } {
  if (text.length <= budget) return { text, cut: false };
  return { text: tail ? text.slice(text.length - budget) : text.slice(0, budget), cut: true };
}
