/**
 * Client-side validation of MCPServer objects against the one schema (charts/api/schema.ts),
 * with messages that name the field and the rule, as the apiserver's do for the CRD.
 */
import { z } from 'zod';
import { mcpServer, mcpServerSpec, type MCPServer, type MCPServerSpec } from './schema.js';

/** One validation failure: `field` is a path such as `spec.env[0].name`. */
export interface FieldError {
  field: string;
  message: string;
}

/**
 * Thrown when an object does not satisfy the MCPServer schema. `errors` lists every failing
 * field; `message` is one line per field, `<field>: <rule>`, prefixed with the object name.
 */
export class MCPServerValidationError extends Error {
  constructor(
    readonly objectName: string,
    readonly errors: FieldError[],
  ) {
    super(`MCPServer ${objectName} is invalid:\n` + errors.map((e) => `  ${e.field}: ${e.message}`).join('\n'));
    this.name = 'MCPServerValidationError';
  }
}

/** Formats a zod issue path as a Kubernetes field path: `spec.env[0].valueFrom`. */
export function fieldPath(path: ReadonlyArray<PropertyKey>, prefix = ''): string {
  let out = prefix;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out || '<root>';
}

function toFieldErrors(error: z.ZodError, prefix: string): FieldError[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => ({ field: fieldPath([...issue.path, k], prefix), message: 'unknown field' }));
    }
    const missing = issue.code === 'invalid_type' && issue.message.endsWith('received undefined');
    return [
      { field: fieldPath(issue.path, prefix), message: missing ? `Required value (${issue.expected})` : issue.message },
    ];
  });
}

/**
 * Validates a whole MCPServer object (apiVersion, kind, metadata.name, spec, status) and
 * returns it with seed 003's defaults applied (transport, port, replicas).
 * @throws MCPServerValidationError naming every failing field.
 */
export function parseMCPServer(obj: unknown): MCPServer {
  const result = mcpServer.safeParse(obj);
  if (result.success) return result.data;
  const name = (obj as { metadata?: { name?: unknown } } | null)?.metadata?.name;
  throw new MCPServerValidationError(typeof name === 'string' ? name : '<unnamed>', toFieldErrors(result.error, ''));
}

/**
 * Validates an MCPServer spec alone and applies defaults; field paths start with `spec.`.
 * @throws MCPServerValidationError naming every failing field.
 */
export function parseMCPServerSpec(spec: unknown, objectName = '<unnamed>'): MCPServerSpec {
  const result = mcpServerSpec.safeParse(spec);
  if (result.success) return result.data;
  throw new MCPServerValidationError(objectName, toFieldErrors(result.error, 'spec'));
}
