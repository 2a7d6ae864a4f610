import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { JOBS, reminderJobId, retryOptions, type DeliverReminderJob } from './jobs';
import { addKeyed } from './keyed-jobs';
import { QUEUES } from './queue-names';

/**
 * Puts a reminder on the reminders queue, delayed until its time (BullMQ delayed job). The FHIR server holds the
 * truth (the CommunicationRequest and its occurrence); a job is only a wake-up call, re-checked when it fires.
 */
@Injectable()
export class ReminderQueue {
  constructor(
    @InjectQueue(QUEUES.reminders) private readonly queue: Queue<DeliverReminderJob>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async schedule(communicationRequestId: string, sendAt: string, now = Date.now(), occasion?: string): Promise<void> {
    await addKeyed(
      this.queue,
      JOBS.deliverReminder,
      { communicationRequestId, sendAt },
      {
        // An occasion (a hold released) queues it again beside a job that already ran and skipped it; a delivery
        // that finds it sent records nothing twice.
        jobId:
          reminderJobId(communicationRequestId, sendAt) +
          (occasion ? `-${occasion.replace(/[^A-Za-z0-9\-.]/g, '_')}` : ''),
        delay: Math.max(0, Date.parse(sendAt) - now),
        ...retryOptions(this.config),
        // Kept a day so a sweep re-finding a reminder in flight adds nothing; failures stay for the dead-letter view
        // until the sweep finds the reminder still active, which queues it again (addKeyed; its delivery decides
        // afresh: a window closed since revokes it).
        removeOnComplete: { age: 24 * 3600 },
        removeOnFail: false,
      },
      // Running now: it delivers what this sweep found (addKeyed's default: left).
    );
  }
}
