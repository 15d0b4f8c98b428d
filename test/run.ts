/**
 * `npm test` after the typecheck: starts (or reuses) the local control plane once, runs jest's
 * `unit` and `cluster` projects (jest.config.js; every suite except test/faults/, in parallel
 * workers), then the `faults` project (test/faults/) alone (they restart
 * cluster components), stops the control plane if it started it, and prints one closing line
 * `tests: N passed, N failed`. Exit code 0 only when both jest runs pass.
 * Extra arguments are passed to the first jest run (e.g. a path filter).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterDown, clusterUp } from '../cluster/index.js';

const root = new URL('../', import.meta.url).pathname;
const jest = join(root, 'node_modules/jest/bin/jest.js');
const out = mkdtempSync(join(tmpdir(), 'kubemcp-jest-'));

/** Runs jest with `args`; returns its exit status and counts from its JSON report. */
function runJest(name: string, args: string[]): { status: number; passed: number; failed: number } {
  const report = join(out, `${name}.json`);
  const r = spawnSync(
    process.execPath,
    ['--experimental-vm-modules', jest, '--json', `--outputFile=${report}`, ...args],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  try {
    const j = JSON.parse(readFileSync(report, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numRuntimeErrorTestSuites: number;
    };
    return { status: r.status ?? 1, passed: j.numPassedTests, failed: j.numFailedTests + j.numRuntimeErrorTestSuites };
  } catch {
    return { status: r.status ?? 1, passed: 0, failed: 1 };
  }
}

const info = await clusterUp();
process.env.KUBECONFIG = info.kubeconfig;
let main: ReturnType<typeof runJest>;
let faults: ReturnType<typeof runJest>;
try {
  const filter = process.argv.slice(2);
  // The filter goes first: --selectProjects takes a list and would swallow what follows it.
  main = runJest('main', [...filter, '--selectProjects', 'unit', 'cluster']);
  faults = filter.length
    ? { status: 0, passed: 0, failed: 0 }
    : runJest('faults', ['--runInBand', '--selectProjects', 'faults']);
} finally {
  if (!info.reused) await clusterDown();
  rmSync(out, { recursive: true, force: true });
}
const passed = main.passed + faults.passed;
const failed = main.failed + faults.failed;
process.stdout.write(`\ntests: ${passed} passed, ${failed} failed\n`);
process.exit(main.status === 0 && faults.status === 0 && failed === 0 ? 0 : 1);
