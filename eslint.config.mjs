// ESLint (flat config): typescript-eslint's type-checked recommendations over all TypeScript in the repo.
// `npm run lint`; CI runs it with --max-warnings 0.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'fhir-profiles/**'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // `const { id: _ignored, ...rest } = resource` is how we drop a field; leading underscore = unused on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Layer rule (docs/architecture.md): only libs/fhir talks to a FHIR server, so no other production code fetches.
    // The embedded FHIR server's Subscriptions are the server posting to their endpoints, not the service calling one;
    // token introspection asks an authorization server, not a FHIR server.
    files: ['apps/**/*.ts', 'libs/**/*.ts', 'service/**/*.ts'],
    ignores: [
      'libs/fhir/**',
      'libs/fhir-sandbox/src/rest-hook-deliveries.ts',
      'libs/auth/src/token-introspection.ts',
      '**/*.spec.ts',
      '**/*.e2e-spec.ts',
    ],
    rules: {
      'no-restricted-globals': [
        'error',
        {
          name: 'fetch',
          message: 'Talk to the FHIR server through FhirClient (@kc/fhir); nothing else makes requests.',
        },
      ],
    },
  },
  {
    // supertest's response.body is `any` (parsed JSON): the end-to-end specs read it and assert its shape.
    files: ['test/*.e2e-spec.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Plain CommonJS/ESM config files: no type information.
    files: ['**/*.{js,cjs,mjs}'],
    ignores: ['apps/api/src/clinician-ui/page/**'],
    extends: [js.configs.recommended],
    languageOptions: {
      globals: { module: 'writable', require: 'readonly', process: 'readonly', __dirname: 'readonly' },
    },
  },
  {
    // The clinician page's script: plain browser JavaScript (a classic script, no modules), no type information.
    files: ['apps/api/src/clinician-ui/page/**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: {
      sourceType: 'script',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        history: 'readonly',
        sessionStorage: 'readonly',
        crypto: 'readonly',
        fetch: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        btoa: 'readonly',
        atob: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        console: 'readonly',
        Intl: 'readonly',
        Event: 'readonly',
        HTMLElement: 'readonly',
      },
    },
  },
);
