export * from './fhir-sandbox-server';
export * from './sqlite-repository';
