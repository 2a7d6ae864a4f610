export * from './task-states';
export * from './request-authorisation';
export * from './provenance';
export * from './order-holds';
export * from './plan-pause-holds';
export * from './order-in-ehr';
export * from './window-as-set';
export * from './crossed-replacements';
export { sameCoding } from './order-status-reason';
