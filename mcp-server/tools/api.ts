/**
 * API tools (issue 19): list-api-resources from discovery, explain-resource from OpenAPI v3.
 */
import type { AnyToolDef } from './registry.js';

/** The tools of this module, in listing order. */
export function apiTools(): AnyToolDef[] {
  return [];
}
