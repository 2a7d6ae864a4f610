export * from './api.module';
export * from './create-api-app';
export * from './operations/fhir-store-backups.port';
export { subscribeToEmbeddedStore } from './events/embedded-store-subscriptions';
export { WEBHOOK_PATH } from './events/fhir-webhook.controller';
