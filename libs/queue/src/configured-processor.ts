import type { Type } from '@nestjs/common';
import { Processor, type WorkerHost } from '@nestjs/bullmq';
import type { AppConfig } from '@kc/config';

export type NestWorkerOptions = NonNullable<Parameters<typeof Processor>[1]>;

/**
 * Lock and stall settings from config: a job whose worker died (no lock renewal within jobLockMs) is moved back
 * to waiting by another worker's stalled-job check and processed again.
 */
export function workerOptionsFrom(config: AppConfig, concurrency: number): NestWorkerOptions {
  return { concurrency, lockDuration: config.jobLockMs, stalledInterval: config.jobLockMs, maxStalledCount: 3 };
}

/**
 * @Processor() takes its worker options at decoration time, before config exists. This decorates a fresh
 * subclass per module instance instead, so each app (or test) gets workers with its own settings and the shared
 * class keeps no global state.
 */
export function configuredProcessor<T extends Type<WorkerHost>>(
  base: T,
  queueName: string,
  options: NestWorkerOptions,
): T {
  // The base is concrete (it implements process); Type<WorkerHost> just cannot say so.
  const configured = class extends (base as Type<object>) {};
  Object.defineProperty(configured, 'name', { value: base.name });
  Processor(queueName, options)(configured);
  return configured as T;
}
