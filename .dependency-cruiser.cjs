// Layer rules, checked in CI by `npm run depcruise` (docs/architecture.md explains the layers).
// Specs and test/ may import anything: they are excluded from every `from` below.
const SPEC = '\\.(spec|e2e-spec)\\.ts$';
// Domain libs: pure logic. Any lib whose name contains "task" (a task state machine lib) counts as domain too, and so
// does libs/bulk-data (the Bulk Data export's rules: what may be asked, where a resumed export goes on).
const DOMAIN = '^libs/(protocols|followups|bulk-data|[^/]*task[^/]*)/';
const HTTP_CLIENTS = 'node_modules/(undici|axios|node-fetch|got|ky|superagent|@medplum/fhir-router)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      severity: 'error',
      comment:
        'libs/protocols, libs/followups, libs/bulk-data (and a task state machine lib) hold pure logic only: no Nest, no HTTP or ' +
        'Express, no BullMQ/Redis, no FHIR client, no config; they see FHIR resources as plain data.',
      from: { path: DOMAIN, pathNot: SPEC },
      to: {
        path: [
          'node_modules/(@nestjs|express|body-parser|bullmq|ioredis|@bull-board|prom-client|pino|jose)/',
          HTTP_CLIENTS,
          '^(node:)?(http|https|http2|net|tls|dgram)$',
          '^libs/(fhir|queue|auth|config|common|nest-core|fhir-sandbox)/',
          '^(apps|service)/',
        ],
      },
    },
    {
      name: 'only-libs-fhir-talks-to-fhir',
      severity: 'error',
      comment:
        'Requests to the FHIR server go through @kc/fhir (auth, retries, paging, ETags). Nothing else brings an ' +
        'HTTP client, and only libs/fhir-sandbox embeds a FHIR server engine (fetch is checked by eslint).',
      from: { path: '^(apps|libs|service)/', pathNot: [SPEC, '^libs/(fhir|fhir-sandbox)/'] },
      to: { path: [HTTP_CLIENTS, '^(node:)?(https|http2)$'] },
    },
    {
      name: 'node-http-only-where-serving',
      severity: 'error',
      comment:
        'node:http is for servers: the embedded FHIR server, the worker /metrics server in the composition root; ' +
        "the one client use is the FHIR client's transport (libs/fhir/src/http-fetch.ts, fetch's interface).",
      from: { path: '^(apps|libs)/', pathNot: [SPEC, '^libs/fhir-sandbox/', '^libs/fhir/src/http-fetch\\.ts$'] },
      to: { path: '^(node:)?http$' },
    },
    {
      name: 'apps-do-not-import-each-other',
      severity: 'error',
      comment: 'apps/api, apps/worker and apps/fhir-sandbox import libs only; service/ composes them.',
      from: { path: '^apps/([^/]+)/', pathNot: SPEC },
      to: { path: '^apps/', pathNot: '^apps/$1/' },
    },
    {
      name: 'libs-do-not-import-apps',
      severity: 'error',
      comment: 'Libraries never depend on applications, the composition root, tests, benchmarks or scripts.',
      from: { path: '^libs/', pathNot: SPEC },
      to: { path: '^(apps|service|test|bench|scripts)/' },
    },
    {
      name: 'nothing-imports-the-composition-root',
      severity: 'error',
      comment: 'service/ is the top: only tests, benchmarks and scripts start it.',
      from: { path: '^(apps|libs)/', pathNot: SPEC },
      to: { path: '^service/' },
    },
    {
      name: 'fhir-sandbox-only-from-the-composition-root',
      severity: 'error',
      comment: 'The embedded FHIR server is started optionally by service/ (and by apps/fhir-sandbox, and tests).',
      from: { path: '^(apps/(api|worker)|libs)/', pathNot: [SPEC, '^libs/fhir-sandbox/'] },
      to: { path: '^libs/fhir-sandbox/' },
    },
    {
      name: 'foundation-libs-stand-alone',
      severity: 'error',
      comment:
        'libs/config and libs/fhir-definitions import no other lib; libs/common only libs/config (so e.g. its code ' +
        'cannot know FHIR client errors: mapping those to HTTP is the API’s job).',
      from: { path: '^libs/(config|common|fhir-definitions)/', pathNot: SPEC },
      to: { path: '^libs/', pathNot: ['^libs/$1/', '^libs/config/'] },
    },
    {
      name: 'config-imports-no-lib',
      severity: 'error',
      comment: 'libs/config is the bottom layer.',
      from: { path: '^libs/config/', pathNot: SPEC },
      to: { path: '^libs/', pathNot: '^libs/config/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make load order matter (Nest decorators read undefined classes).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'production-code-not-to-dev-deps',
      severity: 'error',
      comment: 'The built service installs without devDependencies in production.',
      from: { path: '^(apps|libs|service)/', pathNot: SPEC },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'types', 'default'],
      mainFields: ['main', 'types', 'typings'],
      extensions: ['.ts', '.d.ts', '.js', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
