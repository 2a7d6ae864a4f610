export * from './operation-outcome';
export * from './logging';
export * from './metrics.module';
export * from './fhir-ids';
export * from './bearer-token';
export * from './capability-statement';
export * from './json-depth';
export * from './micro-batcher';
