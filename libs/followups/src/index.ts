export * from './infusion-event';
export * from './plan-follow-ups';
export * from './infusion-history';
export * from './care-plan-state';
export * from './superseded';
export * from './reminders';
export * from './booster-timing';
export * from './stopped-plans';
