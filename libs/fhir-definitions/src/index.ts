export * from './fhir-definitions';
