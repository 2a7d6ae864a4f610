export * from './operation-outcome';
export * from './json-logger';
export * from './metrics.module';
