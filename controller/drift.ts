/**
 * Deciding whether a child needs a server-side apply, without a write.
 *
 * A child is applied when (1) the desired object differs from what this field manager last
 * applied, recorded as a hash in the {@link APPLIED_HASH_ANNOTATION} annotation that is part of
 * every apply (this catches spec changes, including fields that disappear from the desired
 * object), or (2) the live object no longer holds a value the desired object sets (someone edited
 * or removed a field the controller owns). Fields that others add are not compared, so they
 * survive, as server-side apply intends
 * (https://kubernetes.io/docs/reference/using-api/server-side-apply/).
 */
import { createHash } from 'node:crypto';
import { quantityValue } from '../charts/api/quantity.js';

/** Annotation carrying the hash of the desired object as last applied by the controller. */
export const APPLIED_HASH_ANNOTATION = 'mcp.example.com/applied-hash';

/** A JSON value: the plain objects (desired and live) that drift detection compares. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * List merge keys of the lists in our children (the `x-kubernetes-list-map-keys` of
 * Deployment, Service and ConfigMap in the Kubernetes OpenAPI); other lists are atomic.
 */
const LIST_KEYS: Record<string, string[]> = {
  containers: ['name'],
  initContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  ports: ['containerPort', 'port'],
  ownerReferences: ['uid'],
};

/** Stable hash (hex, 16 chars) of a JSON value, independent of key order. */
export function hashOf(value: unknown): string {
  return createHash('sha256').update(stableStringify(value)).digest('hex').slice(0, 16);
}

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Whether a path holds a resource.Quantity (container resources, resourceFieldRef divisor). */
const isQuantityPath = (path: string) => /\.resources\.(requests|limits)\.[^.]+$|\.divisor$/.test(path);

function scalarEqual(a: Json, b: Json, path = ''): boolean {
  if (a === b) return true;
  // The apiserver canonicalizes quantities ("0.5" -> "500m", "1000m" -> "1").
  if (
    isQuantityPath(path) &&
    (typeof a === 'string' || typeof a === 'number') &&
    (typeof b === 'string' || typeof b === 'number')
  ) {
    try {
      return quantityValue(a) === quantityValue(b);
    } catch {
      return String(a) === String(b);
    }
  }
  return false;
}

/**
 * The first path where `live` does not hold a value `desired` sets, or undefined when it holds
 * them all. Objects are compared key by key (extra live keys ignored); keyed lists element by
 * merge key (extra live elements ignored); other lists as a whole.
 */
export function firstDifference(desired: Json, live: Json | undefined, path = '', field = ''): string | undefined {
  if (desired === null || typeof desired !== 'object') {
    return live !== undefined && live !== null && typeof live !== 'object' && scalarEqual(desired, live, path)
      ? undefined
      : path || '<root>';
  }
  if (Array.isArray(desired)) {
    if (!Array.isArray(live)) return path;
    const keys = LIST_KEYS[field];
    const first = desired[0];
    const keyed =
      keys && first && typeof first === 'object' && !Array.isArray(first) ? keys.filter((k) => k in first) : [];
    if (keyed.length === 0) {
      if (desired.length !== live.length) return path;
      for (let i = 0; i < desired.length; i++) {
        const d = firstDifference(desired[i]!, live[i], `${path}[${i}]`, field);
        if (d) return d;
      }
      return undefined;
    }
    for (const item of desired as Array<Record<string, Json>>) {
      const match = (live as Array<Record<string, Json>>).find(
        (l) => l && keyed.every((k) => scalarEqual(item[k]!, l[k]!)),
      );
      const label = keyed.map((k) => `${k}=${String(item[k])}`).join(',');
      if (!match) return `${path}[${label}]`;
      const d = firstDifference(item, match, `${path}[${label}]`, field);
      if (d) return d;
    }
    return undefined;
  }
  if (!live || typeof live !== 'object' || Array.isArray(live)) return path || '<root>';
  for (const [k, v] of Object.entries(desired)) {
    if (v === undefined) continue;
    const d = firstDifference(v, (live as Record<string, Json>)[k], path ? `${path}.${k}` : k, k);
    if (d) return d;
  }
  return undefined;
}

/** Why a child must be applied (`created`, `spec changed`, `drift at <path>`), or undefined when it is up to date. */
export function applyReason(
  desired: Record<string, unknown>,
  live: Record<string, unknown> | undefined,
): string | undefined {
  if (!live) return 'created';
  const annotations = (live.metadata as { annotations?: Record<string, string> } | undefined)?.annotations;
  const wanted = ((desired.metadata as { annotations?: Record<string, string> }).annotations ?? {})[
    APPLIED_HASH_ANNOTATION
  ];
  if (annotations?.[APPLIED_HASH_ANNOTATION] !== wanted) return 'desired state changed';
  const diff = firstDifference(desired as Json, live as Json);
  return diff ? `drift at ${diff}` : undefined;
}

