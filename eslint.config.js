// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/node_modules/**', '**/dist/**', '**/.turbo/**', 'bench/results/**', 'docs/api/**', '**/*.d.ts'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    rules: {
      // Backends implement an async contract; an async method without await still turns a throw
      // into a rejection, which is the point.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The Raft consensus core is a module of its own inside @timebox/raft (as etcd's raft is): a
    // pure state machine that imports nothing from the rest of the package (no driver, transport,
    // WAL or state), only its own files and @timebox/core.
    files: ['packages/raft/src/consensus/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./',
              message: 'src/consensus imports nothing from the rest of @timebox/raft: keep the consensus core self-contained.',
            },
            {
              regex: '^node:',
              message: 'src/consensus is a pure state machine: no timers, sockets or files.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
