/**
 * Jest in ESM mode (@kubernetes/client-node 1.x is ESM-only): run with
 * NODE_OPTIONS=--experimental-vm-modules (npm test does). ts-jest only transpiles
 * (isolatedModules); `npm run typecheck` does the type checking once for the whole tree.
 *
 * Two projects:
 * - `unit`: pure logic (schema, rendering, queue, drift, status, policy, formatting), no cluster and
 *   no global setup: `npx jest --selectProjects unit` answers in seconds. A test file belongs here
 *   when it is listed in UNIT_TESTS below; it must not read $KUBECONFIG or start processes that do.
 * - `cluster`: every other test file except test/faults/; they share one local control plane,
 *   started (or reused) by test/globalSetup.ts and stopped by test/globalTeardown.ts when this run
 *   started it.
 * - `faults`: test/faults/ (they restart cluster components), to be run alone and in band:
 *   `npx jest --selectProjects faults --runInBand`.
 * `npm test` (test/run.ts) runs `unit` and `cluster` together, then `faults` alone. A plain
 * `npx jest` would run all three at once (faults beside the rest): use `--selectProjects`.
 * (Project-level ignore patterns are used rather than `--testPathIgnorePatterns`, as that CLI
 * option replaces every project's own patterns.)
 */

/** Test files that need no cluster, relative to the repository root. */
export const UNIT_TESTS = [
  'test/charts/bridge-render.test.ts',
  'test/charts/generated.test.ts',
  'test/charts/render.test.ts',
  'test/charts/schema.test.ts',
  'test/cluster/packages.test.ts',
  'test/cluster/poll.test.ts',
  'test/cluster/shims.test.ts',
  'test/controller/bridge-ready.test.ts',
  'test/controller/logic.test.ts',
  'test/gateway/eras-unit.test.ts',
  'test/gateway/sessions.test.ts',
  'test/gateway/tools-unit.test.ts',
  'test/images/dockerfile.test.ts',
  'test/lib/in-cluster.test.ts',
  'test/mcp-server/bridge-unit.test.ts',
  'test/mcp-server/modern-unit.test.ts',
  'test/mcp-server/command.test.ts',
  'test/mcp-server/fence.test.ts',
  'test/mcp-server/policy.test.ts',
];

const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true }],
  },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  // The real node's container filesystems live under .cluster/ (package.json files included).
  modulePathIgnorePatterns: ['<rootDir>/.cluster/', '<rootDir>/dist/'],
};

/** Escapes a path for use inside a jest path regex. */
const re = (p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export default {
  testTimeout: 120000,
  // Fault tests that restart a component run last (test/sequencer.cjs).
  testSequencer: '<rootDir>/test/sequencer.cjs',
  maxWorkers: 2,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: UNIT_TESTS.map((p) => `<rootDir>/${p}`),
    },
    {
      ...common,
      displayName: 'cluster',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '/test/faults/', ...UNIT_TESTS.map((p) => `/${re(p)}$`)],
      globalSetup: '<rootDir>/test/globalSetup.ts',
      globalTeardown: '<rootDir>/test/globalTeardown.ts',
    },
    {
      ...common,
      displayName: 'faults',
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      globalSetup: '<rootDir>/test/globalSetup.ts',
      globalTeardown: '<rootDir>/test/globalTeardown.ts',
    },
  ],
};
