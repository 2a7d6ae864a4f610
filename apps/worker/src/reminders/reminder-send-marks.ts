import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { QUEUES, queueRedis } from '@kc/queue';

/** Longer than a dead letter is tried again by itself (a week): a mark must outlive every retry of its reminder. */
const MARK_TTL_SECONDS = 8 * 24 * 3600;

/**
 * Which channels a reminder already went out on, for its time: a delivery whose record the FHIR server refused after
 * the email was sent (retried up to JOB_ATTEMPTS times, then tried again by the worker for a week) does not email the
 * patient again. Kept in Redis beside the reminders' jobs (their queue's connection); a Redis that cannot be read
 * sends (a reminder at least once, as before session 55).
 */
@Injectable()
export class ReminderSendMarks {
  private readonly logger = new Logger(ReminderSendMarks.name);

  constructor(
    // Its client, as the reminders' jobs use it: no connection of its own.
    @InjectQueue(QUEUES.reminders) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'queuePrefix'>,
  ) {}

  async sentBefore(requestId: string, occurrence: string | undefined, channel: string): Promise<boolean> {
    try {
      return (await (await queueRedis(this.queue)).exists(this.key(requestId, occurrence, channel))) === 1;
    } catch (err) {
      this.logger.warn({ msg: 'reminder send mark not read; sending', request: requestId, error: String(err) });
      return false;
    }
  }

  async sent(requestId: string, occurrence: string | undefined, channel: string): Promise<void> {
    try {
      await (await queueRedis(this.queue)).set(this.key(requestId, occurrence, channel), '1', 'EX', MARK_TTL_SECONDS);
    } catch (err) {
      this.logger.warn({ msg: 'reminder send mark not kept', request: requestId, error: String(err) });
    }
  }

  /** Per time: a reminder moved to another time is another message (its new time in its words). */
  private key(requestId: string, occurrence: string | undefined, channel: string): string {
    return `${this.config.queuePrefix}:reminder-sent:${requestId}:${occurrence ?? ''}:${channel}`;
  }
}
