export * from './operation-outcome';
export * from './operation-outcome.filter';
export * from './json-logger';
