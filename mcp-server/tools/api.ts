/**
 * API tools (issue 19): `list-api-resources`, the served resources from aggregated discovery
 * (as `kubectl api-resources -o wide`), and `explain-resource`, a field's schema and description
 * from the apiserver's OpenAPI v3 (as `kubectl explain`, which reads /openapi/v3 since 1.27;
 * k8s.io/kubectl/pkg/explain/v2). CRDs are included: their structural schemas are published in
 * OpenAPI v3 by the apiserver, MCPServer's too.
 *
 * OpenAPI documents are fetched per group-version (`/openapi/v3/apis/apps/v1`, about 0.7 MB;
 * `/api/v1` about 1.6 MB) at the `serverRelativeURL` the index gives, whose `hash` changes with the
 * content, so a small in-process cache keyed by that URL is exact (kubectl caches the same way).
 */
import { z } from 'zod';
import { apiVersionOf, type ApiResource } from '../kube.js';
import { InvalidArgumentError } from '../names.js';
import { budgetText, truncatedNote } from '../format.js';
import { contextArg, defineTool, type AnyToolDef, type ToolContext } from './registry.js';
import { resolveKind, tableResult, tableOutput } from './common.js';

/** The parts of an OpenAPI v3 schema object read here. */
interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  allOf?: Schema[];
  $ref?: string;
  enum?: unknown[];
  format?: string;
  default?: unknown;
  'x-kubernetes-group-version-kind'?: Array<{ group?: string; version?: string; kind?: string }>;
}

interface OpenApiDoc {
  components?: { schemas?: Record<string, Schema> };
}

/** Documents kept, by serverRelativeURL (hash included): the few group-versions explained lately. */
const MAX_CACHED_DOCS = 4;
const docCache = new Map<string, OpenApiDoc>();

/**
 * The OpenAPI v3 document of a group-version, through the gateway (non-resource paths
 * /openapi/v3 and /openapi/v3/{api/v1|apis/G/V}).
 * @throws KubeError when the apiserver does not serve it (404: OpenAPI v3 disabled or the
 *   group-version not published).
 */
async function openApiDoc(ctx: ToolContext, api: ApiResource, context?: string): Promise<OpenApiDoc> {
  const index = await ctx.kube.request<{ paths?: Record<string, { serverRelativeURL?: string }> }>({
    context,
    path: '/openapi/v3',
  });
  const key = api.group ? `apis/${api.group}/${api.version}` : `api/${api.version}`;
  const rel = index.paths?.[key]?.serverRelativeURL;
  if (!rel) throw new InvalidArgumentError('kind', `the apiserver publishes no OpenAPI v3 document for ${key}`);
  const u = new URL(rel, 'http://x');
  const cacheKey = `${ctx.kube.resolveContext(context)} ${u.pathname}${u.search}`;
  const hit = docCache.get(cacheKey);
  if (hit) return hit;
  const doc = await ctx.kube.request<OpenApiDoc>({
    context,
    path: u.pathname,
    query: Object.fromEntries(u.searchParams),
  });
  docCache.set(cacheKey, doc);
  while (docCache.size > MAX_CACHED_DOCS) docCache.delete(docCache.keys().next().value!);
  return doc;
}

const refName = (ref: string) => ref.replace(/^#\/components\/schemas\//, '');

/** Follows `$ref` and single-element `allOf` (how Kubernetes publishes typed fields) to the schema meant. */
function deref(s: Schema | undefined, schemas: Record<string, Schema>, depth = 0): Schema | undefined {
  if (!s || depth > 16) return s;
  if (s.$ref) {
    const target = schemas[refName(s.$ref)];
    return target ? deref({ ...target, description: s.description ?? target.description }, schemas, depth + 1) : s;
  }
  if (s.allOf?.length === 1) {
    const inner = deref(s.allOf[0], schemas, depth + 1);
    return inner ? { ...inner, description: s.description ?? inner.description } : s;
  }
  return s;
}

/** The type name kubectl explain shows: `<Object>`-style names of referenced types, `[]T`, `map[string]T`. */
export function typeName(s: Schema | undefined, schemas: Record<string, Schema>, depth = 0): string {
  if (!s) return 'Object';
  const ref = s.$ref ?? (s.allOf?.length === 1 ? s.allOf[0]!.$ref : undefined);
  if (ref) {
    const name = refName(ref);
    const target = schemas[name];
    // Quantity, Time, IntOrString... are published as strings or oneOf: kubectl shows their short names.
    return target?.type && !target.properties && target.type !== 'object' ? target.type : name.split('.').pop()!;
  }
  if (depth > 8) return s.type ?? 'Object';
  if (s.type === 'array') return `[]${typeName(s.items, schemas, depth + 1)}`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object')
    return `map[string]${typeName(s.additionalProperties, schemas, depth + 1)}`;
  if (s.type === 'object' || s.properties) return 'Object';
  return s.type ?? 'Object';
}

/** The schema of a kind (matched by x-kubernetes-group-version-kind), or undefined. */
function kindSchema(doc: OpenApiDoc, api: ApiResource): { name: string; schema: Schema } | undefined {
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    const gvks = schema['x-kubernetes-group-version-kind'] ?? [];
    if (gvks.some((g) => (g.group ?? '') === api.group && g.version === api.version && g.kind === api.kind))
      return { name, schema };
  }
  return undefined;
}

