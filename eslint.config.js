/**
 * ESLint 9 flat config: typescript-eslint's recommended rules over the whole repository, with
 * `no-explicit-any` as an error (issue 9). Formatting is prettier's (`.prettierrc`), so no
 * stylistic rules here. `npm run lint` runs eslint and `prettier --check`; `npm test` runs lint.
 */
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // Generated (`npm run import`, `npm run build`) or not ours.
    ignores: ['dist/', 'imports/', 'node_modules/', '.cluster/', '.demo/', 'coverage/', '.scratch/'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // `_`-prefixed names are deliberately unused (a callback's leading parameters, a
      // destructured field left out of a rest object).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // CommonJS shims for the bundle (build/whatwg-url.cjs).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
