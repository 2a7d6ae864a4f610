export * from './core.module';
export * from './protocol-catalog.module';
export * from './patient-data-loader';
export * from './contraindication-recorder';
export * from './order-holds';
export * from './task-reminder-records';
export * from './ehr-orders';
export * from './plan-definitions';
