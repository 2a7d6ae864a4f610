import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type {
  BundleEntry,
  CarePlan,
  DetectedIssue,
  Observation,
  Provenance,
  Questionnaire,
  QuestionnaireResponse,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient, FhirHttpError, ifMatchFor, includedOf, matchesOf, updateEntry } from '@kc/fhir';
import {
  adoptCheckDoneElsewhere,
  carePlanReferenceOf,
  checkDoneWhy,
  isCheckDoneElsewhere,
  remindersRevokedFor,
  responseReferenceOf,
  scoreIdsWritten,
} from '@kc/followups';
import { PlanDefinitions, remindersAboutTask } from '@kc/nest-core';
import { contraindicationState, DECISION_KEY_SYSTEM, decisionKey, isReportedAt } from '@kc/protocols';
import { PatientRecordEventsProducer, ScoreEventsProducer } from '@kc/queue';
import { changeProvenance, THIS_SERVICE } from '@kc/task-states';

type Agent = NonNullable<Provenance['agent'][number]['who']>;
const AGENT = /^(Practitioner|PractitionerRole|Organization|Patient|RelatedPerson|Device)\//;

/** Who answered, as a Provenance can name them (a CareTeam owner cannot be an agent). */
function agentOf(reference: { reference?: string; display?: string } | undefined): Agent | undefined {
  return reference?.reference && AGENT.test(reference.reference) ? reference : undefined;
}

export type CheckDoneElsewhereOutcome =
  { result: 'recorded'; observations: number; notTaken?: string } | { result: 'skipped'; why: string };

/**
 * A check an EHR completed itself (SDC / CPG: the form filler puts its QuestionnaireResponse in Task.output and
 * completes the Task), recorded here as if the clinic had recorded it with `$complete`: one transaction holds the Task
 * (businessStatus done, If-Match on the version read), the Observations extracted from the EHR's answers and a
 * Provenance naming who answered (the response's author, else the Task's owner). The scores then go to the booster
 * timing. A Task that is not such a check, or is already recorded, is left alone, so a repeated notification, the
 * poll finding it again, or a retry after a lost answer writes nothing.
 */
