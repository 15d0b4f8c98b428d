/** Generated artifacts stay in step with the schema: docs/api.md's API reference, docs/serve.md's tool table and imports/. */
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Yaml } from 'cdk8s';
import { OperatorChart } from '../../charts/operator.js';
import { apiReferenceMarkdown } from '../../charts/api/reference.js';

const root = new URL('../../', import.meta.url).pathname;

describe('generated artifacts', () => {
  it('docs/api.md carries the current API reference (run `npm run docs` after changing the schema)', () => {
    const readme = readFileSync(join(root, 'docs', 'api.md'), 'utf8');
    const ref = apiReferenceMarkdown();
    expect(readme).toContain(ref);
    for (const field of [
      'spec.image',
      'spec.transport',
      'spec.port',
      'spec.replicas',
      'spec.config',
      'spec.env',
      'status.phase',
      'status.endpoint',
    ]) {
      expect(ref).toContain(`| \`${field}\` |`);
    }
  });

  it("docs/serve.md's tool table lists exactly the tools of the checked-in tools/list snapshot", () => {
    const readme = readFileSync(join(root, 'docs', 'serve.md'), 'utf8');
    const snapshot = JSON.parse(readFileSync(join(root, 'test/mcp-server/tools-list.snapshot.json'), 'utf8')) as
      { tools?: Array<{ name: string }> } | Array<{ name: string }>;
    const tools = (Array.isArray(snapshot) ? snapshot : (snapshot.tools ?? [])).map((t) => t.name).sort();
    const table = readme.slice(readme.indexOf('| Tool | Effect |'));
    const documented = [...table.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]!).sort();
    expect(tools.length).toBeGreaterThanOrEqual(20);
    expect(documented).toEqual(tools);
  });

  it('imports/ is what `cdk8s import` generates from the current CRD (run `npm run import`)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubemcp-import-'));
    try {
      const crdFile = join(dir, 'crd.yaml');
      // The CRD exactly as `npm run synth` writes it (cdk8s sorts keys), which `npm run import` reads.
      const crd = new OperatorChart(new App({ outdir: dir }), 'operator')
        .toJson()
        .find((o: { kind: string }) => o.kind === 'CustomResourceDefinition');
      writeFileSync(crdFile, Yaml.stringify(crd));
      execFileSync(
        join(root, 'node_modules/.bin/cdk8s'),
        [
          'import',
          '--no-check-upgrade',
          `mcpserver:=${crdFile}`,
          '--class-prefix',
          'Crd',
          '--no-save',
          '--language',
          'typescript',
          '--output',
          join(dir, 'imports'),
        ],
        { cwd: dir, stdio: 'pipe', timeout: 120_000 },
      );
      const name = 'mcpserver-mcp.example.com.ts';
      const fresh = readFileSync(join(dir, 'imports', name), 'utf8');
      expect(fresh).toContain('export class CrdMcpServer extends ApiObject');
      expect(readFileSync(join(root, 'imports', name), 'utf8')).toBe(fresh);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
