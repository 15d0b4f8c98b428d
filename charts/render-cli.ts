/**
 * `kubemcp render`: prints the children of MCPServer manifests as YAML, offline, with the same
 * construct `cdk8s synth` uses. Output bytes equal the synthesized `<sample>.k8s.yaml` files.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { renderMCPServer, toYaml, type KubeObject, type RenderOptions } from './render.js';
import { API_VERSION, KIND } from './api/schema.js';

/** A render failure: `message` names the file, document and field. */
export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RenderError';
  }
}

/**
 * Renders every MCPServer document of the given YAML texts.
 * @param sources `[label, text]` pairs; label names the file in messages (`-` for stdin).
 * @param namespace overrides each manifest's namespace when set.
 * @param options rendering options (the bridge image of bridged stdio servers).
 * @returns the YAML of all children, documents separated by `---`.
 * @throws RenderError for YAML syntax errors, documents of another kind, and invalid
 *   MCPServers (the message lists each failing field and rule).
 */
export function renderSources(
  sources: Array<[string, string]>,
  namespace?: string,
  options: RenderOptions = {},
): string {
  const objects: KubeObject[] = [];
  for (const [label, text] of sources) {
    const docs = parseAllDocuments(text);
    if (!Array.isArray(docs)) throw new RenderError(`${label}: not a YAML stream`);
    docs.forEach((doc, i) => {
      const where = `${label}, document ${i + 1}`;
      if (doc.errors.length) throw new RenderError(`${where}: invalid YAML: ${doc.errors[0]!.message}`);
      const obj = doc.toJS() as { apiVersion?: unknown; kind?: unknown } | null;
      if (obj === null || obj === undefined) return; // an empty document, e.g. a trailing `---`
      if (obj.kind !== KIND || obj.apiVersion !== API_VERSION) {
        throw new RenderError(
          `${where}: expected apiVersion ${API_VERSION}, kind ${KIND}; got ${String(obj.apiVersion)}, ${String(obj.kind)}`,
        );
      }
      try {
        objects.push(...renderMCPServer(obj, namespace, options));
      } catch (err) {
        throw new RenderError(`${where}: ${(err as Error).message}`);
      }
    });
  }
  return toYaml(objects);
}

/** Reads the named files (`-` is standard input) as `[label, text]` pairs. @throws on unreadable files. */
export function readSources(files: string[]): Array<[string, string]> {
  return files.map((f) => [f, readFileSync(f === '-' ? 0 : f, 'utf8')]);
}
