/**
 * exec-pod: a command in a container through the exec subresource (issue 19).
 */
import type { AnyToolDef } from './registry.js';

/** The tools of this module, in listing order. */
export function execTools(): AnyToolDef[] {
  return [];
}
