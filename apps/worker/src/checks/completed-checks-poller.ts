import { Injectable, Logger } from '@nestjs/common';
import type { QuestionnaireResponse, Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { isCheckDoneElsewhere, recordedWithTask } from '@kc/followups';
import { ProtocolCatalog } from '@kc/protocols';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { PollCursors, type ChangePoll } from '../maintenance/change-polls';
import { queueChangedSince } from '../maintenance/cursor-poll';
import { ChecksAnsweredElsewhere } from './checks-answered-elsewhere.service';

/** Its cursors' keys in Redis: the completed Tasks', the answers'. */
const TASKS_CURSOR = 'completed-checks';
const ANSWERS_CURSOR = 'check-answers';

/**
 * Polling fallback for checks an EHR completed itself: the completed Tasks of the kinds done by answering a
 * Questionnaire, changed since the cursor. Only those this service has not recorded as done are queued. And the
 * answers to those Questionnaires written since their own cursor (a portal that writes the QuestionnaireResponse
 * alone), each queued to be matched.
 */
@Injectable()
export class CompletedChecksPoller implements ChangePoll {
  readonly name = 'checks';
  readonly cursors: string[];
  private readonly logger = new Logger(CompletedChecksPoller.name);
  private readonly kinds: string[];

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    private readonly pollCursors: PollCursors,
    private readonly answers: ChecksAnsweredElsewhere,
    catalog: ProtocolCatalog,
  ) {
    this.kinds = catalog.questionnaireTaskKinds();
    this.cursors = this.kinds.length ? [TASKS_CURSOR, ANSWERS_CURSOR] : [];
  }

  /** Checks completed in the EHR, then answers written without their Task: each queued for its job to decide. */
  async poll(): Promise<{ queued: number; tasks: number; answers: number }> {
    const tasks = await this.pollCompleted();
    const answers = await this.pollAnswers();
    return { queued: tasks + answers, tasks, answers };
  }

  /** The check Questionnaires' responses written since the cursor (a portal's, the EHR's), but this service's own. */
  private async pollAnswers(): Promise<number> {
    const questionnaires = this.answers.checkQuestionnaires;
    if (!this.kinds.length || !questionnaires.length) return 0;
    const queued = await queueChangedSince(
      await this.pollCursors.of(ANSWERS_CURSOR),
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

  private async pollCompleted(): Promise<number> {
    if (!this.kinds.length) return 0;
    const enqueued = await queueChangedSince(
      await this.pollCursors.of(TASKS_CURSOR),
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
    return enqueued;
  }
}
