export * from './fhir-client';
export * from './fhir-errors';
export * from './etag';
export * from './fhir-auth';
export * from './fhir.module';
export * from './search-each';
export * from './fhir-metrics';
