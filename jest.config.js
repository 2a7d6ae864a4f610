// One jest config for unit specs (next to the code) and end-to-end specs (test/).
// SWC instead of ts-jest: type-checking is `npm run typecheck`'s job, and SWC keeps the run fast on 2 cores.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    sourceMaps: 'inline',
  },
];
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  testRegex: '(apps|libs|test)/.*\\.(spec|e2e-spec)\\.ts$',
  moduleNameMapper: {
    '^@kc/(.*)$': '<rootDir>/libs/$1/src',
  },
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 30000,
  // Two suites at a time (the one place this is set: no --runInBand in package.json). Measured on the 2-core machine,
  // 5 full runs each: 2 workers 34-63 s wall, in band 56-86 s; same CPU time (~47 s): the suites spend half their
  // time waiting on Redis, the FHIR server and retry backoffs, so a second suite fills the gaps.
  maxWorkers: 2,
  // Each e2e suite loads FHIR definitions and a Nest app into the worker's module registry; a worker that ran a dozen
  // of them held 600-800 MB of heap and was force-exited at the end ("a worker process has failed to exit
  // gracefully", every CI run of session 7) although it emitted 'exit' 1 ms after jest's end message with no open
  // handle: its teardown outlasted jest's 500 ms grace. A worker past this much memory after a suite is replaced.
  workerIdleMemoryLimit: '512MB',
};
