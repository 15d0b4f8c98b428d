/**
 * Helm's release storage, read natively (issue 19, "Helm releases, read-only and native"): no
 * helm binary. Helm v3 and v4 keep each revision of a release in a Secret of type
 * {@link HELM_RELEASE_TYPE} named `sh.helm.release.v1.<release>.v<revision>`, labelled `owner=helm`,
 * `name`, `status`, `version` (and `createdAt`/`modifiedAt`), whose `data.release` holds
 * base64(gzip(JSON of the release)) (helm/helm pkg/storage/driver/secrets.go newSecretsObject,
 * pkg/storage/driver/util.go encodeRelease/decodeRelease, pkg/storage/storage.go makeKey). As a
 * Secret's data, that text travels base64-encoded once more.
 *
 * A release holds the rendered manifest, and the manifest often holds Secrets: {@link maskRelease}
 * masks their `data`/`stringData` where they stand, and every copy of those values elsewhere in
 * the release (user values, chart defaults, notes, other manifests), as policy.ts masks live
 * Secrets. The gateway (kube.ts `helmRelease`) is the only caller that reads the Secret itself.
 */
import { gunzipSync } from 'node:zlib';
import { isMap, parseAllDocuments } from 'yaml';
import { MASK, maskSecrets, secretValues } from './policy.js';
import { toYaml } from './format.js';

/** The `type` of Helm 3/4 release Secrets (helm/helm pkg/storage/driver/secrets.go). */
export const HELM_RELEASE_TYPE = 'helm.sh/release.v1';
/** Label selector of Helm's storage objects (`owner=helm`, as Helm's Secrets driver lists them). */
export const HELM_OWNER_SELECTOR = 'owner=helm';
/** Largest decompressed release JSON read, in bytes (a gzip bomb stops here). */
export const MAX_RELEASE_BYTES = 32 * 1024 * 1024;
/** Helm's release names: DNS-1123 subdomain, at most 53 characters (helm/helm pkg/chartutil ValidateReleaseName). */
const RELEASE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Whether `name` is a valid Helm release name (so it is safe in a label selector). */
export function validReleaseName(name: string): boolean {
  return name.length <= 53 && RELEASE_NAME.test(name);
}

/** The storage Secret's name of one revision: `sh.helm.release.v1.<release>.v<revision>` (helm/helm pkg/storage/storage.go makeKey). */
export function helmSecretName(release: string, revision: number): string {
  return `sh.helm.release.v1.${release}.v${revision}`;
}

/**
 * One revision of a release, the fields the tools show (Helm's pkg/release Release, Info and
 * chart Metadata, JSON names in the comments). Hooks, chart templates and files are dropped.
 */
export interface HelmRelease {
  name: string;
  namespace: string;
  /** `version`: the revision number. */
  revision: number;
  /** `info.status`: deployed, superseded, failed, uninstalled, pending-install, ... */
  status: string;
  /** `info.first_deployed` / `info.last_deployed`, RFC 3339 as Go writes them ('' when absent). */
  firstDeployed: string;
  lastDeployed: string;
  /** `info.description`, e.g. "Install complete". */
  description: string;
  /** `info.notes`: the rendered NOTES.txt. */
  notes: string;
  /** `chart.metadata.name` / `.version` / `.appVersion`. */
  chart: { name: string; version: string; appVersion: string };
  /** `chart.values`: the chart's default values. */
  chartValues: Record<string, unknown>;
  /** `config`: the values the user supplied. */
  config: Record<string, unknown>;
  /** `manifest`: the rendered manifests, YAML documents. */
  manifest: string;
}

/**
 * Decodes a release Secret's `data.release` as the apiserver returns it (base64 of Helm's base64
 * text), gunzipping when the bytes start with gzip's magic `1f 8b 08` (releases stored before
 * Helm compressed them are plain JSON; helm/helm decodeRelease).
 * @throws Error when the text is not base64, the gzip stream is broken or inflates past
 *   {@link MAX_RELEASE_BYTES}, or the result is not a JSON object.
 */
