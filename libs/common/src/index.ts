export * from './operation-outcome';
export * from './operation-outcome.filter';
export * from './json-logger';
export * from './metrics.module';
