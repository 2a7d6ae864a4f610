export * from './task-states';
export * from './request-authorisation';
