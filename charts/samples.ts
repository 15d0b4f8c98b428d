/**
 * The seeds' sample MCPServer manifests (charts/samples/*.yaml), verbatim from seeds 001 and 003:
 * basic, advanced and production. Used by `cdk8s synth`, the docs and the tests.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** Directory of the sample manifests. */
export const SAMPLES_DIR = fileURLToPath(new URL('./samples/', import.meta.url));

/** One sample: `id` is its file name without `.yaml` (e.g. `seed001-basic`). */
export interface Sample {
  id: string;
  path: string;
  text: string;
  manifest: Record<string, unknown>;
}

/** All samples, sorted by id. @throws when a sample file is not valid YAML. */
export function loadSamples(): Sample[] {
  return readdirSync(SAMPLES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const path = SAMPLES_DIR + f;
      const text = readFileSync(path, 'utf8');
      return { id: f.replace(/\.yaml$/, ''), path, text, manifest: parse(text) as Record<string, unknown> };
    });
}