export function decodeRelease(wire: string): unknown {
  const b64 = /^[A-Za-z0-9+/]*={0,2}$/;
  const outer = wire.replace(/\s+/g, '');
  if (!b64.test(outer)) throw new Error('data.release is not base64');
  const inner = Buffer.from(outer, 'base64').toString('latin1').replace(/\s+/g, '');
  if (!b64.test(inner)) throw new Error('data.release does not hold base64 text');
  let bytes = Buffer.from(inner, 'base64');
  if (bytes.length > 3 && bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[2] === 0x08) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: MAX_RELEASE_BYTES });
    } catch (err) {
      throw new Error(`data.release does not inflate within ${MAX_RELEASE_BYTES} bytes: ${(err as Error).message}`);
    }
  }
  let rel: unknown;
  try {
    rel = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('data.release is not a JSON release');
  }
  if (!rel || typeof rel !== 'object' || Array.isArray(rel)) throw new Error('data.release is not a JSON object');
  return rel;
}

const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
/** Go's zero time (`0001-01-01T00:00:00Z`), which Helm writes for unset times, reads as ''. */
const time = (v: unknown) => (str(v).startsWith('0001-01-01') ? '' : str(v));

/**
 * The fields of a decoded release JSON the tools show ({@link HelmRelease}), and the manifests of
 * its hooks (not shown, but their Secrets' values are masked elsewhere: see maskRelease).
 */
export function releaseFields(raw: unknown): { release: HelmRelease; hookManifests: string[] } {
  const r = obj(raw);
  const info = obj(r.info);
  const chart = obj(r.chart);
  const meta = obj(chart.metadata);
  return {
    release: {
      name: str(r.name),
      namespace: str(r.namespace),
      revision: typeof r.version === 'number' ? r.version : Number(r.version) || 0,
      status: str(info.status),
      firstDeployed: time(info.first_deployed),
      lastDeployed: time(info.last_deployed),
      description: str(info.description),
      notes: str(info.notes),
      chart: { name: str(meta.name), version: str(meta.version), appVersion: str(meta.appVersion) },
      chartValues: obj(chart.values),
      config: obj(r.config),
      manifest: str(r.manifest),
    },
    hookManifests: (Array.isArray(r.hooks) ? r.hooks : []).map((h) => str(obj(h).manifest)).filter(Boolean),
  };
}

/** Values of every Secret object inside `v` (lists, nested), as policy.ts secretValues spells them. */
function valuesOfSecrets(v: unknown, out: Set<string>, depth = 0): void {
  if (depth > 20 || !v || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) valuesOfSecrets(x, out, depth + 1);
    return;
  }
  const o = v as Record<string, unknown>;
  if (o.kind === 'Secret') {
    const asText = (m: unknown) =>
      m && typeof m === 'object'
        ? Object.fromEntries(Object.entries(m as Record<string, unknown>).map(([k, x]) => [k, str(x)]))
        : m;
    for (const s of secretValues({ data: asText(o.data), stringData: asText(o.stringData) })) out.add(s);
  }
  for (const x of Object.values(o)) valuesOfSecrets(x, out, depth + 1);
}

