import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { isCheckDoneElsewhere } from '@kc/followups';
import { ProtocolCatalog } from '@kc/protocols';
import { CompletedTaskEventsProducer, QUEUES } from '@kc/queue';
import { initCursor, pollCursor, pollFromCursor, type StoredCursor } from '../maintenance/cursor-poll';

/**
 * Polling fallback for checks an EHR completed itself (a server that cannot notify, or a notification lost): the
 * completed Tasks of the kinds done by answering a Questionnaire, changed since the cursor, on the Procedure poll's
 * schedule. Only those this service has not recorded as done are queued.
 */
@Injectable()
export class CompletedChecksPoller {
  private readonly logger = new Logger(CompletedChecksPoller.name);
  private readonly kinds: string[];

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    catalog: ProtocolCatalog,
  ) {
    this.kinds = catalog.questionnaireTaskKinds();
  }

  private cursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'completed-checks');
  }

  async initCursor(): Promise<void> {
    if (this.kinds.length) await initCursor(await this.cursor());
  }

  async poll(): Promise<{ enqueued: number }> {
    if (!this.kinds.length) return { enqueued: 0 };
    let enqueued = 0;
    await pollFromCursor(
      await this.cursor(),
      (from) =>
        this.fhir.searchAll<Task>('Task', {
          status: 'completed',
          code: this.kinds.join(','),
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      async (tasks) => {
        for (const task of tasks.filter(isCheckDoneElsewhere)) {
          await this.producer.enqueue(task.id!);
          enqueued++;
        }
      },
    );
    if (enqueued) this.logger.log({ msg: 'poll queued checks completed elsewhere', count: enqueued });
    return { enqueued };
  }
}
