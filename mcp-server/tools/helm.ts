/**
 * Helm releases read from Helm's own storage (Secrets of type helm.sh/release.v1), no helm binary (issue 19).
 */
import type { AnyToolDef } from './registry.js';

/** The tools of this module, in listing order. */
export function helmTools(): AnyToolDef[] {
  return [];
}
