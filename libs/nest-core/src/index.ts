export * from './core.module';
export * from './protocol-catalog.module';
