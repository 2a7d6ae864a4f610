export * from './task-states';
