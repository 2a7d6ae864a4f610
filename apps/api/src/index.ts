export * from './api.module';
export * from './create-api-app';
export * from './operations/fhir-store-backups.port';
