export * from './api.module';
export * from './create-api-app';
