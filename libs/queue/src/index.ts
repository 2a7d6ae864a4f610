export * from './queue-names';
export * from './queue.module';
export * from './jobs';
export * from './infusion-events.producer';
export * from './redis-connection';
export * from './configured-processor';
export * from './reminder-queue';
export * from './score-events.producer';
