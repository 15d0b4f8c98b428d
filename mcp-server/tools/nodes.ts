/**
 * Node tools (issue 19): cordon, uncordon, drain through the Eviction API, node logs.
 */
import type { AnyToolDef } from './registry.js';

/** The tools of this module, in listing order. */
export function nodeTools(): AnyToolDef[] {
  return [];
}
