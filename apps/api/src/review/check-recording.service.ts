import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type {
  BundleEntry,
  CarePlan,
  Questionnaire,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, notFound, OutcomeException } from '@kc/common';
import { includedOf, matchesOf } from '@kc/fhir';
import {
  carePlanReferenceOf,
  recordCheck,
  responseReferenceOf,
  scoreIdsWritten,
  type CheckAnswers,
  type RecordedCheck,
} from '@kc/followups';
import { PlanDefinitions } from '@kc/nest-core';
import { AnswersRefused, checkAnswers, effectsToReview } from '@kc/protocols';
import { PatientRecordEventsProducer, ScoreEventsProducer } from '@kc/queue';
import { deciderOf } from './provenance';
import { DecisionWriter } from './task-review.service';
import { TaskReminders } from './task-reminders';

const PERFORMER = /^(Practitioner|PractitionerRole)\//;

export interface CheckInput {
  taskId: string;
  seenVersion: string;
  caller: Caller;
  /** The answers: a QuestionnaireResponse's items (nested as the Questionnaire's groups, or flat). */
  answers: QuestionnaireResponseItem[];
}

/**
 * A check done: the clinician records the patient's answers to the Questionnaire the Task's protocol action is done
 * with (the post-infusion check), and the Task is completed with them. One transaction holds the Task (If-Match on
 * the version the clinician saw), the QuestionnaireResponse, the Observations extracted from it and the Provenance,
 * so a crash leaves all or none, and the same answers sent again on the same version are answered as the first time
 * (DecisionWriter). The scores then go to the booster timing as any recorded score does (its own queue; were that
 * lost, the score polling finds them).
 */
@Injectable()
export class CheckRecordingService {
  constructor(
    private readonly writer: DecisionWriter,
    private readonly reminders: TaskReminders,
    private readonly protocols: PlanDefinitions,
    private readonly scores: ScoreEventsProducer,
    private readonly records: PatientRecordEventsProducer,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /** The Questionnaire the Task is done with; 409 for a Task done otherwise (an infusion, by its Procedure). */
  async questionnaireFor(taskId: string): Promise<Questionnaire> {
    const { task, carePlan } = await this.read(taskId);
    return this.questionnaireOf(task, carePlan);
  }

  async record(input: CheckInput): Promise<Task> {
    const { task, carePlan } = await this.read(input.taskId);
    const questionnaire = await this.questionnaireOf(task, carePlan);
    const reminders = await this.reminders.contextFor(task, carePlan);
    const responseUrl = `urn:uuid:${randomUUID()}`;
    let recorded: RecordedCheck | undefined;
    let written: BundleEntry[] = [];
    const done = await this.writer.write({
      current: task,
      seenVersion: input.seenVersion,
      caller: input.caller,
      decision: 'complete',
      asked: (now) => this.completedWith(now, questionnaire, input.answers),
      change: (current) => {
        recorded = refusingBadAnswers(() =>
          recordCheck({
            task: current,
            questionnaire,
            answers: input.answers,
            author: performerOf(input.caller),
            now: new Date(),
            responseUrl,
            zone: this.config.clinicTimeZone,
          }),
        );
        return recorded.task;
      },
      consequences: [
        () => [
          {
            fullUrl: responseUrl,
            resource: recorded!.response,
            request: { method: 'POST', url: 'QuestionnaireResponse' },
          },
          ...recorded!.observations.map((o) => ({
            resource: o,
            request: { method: 'POST' as const, url: 'Observation' },
          })),
          ...recorded!.issues.map((issue) => ({
            resource: issue,
            request: { method: 'POST' as const, url: 'DetectedIssue' },
          })),
        ],
        (updated: Task) => this.reminders.afterCompletion(updated, reminders),
      ],
      written: (entries) => (written = entries),
    });
    // Each extracted score goes to the booster timing (which reads all of the patient's scores).
    await this.scores.enqueueEach(scoreIdsWritten(written), 'api');
    // An effect to review: the plan's approved orders are held now (its own job; the sweep would find it too). The
    // same check sent again (its answer lost, perhaps with this enqueue) writes nothing and asks for the hold again.
    const plan = carePlanReferenceOf(done);
    const toReview = written.length
      ? written.some(isIssueWritten)
      : effectsToReview(questionnaire, input.answers).length > 0;
    if (plan && toReview) await this.records.holdOrdersOf(plan);
    return done;
  }

  /**
   * Whether a Task done by a check was completed with these answers: the same check sent again (its answer lost) is
   * answered as done; other answers on the version already completed are a new check on a stale version (412).
   */
  private async completedWith(
    task: Task,
    questionnaire: Questionnaire,
    answers: QuestionnaireResponseItem[],
  ): Promise<boolean> {
    const response = responseReferenceOf(task);
    if (!response) return false;
    let asked: QuestionnaireResponseItem[];
    try {
      asked = checkAnswers(questionnaire, answers);
    } catch (err) {
      if (err instanceof AnswersRefused) return false;
      throw err;
    }
    const recorded = await this.writer.read<QuestionnaireResponse>('QuestionnaireResponse', response.split('/')[1]);
    return isDeepStrictEqual(recorded.item ?? [], asked);
  }

  /** The Task with its CarePlan (`_include`), in the decisions' shared reads. */
  private async read(taskId: string): Promise<{ task: Task; carePlan?: CarePlan }> {
    const bundle = await this.writer.search<Task | Resource>('Task', { _id: taskId, _include: 'Task:based-on' });
    const task = matchesOf<Task>(bundle).find((t) => t.id === taskId);
    if (!task) throw notFound(`Task/${taskId} not found`);
    const carePlan = includedOf(bundle).find(
      (r): r is CarePlan => `${r.resourceType}/${r.id}` === carePlanReferenceOf(task),
    );
    return { task, carePlan };
  }

  private async questionnaireOf(task: Task, carePlan: CarePlan | undefined): Promise<Questionnaire> {
    const questionnaire = await this.protocols.questionnaireOfTask(task, carePlan);
    if (!questionnaire)
      throw conflict(
        `${task.description ?? 'This task'} is not done by answering a questionnaire: an infusion is done when its Procedure is recorded`,
      );
    return questionnaire;
  }
}

function refusingBadAnswers<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof AnswersRefused)) throw err;
    throw new OutcomeException(
      400,
      'invalid',
      err.message,
      err.problems.map((p) => `QuestionnaireResponse.item.where(linkId='${p.linkId}')`),
    );
  }
}

/** The clinician as performer and author: their FHIR user when a Practitioner (else the Provenance names them). */
function performerOf(caller: Caller): CheckAnswers['author'] {
  const who = deciderOf(caller);
  return who?.reference && PERFORMER.test(who.reference)
    ? { reference: who.reference, display: who.display }
    : undefined;
}

function isIssueWritten(entry: BundleEntry): boolean {
  return entry.resource?.resourceType === 'DetectedIssue' || /^DetectedIssue\//.test(entry.response?.location ?? '');
}
