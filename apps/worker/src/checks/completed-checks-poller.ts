import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { QuestionnaireResponse, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { isCheckDoneElsewhere, recordedWithTask } from '@kc/followups';
import { ProtocolCatalog } from '@kc/protocols';
import { CompletedTaskEventsProducer, QUEUES } from '@kc/queue';
import { initCursor, pollCursor, queueChangedSince, type StoredCursor } from '../maintenance/cursor-poll';
import { ChecksAnsweredElsewhere } from './checks-answered-elsewhere.service';

/**
 * Polling fallback for checks an EHR completed itself (a server that cannot notify, or a notification lost): the
 * completed Tasks of the kinds done by answering a Questionnaire, changed since the cursor, on the Procedure poll's
 * schedule. Only those this service has not recorded as done are queued. And the answers to those Questionnaires
 * written since their own cursor (a portal that writes the QuestionnaireResponse alone), each queued to be matched.
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
    private readonly answers: ChecksAnsweredElsewhere,
    catalog: ProtocolCatalog,
  ) {
    this.kinds = catalog.questionnaireTaskKinds();
  }

  private cursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'completed-checks');
  }

  private answersCursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'check-answers');
  }

  async initCursor(): Promise<void> {
    if (!this.kinds.length) return;
    await initCursor(await this.cursor());
    await initCursor(await this.answersCursor());
  }

  /** Checks completed in the EHR, then answers written without their Task: each queued for its job to decide. */
  async poll(): Promise<{ enqueued: number; answers: number }> {
    const { enqueued } = await this.pollCompleted();
    return { enqueued, answers: await this.pollAnswers() };
  }

  /** The check Questionnaires' responses written since the cursor (a portal's, the EHR's), but this service's own. */
  private async pollAnswers(): Promise<number> {
    const questionnaires = this.answers.checkQuestionnaires;
    if (!this.kinds.length || !questionnaires.length) return 0;
    const queued = await queueChangedSince(
      await this.answersCursor(),
      (from) =>
        this.fhir.searchAll<QuestionnaireResponse>('QuestionnaireResponse', {
          questionnaire: questionnaires.join(','),
          status: 'completed,amended',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.producer.enqueueAnswers(id),
      // This service's own (`$complete`) name their Task already: no job for them.
      (r) => !recordedWithTask(r),
    );
    if (queued) this.logger.log({ msg: 'poll queued answers to checks', count: queued });
    return queued;
  }

  private async pollCompleted(): Promise<{ enqueued: number }> {
    if (!this.kinds.length) return { enqueued: 0 };
    const enqueued = await queueChangedSince(
      await this.cursor(),
      (from) =>
        this.fhir.searchAll<Task>('Task', {
          status: 'completed',
          code: this.kinds.join(','),
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.producer.enqueue(id),
      isCheckDoneElsewhere,
    );
    if (enqueued) this.logger.log({ msg: 'poll queued checks completed elsewhere', count: enqueued });
    return { enqueued };
  }
}
