/**
 * The MCPServer CustomResourceDefinition, derived from the zod schema (charts/api/schema.ts).
 *
 * zod's JSON Schema output is turned into a structural schema as the apiserver requires
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
 * no `additionalProperties: false`, no `propertyNames`, int-or-string written the way
 * controller-gen writes `resource.Quantity`, integer formats instead of JS safe-integer bounds.
 * The subresources and printer columns are seed 003's kubebuilder markers.
 */
import { z } from 'zod';
import {
  API_VERSION,
  CATEGORIES,
  DNS1035_LABEL,
  GROUP,
  KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
  mcpServerSpec,
  mcpServerStatus,
} from './schema.js';

/** A JSON Schema node as the CRD's openAPIV3Schema writes it. */
export type JSONSchemaProps = { [key: string]: unknown };

const KEPT = new Set([
  'type',
  'format',
  'description',
  'default',
  'enum',
  'required',
  'properties',
  'items',
  'additionalProperties',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'anyOf',
  'nullable',
]);
const SAFE_INT = 9007199254740991;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/**
 * Rewrites one zod-emitted JSON Schema node (recursively) into a structural CRD schema node.
 * Keywords the apiserver does not accept are dropped; `x-kubernetes-*` extensions are kept.
 */
export function toStructural(node: JSONSchemaProps): JSONSchemaProps {
  if (node['x-kubernetes-int-or-string'] === true) {
    const branches = (node.anyOf as JSONSchemaProps[] | undefined) ?? [];
    const pattern = branches.map((b) => b.pattern).find((p) => typeof p === 'string');
    const out: JSONSchemaProps = {};
    if (node.description) out.description = node.description;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    if (pattern) out.pattern = pattern;
    out['x-kubernetes-int-or-string'] = true;
    return out;
  }
  const out: JSONSchemaProps = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-')) out[key] = value;
    else if (!KEPT.has(key)) continue;
    else if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, JSONSchemaProps>).map(([k, v]) => [k, toStructural(v)]),
      );
    } else if (key === 'items' || key === 'additionalProperties') {
      if (value === false) continue;
      out[key] = typeof value === 'object' ? toStructural(value as JSONSchemaProps) : value;
    } else if (key === 'anyOf') {
      out.anyOf = (value as JSONSchemaProps[]).map(toStructural);
    } else out[key] = value;
  }
  if (out.type === 'integer') {
    if (out.minimum === -SAFE_INT) delete out.minimum;
    if (out.maximum === SAFE_INT) {
      delete out.maximum;
      out.format ??= 'int64';
    }
    if (out.minimum === INT32_MIN) delete out.minimum;
    if (out.maximum === INT32_MAX) {
      delete out.maximum;
      out.format ??= 'int32';
    }
  }
  // A schema for an object without declared properties or value schema keeps unknown fields.
  if (out.type === 'object' && !out.properties && !out.additionalProperties) {
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  return out;
}

/** JSON Schema of one zod schema, as users write it (defaults shown, defaulted fields optional). */
function derive(schema: z.ZodType): JSONSchemaProps {
  return toStructural(
    z.toJSONSchema(schema, { io: 'input', target: 'openapi-3.0', unrepresentable: 'throw' }) as JSONSchemaProps,
  );
}

/** CEL rule the apiserver applies to metadata.name; mirrors `objectMeta.name` in schema.ts. */
export const NAME_RULE = {
  rule: `self.metadata.name.matches('${DNS1035_LABEL.source}') && size(self.metadata.name) <= 63`,
  message:
    'metadata.name must be a DNS-1035 label of at most 63 characters (lowercase letters, digits and "-", starting with a letter): it names the Service',
  fieldPath: '.metadata.name',
  reason: 'FieldValueInvalid',
};

/**
 * The openAPIV3Schema of the MCPServer CRD's single version.
 * Shape: `{type: 'object', properties: {apiVersion, kind, metadata, spec, status}, required: ['spec'], ...}`.
 */
export function mcpServerOpenAPISchema(): JSONSchemaProps {
  return {
    description: 'MCPServer is the Schema for the mcpservers API: an MCP server run as a Kubernetes workload.',
    type: 'object',
    properties: {
      apiVersion: {
        description: 'APIVersion defines the versioned schema of this representation of an object.',
        type: 'string',
      },
      kind: {
        description: 'Kind is a string value representing the REST resource this object represents.',
        type: 'string',
      },
      metadata: { type: 'object', properties: { name: { type: 'string' } } },
      spec: { description: 'MCPServerSpec defines the desired state of MCPServer', ...derive(mcpServerSpec) },
      status: { description: 'MCPServerStatus defines the observed state of MCPServer', ...derive(mcpServerStatus) },
    },
    required: ['spec'],
    'x-kubernetes-validations': [NAME_RULE],
  };
}

/** Name of the CRD object: `mcpservers.mcp.example.com`. */
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/** Label selector string of an MCPServer's pods, as `status.selector` reports it for the scale subresource. */
export const SCALE_LABEL_SELECTOR_PATH = '.status.selector';

/**
 * The complete CustomResourceDefinition manifest (apiextensions.k8s.io/v1), cluster-scoped:
 * seed 003's kubebuilder markers (status and scale subresources, short name `mcps`, categories
 * `ai`/`mcp`, printer columns Phase, Ready, Replicas, Transport, Endpoint, Age; plus Verified, Tools
 * and Reason, the Ready condition's reason: why it is not ready), with
 * `labelSelectorPath` added so a HorizontalPodAutoscaler can target MCPServers.
 */
export function mcpServerCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: {
        'app.kubernetes.io/name': 'kubemcp',
        'app.kubernetes.io/component': 'crd',
        'app.kubernetes.io/part-of': 'kubemcp',
      },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
        categories: CATEGORIES,
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: mcpServerOpenAPISchema() },
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: SCALE_LABEL_SELECTOR_PATH,
            },
          },
          additionalPrinterColumns: [
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
            { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
            { name: 'Transport', type: 'string', jsonPath: '.spec.transport' },
            { name: 'Verified', type: 'string', jsonPath: '.status.conditions[?(@.type=="Verified")].status' },
            { name: 'Tools', type: 'integer', jsonPath: '.status.tools.count' },
            { name: 'Auth', type: 'string', jsonPath: '.status.conditions[?(@.type=="AuthEnabled")].reason' },
            { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
            { name: 'Endpoint', type: 'string', jsonPath: '.status.endpoint' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
        },
      ],
    },
  };
}

/** `apiVersion` of MCPServer objects, re-exported for CRD consumers. */
export { API_VERSION };
