export * from './operation-outcome';
export * from './json-logger';
export * from './metrics.module';
export * from './fhir-ids';
export * from './bearer-token';
export * from './capability-statement';
