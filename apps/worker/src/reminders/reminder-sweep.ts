import { Inject, Injectable } from '@nestjs/common';
import type { CommunicationRequest } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { isDeliverable, sendTimeOf } from '@kc/followups';
import { ReminderQueue } from '@kc/queue';

/**
 * Finds the active reminders due within the horizon (or overdue) on the FHIR server and queues each as a delayed
 * job. The FHIR server is the source of truth: a reminder written by a decision, moved by a reschedule, or whose job
 * Redis lost is found here; a job already queued for the same reminder and time makes the add a no-op.
 */
@Injectable()
export class ReminderSweep {
  constructor(
    private readonly fhir: FhirClient,
    private readonly queue: ReminderQueue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async sweep(now = Date.now()): Promise<{ queued: number }> {
    const until = new Date(now + this.config.reminderHorizonMs).toISOString();
    const due = await this.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      status: 'active',
      occurrence: `le${until}`,
      // Paged by cursor on Medplum's server, whose `_offset` stops at 10,000.
      _sort: '_lastUpdated',
      _count: 200,
    });
    let queued = 0;
    for (const request of due) {
      const sendAt = sendTimeOf(request);
      if (!request.id || !sendAt || !isDeliverable(request)) continue;
      await this.queue.schedule(request.id, sendAt, now);
      queued++;
    }
    return { queued };
  }
}
