export * from './infusion-event';
export * from './plan-follow-ups';
