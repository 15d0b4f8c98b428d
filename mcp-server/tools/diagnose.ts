/**
 * diagnose (issue 19): why a workload or pod is not working, in one call.
 */
import type { AnyToolDef } from './registry.js';

/** The tools of this module, in listing order. */
export function diagnoseTools(): AnyToolDef[] {
  return [];
}
