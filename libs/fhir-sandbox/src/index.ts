export * from './fhir-sandbox-server';