@Injectable()
export class ChecksDoneElsewhere {
  private readonly logger = new Logger(ChecksDoneElsewhere.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    private readonly scores: ScoreEventsProducer,
    private readonly records: PatientRecordEventsProducer,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /** `retry`: an earlier attempt failed, perhaps after writing the check and before queueing its hold. */
  async handle(taskId: string, now = new Date(), { retry = false } = {}): Promise<CheckDoneElsewhereOutcome> {
    // The Task with its CarePlan in one read; the answers in a second, when it names them.
    const bundle = await this.fhir.search<Task | Resource>('Task', { _id: taskId, _include: 'Task:based-on' });
    const task = matchesOf<Task>(bundle).find((t) => t.id === taskId);
    if (!task) return { result: 'skipped', why: 'no such Task' };
    if (!isCheckDoneElsewhere(task)) {
      if (retry && task.status === 'completed') await this.holdAgain(task);
      return { result: 'skipped', why: 'not completed elsewhere, or already recorded' };
    }
    const carePlan = includedOf(bundle).find(
      (r): r is CarePlan => `${r.resourceType}/${r.id}` === carePlanReferenceOf(task),
    );
    const questionnaire = await this.protocols.questionnaireOfTask(task, carePlan);
    if (!questionnaire) return { result: 'skipped', why: 'not a Task done by answering a questionnaire' };
    return this.record({ task, questionnaire, response: await this.responseOf(task), now });
  }

  /**
   * A check done elsewhere, recorded here: `task` as completed there (its version the one read: If-Match), with the
   * answers it names. `where` says how it was done, in the Provenance's reason.
   */
  async record(input: {
    task: Task;
    questionnaire: Questionnaire;
    response?: QuestionnaireResponse;
    now: Date;
    where?: string;
  }): Promise<CheckDoneElsewhereOutcome> {
    const { task, questionnaire, now, where = 'Recorded in the EHR' } = input;
    // Answers already extracted (matched alone, then the EHR completed the Task with them anyway): not twice.
    const taken = input.response && (await this.extractedAlready(input.response));
    const response = taken ? undefined : input.response;
    const adopted = adoptCheckDoneElsewhere({
      task,
      questionnaire,
      response,
      answersRecordedAlready: Boolean(taken),
      now,
      zone: this.config.clinicTimeZone,
    });
    const notTaken = taken ? 'its answers were recorded already' : adopted.notTaken;

    const observationUrls = adopted.observations.map(() => `urn:uuid:${randomUUID()}`);
    const issueUrls = adopted.issues.map(() => `urn:uuid:${randomUUID()}`);
    const decidedOn = decisionKey(`Task/${task.id}`, task.meta!.versionId!);
    const who = agentOf(response?.author) ?? agentOf(task.owner) ?? THIS_SERVICE;
    // Its reminders not sent yet revoked with it (since session 44; before, pending until their delivery revoked them).
    const plan = carePlanReferenceOf(task)?.slice('CarePlan/'.length);
    const reminders = plan
      ? remindersRevokedFor(task, await remindersAboutTask(this.fhir, plan, task.id!), checkDoneWhy(task))
      : [];
    const entries: BundleEntry[] = [
      {
        resource: adopted.task,
        request: { method: 'PUT', url: `Task/${task.id}`, ifMatch: ifMatchFor(task.meta!.versionId!) },
      },
      ...adopted.observations.map((resource, i) => ({
        fullUrl: observationUrls[i],
        resource,
        request: { method: 'POST' as const, url: 'Observation' },
      })),
      ...adopted.issues.map((resource, i) => ({
        fullUrl: issueUrls[i],
        resource,
        request: { method: 'POST' as const, url: 'DetectedIssue' },
      })),
      ...reminders.map(({ revoked, read }) => updateEntry(revoked, read.meta?.versionId)),
      {
        resource: {
          ...changeProvenance({
            targets: [
              { reference: `Task/${task.id}` },
              ...[...observationUrls, ...issueUrls].map((reference) => ({ reference })),
              ...reminders.map(({ read }) => ({ reference: `CommunicationRequest/${read.id}` })),
            ],
            revisionOf: { reference: decidedOn },
            who,
            activity: 'complete',
            now,
            reason: notTaken ? `${where}; nothing was extracted: ${notTaken}` : where,
          }),
          // The key the clinic's own decisions carry (the version decided on): the patient view finds it by it.
          meta: { tag: [{ system: DECISION_KEY_SYSTEM, code: decidedOn }] },
        },
        request: { method: 'POST', url: 'Provenance' },
      },
    ];
    const written = await this.fhir.transaction(entries);
    await this.scores.enqueueEach(scoreIdsWritten(written.entry ?? []), 'poll');
    // An effect to review (or answers not read here): the plan's approved orders are held now (its own job; the sweep
    // would find it too).
    const carePlanRef = carePlanReferenceOf(task);
    if (adopted.issues.length && carePlanRef) await this.records.holdOrdersOf(carePlanRef);
    // No patient data: ids and counts only.
    this.logger.log({
      msg: 'check recorded in the EHR taken as done',
      task: task.id,
      observations: adopted.observations.length,
      effectsToReview: adopted.issues.length,
      extracted: !notTaken,
    });
    return { result: 'recorded', observations: adopted.observations.length, notTaken };
  }

  /**
   * The hold a recorded check asked for, asked for again: an attempt that wrote the check and then failed to queue
   * the hold leaves the check recorded, so its retry lands here. One search, on retries only; the job holds what is
   * still to hold.
   */
  private async holdAgain(task: Task): Promise<void> {
    const carePlanRef = carePlanReferenceOf(task);
    if (!carePlanRef) return;
    const issues = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: carePlanRef });
    const waiting = issues.filter(
      (i) => isReportedAt(i, `Task/${task.id}`) && contraindicationState(i) === 'unresolved',
    );
    if (waiting.length) await this.records.holdOrdersOf(carePlanRef);
  }

  /** Whether Observations were extracted from these answers already (one search, for a check recorded elsewhere). */
  private async extractedAlready(response: QuestionnaireResponse): Promise<boolean> {
    const found = await this.fhir.search<Observation>('Observation', {
      'derived-from': `QuestionnaireResponse/${response.id}`,
      _count: 1,
    });
    return matchesOf(found).length > 0;
  }

  private async responseOf(task: Task): Promise<QuestionnaireResponse | undefined> {
    const reference = responseReferenceOf(task);
    if (!reference) return undefined;
    try {
      return await this.fhir.read<QuestionnaireResponse>('QuestionnaireResponse', reference.split('/')[1]);
    } catch (err) {
      if (err instanceof FhirHttpError && (err.status === 404 || err.status === 410)) return undefined;
      throw err;
    }
  }
}
