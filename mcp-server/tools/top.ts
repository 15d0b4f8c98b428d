/**
 * top: CPU and memory of pods and nodes from metrics.k8s.io (issue 19).
 */
import type { AnyToolDef } from './registry.js';

/** The tools of this module, in listing order. */
export function topTools(): AnyToolDef[] {
  return [];
}
