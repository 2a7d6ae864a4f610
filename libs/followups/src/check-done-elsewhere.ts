import type { DetectedIssue, Observation, Questionnaire, QuestionnaireResponse, Task } from '@medplum/fhirtypes';
import {
  AnswersRefused,
  checkAnswers,
  clinicDay,
  extractObservations,
  unreadAnswersIssue,
  unreadAnswersSeverity,
} from '@kc/protocols';
import { isOpen, transition } from '@kc/task-states';
import { carePlanReferenceOf } from './care-plan-state';
import { checkIssueTarget, effectIssues } from './check-recording';

const PERFORMER = /^(Practitioner|PractitionerRole|Patient|RelatedPerson)\//;

/**
 * A check Task an EHR completed itself (Task.status completed, the answers named in Task.output as SDC and CPG
 * have a form filler do), which this service has not recorded as done: its businessStatus is still open.
 */
export function isCheckDoneElsewhere(task: Task): boolean {
  return task.status === 'completed' && isOpen(task);
}

/** The QuestionnaireResponse a completed Task's output names (the filler's answers), if any. */
export function responseReferenceOf(task: Task): string | undefined {
  return task.output
    ?.map((o) => o.valueReference?.reference)
    .find((r): r is string => !!r && /^QuestionnaireResponse\/[A-Za-z0-9\-.]{1,64}$/.test(r));
}

export interface CheckDoneElsewhere {
  /** The check as the EHR left it (isCheckDoneElsewhere). */
  task: Task;
  /** The Questionnaire its protocol action is done with (ProtocolCatalog.questionnaireOf). */
  questionnaire: Questionnaire;
  /** The answers its output names, as read from the FHIR server; absent when it names none or they are gone. */
  response?: QuestionnaireResponse;
  /** Its answers were read here already (matched alone before the EHR completed the Task with them). */
  answersRecordedAlready?: boolean;
  now: Date;
  /** The clinic's time zone: the day the answers are named by. UTC unless given. */
  zone?: string;
}

export interface AdoptedCheck {
  /** The Task recorded as done (businessStatus done); the EHR's status, output and end are kept. */
  task: Task;
  /** The scores and effects extracted from the EHR's answers, as from the clinic's own ($complete). */
  observations: Observation[];
  /**
   * The effects reported that the Questionnaire marks for review, as from the clinic's own (recordCheck); or, its
   * answers not read here, that they were not (unreadAnswersIssue), when the Questionnaire asks for it.
   */
  issues: DetectedIssue[];
  /**
   * Why nothing was extracted, in words, when nothing was (no answers, another questionnaire, answers that do not
   * fit).
   */
  notTaken?: string;
}

/**
 * A check done in the EHR, taken as done here: the Task gets this service's `done`, and the EHR's answers, when they
 * are the check's Questionnaire's and fit it (checkAnswers), are extracted as Observations (derivedFrom the EHR's
 * response, which is not rewritten) so the booster timing and the worklist read the scores as any others. Answers
 * that do not fit are not guessed at: the check is still done (the EHR says so), and `notTaken` says why nothing was
 * extracted. Pure: the caller writes the Task and the Observations together.
 */
export function adoptCheckDoneElsewhere(input: CheckDoneElsewhere): AdoptedCheck {
  const { task, questionnaire, response, now } = input;
  const title = questionnaire.title ?? 'questionnaire';
  let observations: Observation[] = [];
  let issues: DetectedIssue[] = [];
  let notTaken: string | undefined;
  const patient = task.for as NonNullable<Observation['subject']> | undefined;
  if (!response) notTaken = `no answers to the ${title} are linked to it (Task.output)`;
  else if (response.questionnaire?.split('|')[0] !== questionnaire.url)
    notTaken = `its answers are to another questionnaire (${response.questionnaire ?? 'none named'})`;
  else if (response.status !== 'completed' && response.status !== 'amended')
    notTaken = `its answers are not final (${response.status})`;
  else if (!patient) notTaken = 'it names no patient';
  else {
    try {
      const items = checkAnswers(questionnaire, response.item ?? []);
      const carePlan = carePlanReferenceOf(task);
      const author =
        response.author?.reference && PERFORMER.test(response.author.reference) ? response.author : undefined;
      const effective = response.authored ?? task.executionPeriod?.end ?? now.toISOString();
      const answers = { reference: `QuestionnaireResponse/${response.id}` };
      observations = extractObservations(questionnaire, items, {
        subject: patient,
        effective,
        performer: author as NonNullable<Observation['performer']>[number] | undefined,
        derivedFrom: answers,
        basedOn: carePlan ? { reference: carePlan } : undefined,
      });
      issues = effectIssues(questionnaire, items, {
        task,
        identified: effective,
        response: answers,
        author,
        zone: input.zone,
      });
    } catch (err) {
      if (!(err instanceof AnswersRefused)) throw err;
      notTaken = `its answers do not fit the ${title}: ${err.message}`;
    }
  }
  if (notTaken && !input.answersRecordedAlready) issues = unreadAnswers(input, notTaken);
  // No output added: the EHR's output already names its answers.
  return { task: transition(task, { event: 'complete', now }), observations, issues, notTaken };
}

/**
 * A check done with answers not read here: the effects it asks about were not judged, so, when its Questionnaire says
 * so (unreadAnswersSeverity), they wait for a clinician's review as a reported effect would.
 */
function unreadAnswers(input: CheckDoneElsewhere, why: string): DetectedIssue[] {
  const { task, questionnaire, response, now } = input;
  const severity = unreadAnswersSeverity(questionnaire);
  const target = checkIssueTarget(task);
  if (!severity || !target) return [];
  const title = questionnaire.title ?? 'check';
  const done = task.executionPeriod?.end ?? task.meta?.lastUpdated ?? now.toISOString();
  return [
    unreadAnswersIssue(severity, {
      check: `Task/${task.id}`,
      ...target,
      identified: now.toISOString(),
      title,
      why,
      // What the clinician reads them in: the answers the EHR linked, else the check itself.
      evidence: response?.id
        ? {
            reference: `QuestionnaireResponse/${response.id}`,
            display: `Answers to the ${title} of ${clinicDay(done, input.zone)}`,
          }
        : { reference: `Task/${task.id}`, display: `The ${title} of ${clinicDay(done, input.zone)}` },
    }),
  ];
}