/** A keyed list of a live child that holds entries the desired object does not have. */
export interface ForeignEntries {
  /** JSON pointer (RFC 6901) of the list in the live object, e.g. `/spec/template/spec/containers/0/env`. */
  pointer: string;
  /** Readable path with merge keys, e.g. `spec.template.spec.containers[name=mcp-server].env`. */
  path: string;
  /** The foreign entries by merge key, e.g. `name=FOO`. */
  entries: string[];
}

/** Keyed lists the controller enforces entry by entry (object metadata, e.g. ownerReferences, is left alone). */
const ENFORCED_LISTS = new Set(['containers', 'initContainers', 'env', 'volumes', 'volumeMounts', 'ports']);

/**
 * Finds, in the keyed lists the desired object sets (Service ports; containers, their ports, env
 * and volumeMounts; volumes), live entries the desired object does not have, and computes the
 * live object with those lists made exactly the desired entries.
 *
 * Why: server-side apply with `force` takes over *fields* from other managers but never removes
 * list entries another manager owns (https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy),
 * so a foreign `ports` entry named `mcp` makes every apply fail (422 Duplicate value) and a foreign
 * env entry or container stays forever. The caller replaces the returned lists with a JSON patch
 * that tests the resourceVersion, then applies.
 *
 * @returns the lists to replace (a list with foreign entries; a list inside it is part of its
 *   value, so it is not listed apart) with their corrected values taken from `corrected`, or an empty list when none.
 *   Corrected lists keep each live entry that matches a desired one (with its defaulted fields and
 *   its own nested lists corrected) in desired order, and take the desired entry where the live
 *   one is missing.
 */
export function foreignListEntries(
  desired: Json,
  live: Json,
): { found: ForeignEntries[]; replace: Array<{ pointer: string; value: Json }> } {
  const found: ForeignEntries[] = [];
  const changed: Array<{ pointer: string; value: Json }> = [];
  const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

  const walk = (d: Json, l: Json, field: string, path: string, pointer: string): Json => {
    if (d === null || typeof d !== 'object' || l === null || typeof l !== 'object') return l;
    if (Array.isArray(d)) {
      if (!Array.isArray(l)) return l;
      const keys = ENFORCED_LISTS.has(field) ? LIST_KEYS[field] : undefined;
      const first = d[0];
      const keyed =
        keys && first && typeof first === 'object' && !Array.isArray(first) ? keys.filter((k) => k in first) : [];
      if (keyed.length === 0) return l;
      const same = (a: Record<string, Json>, b: Record<string, Json>) => keyed.every((k) => scalarEqual(a[k]!, b[k]!));
      const label = (e: Record<string, Json>) => keyed.map((k) => `${k}=${String(e[k])}`).join(',');
      const liveItems = l as Array<Record<string, Json>>;
      const extra = liveItems.filter((li) => li && !(d as Array<Record<string, Json>>).some((di) => same(di, li)));
      const value = (d as Array<Record<string, Json>>).map((di) => {
        const index = liveItems.findIndex((li) => li && same(di, li));
        return index < 0 ? di : walk(di, liveItems[index]!, field, `${path}[${label(di)}]`, `${pointer}/${index}`);
      });
      if (extra.length) {
        found.push({ pointer, path, entries: extra.map(label) });
        // This list is replaced as a whole: drop the replacements of lists inside it.
        for (let i = changed.length - 1; i >= 0; i--)
          if (changed[i]!.pointer.startsWith(`${pointer}/`)) changed.splice(i, 1);
        changed.push({ pointer, value });
      }
      return value;
    }
    if (Array.isArray(l)) return l;
    const out: Record<string, Json> = { ...(l as Record<string, Json>) };
    for (const [k, v] of Object.entries(d)) {
      if (v === undefined || !(k in out)) continue;
      out[k] = walk(v, out[k]!, k, path ? `${path}.${k}` : k, `${pointer}/${esc(k)}`);
    }
    // An enforced list the desired object does not set at all (the initContainers of a bridged
    // stdio server that lost its command, a container's ports after a switch to stdio): every
    // live entry is extra. Left alone, removing the volumes they mount would make the object invalid.
    for (const [k, lv] of Object.entries(out)) {
      const keys = LIST_KEYS[k];
      if (
        (d as Record<string, Json>)[k] !== undefined ||
        !ENFORCED_LISTS.has(k) ||
        !keys ||
        !Array.isArray(lv) ||
        lv.length === 0
      )
        continue;
      const label = (e: Json) =>
        keys
          .filter((x) => e && typeof e === 'object' && x in (e as object))
          .map((x) => `${x}=${String((e as Record<string, Json>)[x])}`)
          .join(',');
      const at = `${pointer}/${esc(k)}`;
      found.push({ pointer: at, path: path ? `${path}.${k}` : k, entries: lv.map(label) });
      changed.push({ pointer: at, value: [] });
      out[k] = [];
    }
    return out;
  };

  const spec = (desired as { spec?: Json } | null)?.spec;
  const liveSpec = (live as { spec?: Json } | null)?.spec;
  if (spec !== undefined && liveSpec !== undefined) walk(spec, liveSpec, 'spec', 'spec', '/spec');
  return { found, replace: changed };
}
