export * from './fhir-definitions';
export * from './profile-snapshot';