/** Whether a manifest document's text may declare a Secret (for documents that do not parse). */
const MAY_BE_SECRET = /\bkind\s*:\s*["']?Secret\b/;

/**
 * Masks the Secrets of a manifest text (YAML documents, as Helm renders them): in each document
 * whose kind is Secret, every `data`/`stringData` value is replaced by MASK in place (the rest of
 * the text, comments included, is kept); a document holding Secrets deeper (a List) is
 * re-serialized masked (policy.ts maskSecrets); a document that does not parse but may be a
 * Secret is replaced by a comment. Returns the text and the values it masked (to mask their
 * copies elsewhere: {@link maskRelease}).
 */
export function maskManifestSecrets(text: string): { text: string; values: string[] } {
  const values = new Set<string>();
  const edits: Array<{ from: number; to: number; with: string }> = [];
  for (const doc of parseAllDocuments(text)) {
    const node = doc.contents;
    const [from, , to] = node?.range ?? doc.range;
    const source = text.slice(from, to);
    let js: unknown;
    try {
      if (doc.errors.length) throw new Error('unparsable');
      js = doc.toJS({ maxAliasCount: 100 });
    } catch {
      if (MAY_BE_SECRET.test(source))
        edits.push({ from, to, with: '# kubemcp: a document that does not parse and may be a Secret is masked\n' });
      continue;
    }
    const found = new Set<string>();
    valuesOfSecrets(js, found);
    const masked = maskSecrets(js);
    if (JSON.stringify(masked) === JSON.stringify(js) && found.size === 0) continue;
    for (const v of found) values.add(v);
    // A top-level Secret: its data/stringData values replaced where they stand, if that gives
    // exactly what the structural mask gives; anything else is re-serialized from the mask.
    const inPlace: Array<{ from: number; to: number; with: string }> = [];
    if (isMap(node) && (js as { kind?: unknown }).kind === 'Secret') {
      for (const field of ['data', 'stringData']) {
        const m = node.get(field, true);
        if (m === undefined || m === null) continue;
        if (!isMap(m)) {
          inPlace.length = 0;
          break;
        }
        for (const pair of m.items) {
          const r = (pair.value as { range?: [number, number, number] } | null)?.range;
          if (!r) continue;
          const old = text.slice(r[0], r[1]);
          inPlace.push({ from: r[0], to: r[1], with: `'${MASK}'${old.endsWith('\n') ? '\n' : ''}` });
        }
      }
    }
    const spliced = [...inPlace]
      .sort((a, b) => b.from - a.from)
      .reduce((s, e) => s.slice(0, e.from - from) + e.with + s.slice(e.to - from), source);
    let same = false;
    try {
      same =
        inPlace.length > 0 &&
        JSON.stringify(parseAllDocuments(spliced)[0]?.toJS({ maxAliasCount: 100 })) === JSON.stringify(masked);
    } catch {
      same = false;
    }
    edits.push({ from, to, with: same ? spliced : toYaml(masked) });
  }
  let out = [...edits]
    .sort((a, b) => b.from - a.from)
    .reduce((s, e) => s.slice(0, e.from) + e.with + s.slice(e.to), text);
  out = scrubText(out, [...values]);
  return { text: out, values: [...values] };
}

/** Replaces every occurrence of the values of 4+ characters in `text` by MASK (longest first). */
function scrubText(text: string, values: string[]): string {
  let out = text;
  for (const v of [...values].sort((a, b) => b.length - a.length)) if (v.length >= 4) out = out.split(v).join(MASK);
  return out;
}

/** Replaces every string (or number, by its text) that is one of `values`, or contains one of 4+ characters, by MASK. */
function scrubDeep(v: unknown, values: string[], depth = 0): unknown {
  if (values.length === 0 || depth > 100) return v;
  if (typeof v === 'string' || typeof v === 'number') {
    const s = String(v);
    return values.some((x) => s === x || (x.length >= 4 && s.includes(x))) ? MASK : v;
  }
  if (Array.isArray(v)) return v.map((x) => scrubDeep(x, values, depth + 1));
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, scrubDeep(x, values, depth + 1)]),
    );
  return v;
}

/**
 * Masks what a release holds of Secrets' data: the Secrets of its manifest
 * ({@link maskManifestSecrets}), and every copy of their values (and of the values of Secrets in
 * its hooks' manifests) in the user values, the chart's default values, the notes and the
 * description. The rule: "Secret masking still applies to values that hold a Secret's data".
 */
export function maskRelease(rel: HelmRelease, hookManifests: string[] = []): HelmRelease {
  const m = maskManifestSecrets(rel.manifest);
  const values = [...new Set([...m.values, ...hookManifests.flatMap((h) => maskManifestSecrets(h).values)])];
  return {
    ...rel,
    manifest: scrubText(m.text, values),
    notes: scrubText(rel.notes, values),
    description: scrubText(rel.description, values),
    config: scrubDeep(rel.config, values) as Record<string, unknown>,
    chartValues: scrubDeep(rel.chartValues, values) as Record<string, unknown>,
  };
}

/**
 * The values of `helm get values --all`: the user's values coalesced over the chart's defaults
 * (helm/helm pkg/chartutil CoalesceValues: maps merge key by key, the user's value wins, a user
 * `null` deletes the default key). Subcharts' defaults are not in a stored release's chart.
 */
export function coalesceValues(
  defaults: Record<string, unknown>,
  user: Record<string, unknown>,
  depth = 0,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...defaults };
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  for (const [k, v] of Object.entries(user)) {
    if (v === null) delete out[k];
    else if (isObj(v) && isObj(out[k]) && depth < 50)
      out[k] = coalesceValues(out[k] as Record<string, unknown>, v, depth + 1);
    else out[k] = v;
  }
  return out;
}
