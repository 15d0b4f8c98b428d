/** `npm run synth` (after cdk8s synth): writes the operator's Helm chart to dist/helm/kubemcp/ (charts/helm.ts). */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HELM_CHART_NAME, helmChartFiles } from './helm.js';

const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'dist', 'helm', HELM_CHART_NAME);
rmSync(dir, { recursive: true, force: true });
for (const [file, text] of Object.entries(helmChartFiles())) {
  mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  writeFileSync(path.join(dir, file), text);
}
process.stdout.write(`wrote the Helm chart to ${path.relative(process.cwd(), dir) || dir}\n`);
