export * from './fhir-sandbox-server';
export * from './sqlite-repository';
export * from './fhir-sandbox-thread';
export * from './store-metrics';
export * from './store-backup';
export * from './store-backups';
export * from './store-restore';
