export * from './fhir-sandbox-server';
export * from './fhir-definitions';
