// ESLint (issue 21, item 5): `npm run lint`, run by scripts/test.sh before vitest.
//
// typescript-eslint's recommendedTypeChecked: the rules that need types are the ones that find
// real faults in this code base, which is mostly async I/O (Docker, Redis, child processes): a
// promise nobody awaits loses its error (no-floating-promises), an async callback handed to an
// API that ignores its promise (no-misused-promises), `any` leaking from JSON or untyped
// packages (no-unsafe-*). The strict sets were measured and left out: strictTypeChecked gave
// 893 findings, mostly numbers in template literals and non-null assertions that
// noUncheckedIndexedAccess makes the idiom (see docs/testing.md).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'dist/', 'coverage/', 'test-output/', '.kfarm/', '.kfarm-farm/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // as tsc's noUnusedLocals/noUnusedParameters: a leading _ marks a name left unused on purpose
      // (a field dropped by destructuring, a parameter an interface requires)
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Off: an async function without await is how this code writes a function that must
      // return a promise (an interface's async method, a stub in a test) and turns a throw into
      // a rejection; dropping `async` to please the rule would make those throws synchronous.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // vitest's asymmetric matchers (expect.stringMatching, expect.any, ...) are typed `any` by
      // design, so each one inside an expected object is an "unsafe assignment". The other
      // no-unsafe-* rules stay on and still catch untyped JSON.parse results in tests.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  {
    // plain JavaScript (bin/, config files, test helpers loaded by node --import) is not in
    // tsconfig.json's program: lint it without type information
    files: ['**/*.{js,mjs,cjs}'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
