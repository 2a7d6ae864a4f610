import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { JOBS, reminderJobId, retryOptions, type DeliverReminderJob } from './jobs';
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
    // An occasion (a hold released) queues it again beside a job that already ran and skipped it; a delivery that
    // finds it sent records nothing twice.
    const jobId =
      reminderJobId(communicationRequestId, sendAt) + (occasion ? `-${occasion.replace(/[^A-Za-z0-9\-.]/g, '_')}` : '');
    // Kept as failed (its attempts spent: a mail server down longer than its backoff; on the dead letters): run once
    // more each time the sweep finds its reminder still active, as the infusions' jobs are. Its delivery decides
    // afresh (a window closed since revokes it). Since session 54; before, the add under its id was a no-op, and the
    // reminder never went out.
    const earlier = await this.queue.getJob(jobId);
    if (earlier && (await earlier.isFailed())) {
      await earlier.retry();
      return;
    }
    await this.queue.add(
      JOBS.deliverReminder,
      { communicationRequestId, sendAt },
      {
        jobId,
        delay: Math.max(0, Date.parse(sendAt) - now),
        ...retryOptions(this.config),
        // Kept a day so a sweep re-finding a reminder in flight adds nothing; failures stay for the dead-letter view.
        removeOnComplete: { age: 24 * 3600 },
        removeOnFail: false,
      },
    );
  }
}
