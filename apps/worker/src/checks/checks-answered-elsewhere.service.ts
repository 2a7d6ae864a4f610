import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, QuestionnaireResponse, Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, searchWhole } from '@kc/fhir';
import { answeredCheck, carePlanReferenceOf, checkAnsweredBy } from '@kc/followups';
import { PlanDefinitions } from '@kc/nest-core';
import { ProtocolCatalog } from '@kc/protocols';
import { ChecksDoneElsewhere, type CheckDoneElsewhereOutcome } from './checks-done-elsewhere.service';

/**
 * Answers to a check written without its Task (a patient portal, an EHR that writes the QuestionnaireResponse and
 * leaves the Task alone): matched to the patient's open check that asks that Questionnaire (checkAnsweredBy), which is
 * then recorded as done as if the EHR had completed it with them (ChecksDoneElsewhere.record: one transaction, If-Match
 * on the check as read, a Provenance naming who answered). Answers a Task already names, this service's own
 * `$complete` included, are left alone, so a notification again, the poll or a retry writes nothing.
 */
@Injectable()
export class ChecksAnsweredElsewhere {
  private readonly logger = new Logger(ChecksAnsweredElsewhere.name);
  private readonly kinds: string[];
  /** The urls of the Questionnaires a check is done with (answers to any version of them are a check's). */
  private readonly questionnaires: Set<string>;
  /**
   * The same as answers name them: the url and the url|version (servers match a canonical search parameter exactly),
   * what the poll asks the FHIR server for.
   */
  readonly checkQuestionnaires: readonly string[];

  constructor(
    private readonly fhir: FhirClient,
    catalog: ProtocolCatalog,
    private readonly protocols: PlanDefinitions,
    private readonly checks: ChecksDoneElsewhere,
  ) {
    this.kinds = catalog.questionnaireTaskKinds();
    const checked = catalog.questionnaires().filter((q) => q.url);
    this.questionnaires = new Set(checked.map((q) => q.url!));
    this.checkQuestionnaires = checked.flatMap((q) => [q.url!, ...(q.version ? [`${q.url}|${q.version}`] : [])]);
  }

  async handle(responseId: string, now = new Date()): Promise<CheckDoneElsewhereOutcome> {
    const response = await this.fhir.readIfExists<QuestionnaireResponse>('QuestionnaireResponse', responseId);
    if (!response) return { result: 'skipped', why: 'no such QuestionnaireResponse' };
    if (!this.questionnaires.has(response.questionnaire?.split('|')[0] ?? ''))
      return { result: 'skipped', why: 'not the answers to a check' };
    const patient = response.subject?.reference;
    if (!patient?.startsWith('Patient/')) return { result: 'skipped', why: 'it names no patient' };
    if (!this.kinds.length) return { result: 'skipped', why: 'no protocol has a check done with a questionnaire' };
    // The patient's checks, any status (one already naming these answers means they were taken), with their plans.
    const found = await searchWhole(this.fhir, 'Task', {
      patient,
      code: this.kinds.join(','),
      _include: 'Task:based-on',
      _count: 200,
    });
    const match = checkAnsweredBy(response, matchesOf<Task>(found));
    if ('none' in match) {
      // No patient data: ids and the reason only.
      this.logger.log({ msg: 'answers matched to no open check', response: responseId, why: match.none });
      return { result: 'skipped', why: match.none };
    }
    const carePlan = includedOf<Resource>(found).find(
      (r): r is CarePlan => `${r.resourceType}/${r.id}` === carePlanReferenceOf(match.task),
    );
    const questionnaire = await this.protocols.questionnaireOfTask(match.task, carePlan);
    if (!questionnaire) return { result: 'skipped', why: 'its check is done with no known questionnaire' };
    this.logger.log({ msg: 'answers matched to a check', response: responseId, task: match.task.id });
    return this.checks.record({
      task: answeredCheck(match.task, response as QuestionnaireResponse & { id: string }),
      questionnaire,
      response,
      now,
      where: 'Answered without the Task (matched to this check: the patient’s, due by then, asking these questions)',
    });
  }
}
