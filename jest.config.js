/**
 * Jest in ESM mode (@kubernetes/client-node 1.x is ESM-only): run with
 * NODE_OPTIONS=--experimental-vm-modules (npm test does). ts-jest only transpiles
 * (isolatedModules); `npm run typecheck` does the type checking once for the whole tree.
 * Cluster tests share one local control plane, started (or reused) by test/globalSetup.ts.
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true }],
  },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/globalSetup.ts',
  globalTeardown: '<rootDir>/test/globalTeardown.ts',
  testTimeout: 120000,
  maxWorkers: 2,
};
