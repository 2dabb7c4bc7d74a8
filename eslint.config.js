// The linter of the whole tree (ESLint's recommended rules and typescript-eslint's, without type
// information so it stays fast), run by `npm test` in every workspace (`turbo run lint`).
// Formatting is Prettier's (.prettierrc.json); ESLint only adds the line-length limit that Prettier
// cannot enforce on long strings and comments.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // Nothing of ours is skipped: roles/build is source (the build machine's role), not build output.
  // roles/autoscaler/ManuallyScale.ts is a link to the shell launcher (the command keeps the name cron and people use).
  { ignores: ['**/node_modules/**', '**/.turbo/**', 'roles/autoscaler/ManuallyScale.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: globals.node },
    rules: {
      // Core's max-len (kept by ESLint until v11): no line of ours over 140 characters, strings, comments and URLs included.
      'max-len': ['error', { code: 140 }],
      'no-empty': ['error', { allowEmptyCatch: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
);