const indent = (text: string, pad: string) =>
  text
    .split('\n')
    .map((l) => (l ? pad + l : l))
    .join('\n');

/**
 * The explanation of one field path of a kind, in kubectl explain's layout (GROUP, KIND, VERSION,
 * FIELD, DESCRIPTION, FIELDS; `recursive` lists the field tree to `depth` levels instead).
 * @throws InvalidArgumentError naming `field` when a path segment does not exist.
 */
export function explain(
  api: ApiResource,
  root: Schema,
  schemas: Record<string, Schema>,
  field: string[],
  recursive: boolean,
  depth = 4,
): { text: string; type: string; fields: string[] } {
  let node: Schema = deref(root, schemas) ?? root;
  let type = api.kind;
  const walked: string[] = [];
  for (const seg of field) {
    // Arrays and maps are explained by their element type, as kubectl does.
    for (let i = 0; i < 4 && (node.type === 'array' || typeof node.additionalProperties === 'object'); i++)
      node = deref(node.type === 'array' ? node.items : (node.additionalProperties as Schema), schemas) ?? node;
    const next = node.properties?.[seg];
    if (!next)
      throw new InvalidArgumentError(
        'field',
        `field "${seg}" does not exist in ${[api.kind.toLowerCase(), ...walked].join('.')}${node.properties ? `; fields: ${Object.keys(node.properties).sort().join(', ')}` : ''}`,
      );
    type = typeName(next, schemas);
    node = deref(next, schemas) ?? next;
    walked.push(seg);
  }
  let elem: Schema = node;
  for (let i = 0; i < 4 && (elem.type === 'array' || typeof elem.additionalProperties === 'object'); i++)
    elem = deref(elem.type === 'array' ? elem.items : (elem.additionalProperties as Schema), schemas) ?? elem;
  const required = new Set(elem.required ?? []);
  const lines = [`GROUP:      ${api.group}`, `KIND:       ${api.kind}`, `VERSION:    ${api.version}`, ''];
  if (walked.length) lines.push(`FIELD: ${walked[walked.length - 1]} <${type}>`, '');
  else lines.push('');
  if (node.enum?.length) lines.push(`ENUM:\n    ${node.enum.map(String).join(', ')}`, '');
  lines.push('DESCRIPTION:', indent(node.description?.trim() || '<empty>', '    '), '');
  const names = Object.keys(elem.properties ?? {}).sort();
  if (names.length) {
    lines.push('FIELDS:');
    if (recursive) {
      const walk = (s: Schema, pad: string, level: number, seen: Set<Schema>) => {
        const req = new Set(s.required ?? []);
        for (const [k, v] of Object.entries(s.properties ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
          lines.push(`${pad}${k}\t<${typeName(v, schemas)}>${req.has(k) ? ' -required-' : ''}`);
          let child = deref(v, schemas);
          for (
            let i = 0;
            i < 4 && child && (child.type === 'array' || typeof child.additionalProperties === 'object');
            i++
          )
            child = deref(child.type === 'array' ? child.items : (child.additionalProperties as Schema), schemas);
          if (child?.properties && level < depth && !seen.has(child))
            walk(child, pad + '  ', level + 1, new Set([...seen, child]));
        }
      };
      walk(elem, '  ', 1, new Set([elem]));
    } else {
      for (const k of names) {
        const v = elem.properties![k]!;
        const d = deref(v, schemas);
        lines.push(`  ${k}\t<${typeName(v, schemas)}>${required.has(k) ? ' -required-' : ''}`);
        if (d?.enum?.length) lines.push(`  enum: ${d.enum.map(String).join(', ')}`);
        const desc = (v.description ?? d?.description ?? '').trim();
        if (desc) lines.push(indent(desc, '    '));
        lines.push('');
      }
    }
  }
  return { text: lines.join('\n').trimEnd() + '\n', type, fields: names };
}

/** The API tools. */
export function apiTools(): AnyToolDef[] {
  return [
    defineTool({
      name: 'list-api-resources',
      title: 'List API resources',
      description:
        'Resource types the cluster serves (as kubectl api-resources): name, short names, apiVersion, namespaced, kind, verbs.',
      effect: 'read',
      input: {
        apiGroup: z.string().optional().describe("only this group ('' for core)"),
        namespaced: z.boolean().optional(),
        verb: z.string().optional().describe('only resources supporting this verb, e.g. list'),
        context: contextArg,
      },
      output: tableOutput,
      run: async (a, ctx) => {
        const seen = new Set<string>();
        const rows: string[][] = [];
        for (const r of await ctx.kube.resources(a.context)) {
          const key = `${r.group}/${r.resource}`;
          // Discovery lists each group's preferred version first: keep that one, as kubectl does.
          if (!r.kind || seen.has(key)) continue;
          seen.add(key);
          if (a.apiGroup !== undefined && r.group !== a.apiGroup) continue;
          if (a.namespaced !== undefined && r.namespaced !== a.namespaced) continue;
          if (a.verb && !r.verbs.includes(a.verb)) continue;
          if (ctx.policy.kindDenied(r)) continue;
          rows.push([
            r.resource,
            r.shortNames.join(','),
            apiVersionOf(r),
            String(r.namespaced),
            r.kind,
            r.verbs.join(','),
          ]);
        }
        rows.sort((x, y) => x[2]!.split('/').length - y[2]!.split('/').length || x[0]!.localeCompare(y[0]!));
        return tableResult(
          ctx,
          'APIResource',
          { columns: ['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND', 'VERBS'], rows },
          undefined,
          'apiGroup, namespaced or verb',
        );
      },
    }),
    defineTool({
      name: 'explain-resource',
      title: 'Explain a resource field',
      description:
        "A kind's or field's schema and documentation from the cluster's OpenAPI v3, CRDs included (as kubectl explain).",
      effect: 'read',
      input: {
        kind: z.string().describe('kind, optionally with a field path: deployment.spec.strategy'),
        field: z.string().optional().describe('field path, e.g. spec.template'),
        apiVersion: z.string().optional(),
        recursive: z.boolean().optional().describe('list the field tree (4 levels)'),
        context: contextArg,
      },
      output: {
        kind: z.string(),
        apiVersion: z.string(),
        field: z.string(),
        type: z.string(),
        fields: z.array(z.string()),
        truncated: z.boolean(),
      },
      run: async (a, ctx) => {
        let kind = a.kind.trim();
        let field = (a.field ?? '').trim();
        if (!field && kind.includes('.')) {
          const i = kind.indexOf('.');
          field = kind.slice(i + 1);
          kind = kind.slice(0, i);
        }
        const path = field ? field.split('.') : [];
        if (path.some((s) => !/^[A-Za-z0-9_$@-]+$/.test(s)))
          throw new InvalidArgumentError('field', `${JSON.stringify(field)} is not a dotted field path`);
        const api = await resolveKind(ctx, kind, a.apiVersion, a.context);
        if (ctx.policy.kindDenied(api))
          throw new InvalidArgumentError('kind', `refused by policy: kind ${api.kind} is denied`);
        const doc = await openApiDoc(ctx, api, a.context);
        const found = kindSchema(doc, api);
        if (!found)
          throw new InvalidArgumentError('kind', `no OpenAPI v3 schema for ${api.kind} in ${apiVersionOf(api)}`);
        const schemas = doc.components?.schemas ?? {};
        const out = explain(api, found.schema, schemas, path, !!a.recursive);
        const { text, cut } = budgetText(out.text, ctx.budget);
        return {
          text: cut
            ? text + truncatedNote(`${out.text.length} characters exceed the budget`, 'a deeper field path')
            : text,
          structured: {
            kind: api.kind,
            apiVersion: apiVersionOf(api),
            field: path.join('.'),
            type: out.type,
            fields: out.fields,
            truncated: cut,
          },
        };
      },
    }),
  ];
}
