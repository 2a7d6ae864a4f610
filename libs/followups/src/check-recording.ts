import type {
  BundleEntry,
  DetectedIssue,
  Observation,
  Questionnaire,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  Patient,
  Reference,
  Task,
} from '@medplum/fhirtypes';
import {
  canonicalOf,
  checkAnswers,
  clinicDay,
  effectsToReview,
  extractObservations,
  reportedEffectIssue,
} from '@kc/protocols';
import { transition } from '@kc/task-states';
import { carePlanReferenceOf } from './care-plan-state';

export interface CheckAnswers {
  /** The Task the check was planned as (draft, approved or overdue). */
  task: Task;
  /** The Questionnaire its protocol action is done with (ProtocolCatalog.questionnaireOf). */
  questionnaire: Questionnaire;
  /** The answers as sent (a QuestionnaireResponse's items, nested or flat). */
  answers: QuestionnaireResponseItem[];
  /** The clinician who recorded them (their FHIR user), when known. */
  author?: QuestionnaireResponse['author'] & NonNullable<Observation['performer']>[number];
  now: Date;
  /** The response's place in the transaction that writes all three (urn:uuid), so the others can point at it. */
  responseUrl: string;
  /** The clinic's time zone: the day the answers are named by. UTC unless given. */
  zone?: string;
}

export interface RecordedCheck {
  /** The Task done: `completed`, businessStatus done, output -> the response. */
  task: Task;
  response: QuestionnaireResponse;
  /** The scores and effects the Questionnaire marks for extraction (pain NRS, PEG score, each effect). */
  observations: Observation[];
  /** The effects reported that the Questionnaire marks for a clinician's review, each a DetectedIssue on the plan. */
  issues: DetectedIssue[];
}

/**
 * The tag on the answers this service records with their Task (`$complete`): the Task names them already, so the
 * poll and the notifications of answers written alone (a portal's) leave them without a job.
 */
export const RECORDED_WITH_TASK_TAG = {
  system: 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans',
  code: 'recorded-with-task',
  display: 'Recorded with its Task',
};

/** Whether answers were recorded here with their Task (RECORDED_WITH_TASK_TAG). */
export function recordedWithTask(response: { meta?: { tag?: { system?: string; code?: string }[] } }): boolean {
  return (
    response.meta?.tag?.some(
      (t) => t.system === RECORDED_WITH_TASK_TAG.system && t.code === RECORDED_WITH_TASK_TAG.code,
    ) ?? false
  );
}

/**
 * A check's answers, recorded: checked against the Questionnaire (AnswersRefused names each problem), kept as a
 * QuestionnaireResponse for the patient, the marked answers extracted as Observations (so the booster timing and any
 * EHR read the scores as they read the clinic's own), and the Task done through the state machine (InvalidTransition
 * from a closed state). Pure: the caller writes the three together.
 */
export function recordCheck(input: CheckAnswers): RecordedCheck {
  const { task, questionnaire, author, now, responseUrl } = input;
  const items = checkAnswers(questionnaire, input.answers);
  const carePlan = carePlanReferenceOf(task);
  const authored = now.toISOString();
  const patient = task.for as NonNullable<Observation['subject']> | undefined;
  // The infusion the check follows, as any reader of the answers finds it (R4 partOf: a Procedure).
  const infusion = task.reasonReference?.reference?.startsWith('Procedure/') ? task.reasonReference : undefined;
  const response: QuestionnaireResponse = {
    resourceType: 'QuestionnaireResponse',
    meta: { tag: [RECORDED_WITH_TASK_TAG] },
    status: 'completed',
    questionnaire: canonicalOf(questionnaire),
    subject: patient,
    ...(carePlan ? { basedOn: [{ reference: carePlan }] } : {}),
    ...(infusion ? { partOf: [{ reference: infusion.reference }] } : {}),
    authored,
    ...(author ? { author } : {}),
    item: items,
  };
  const observations = patient
    ? extractObservations(questionnaire, items, {
        subject: patient,
        effective: authored,
        performer: author,
        derivedFrom: { reference: responseUrl },
        basedOn: carePlan ? { reference: carePlan } : undefined,
      })
    : [];
  const done = transition(task, {
    event: 'complete',
    now,
    output: { reference: responseUrl, display: `Answers to the ${questionnaire.title ?? 'questionnaire'}` },
  });
  const issues = effectIssues(questionnaire, items, {
    task,
    identified: authored,
    response: { reference: responseUrl },
    author,
    zone: input.zone,
  });
  return { task: done, response, observations, issues };
}

const ISSUE_AUTHOR = /^(Practitioner|PractitionerRole)\//;

/**
 * What an issue recorded at a check is about: the check's plan (what it holds back) and patient. None for a check on
 * no plan or no patient: there is nothing to hold.
 */
export function checkIssueTarget(task: Task): { carePlan: string; patient: Reference<Patient> } | undefined {
  const carePlan = carePlanReferenceOf(task);
  const patient = task.for?.reference?.startsWith('Patient/') ? (task.for as Reference<Patient>) : undefined;
  return carePlan && patient ? { carePlan, patient } : undefined;
}

/**
 * The effects reported at a check that its Questionnaire marks for review, as DetectedIssues implicating the check's
 * plan (none for a check on no plan or no patient: there is nothing to hold).
 */
export function effectIssues(
  questionnaire: Questionnaire,
  items: QuestionnaireResponseItem[],
  at: {
    task: Task;
    identified: string;
    response: { reference: string };
    author?: { reference?: string; display?: string };
    zone?: string;
  },
): DetectedIssue[] {
  const target = checkIssueTarget(at.task);
  if (!target) return [];
  const author = at.author?.reference && ISSUE_AUTHOR.test(at.author.reference) ? at.author : undefined;
  return effectsToReview(questionnaire, items).map((reported) =>
    reportedEffectIssue(reported, {
      check: `Task/${at.task.id}`,
      ...target,
      identified: at.identified,
      // Named for the clinician who reads the issue (the page shows evidence by its display).
      response: {
        ...at.response,
        display: `Answers to the ${questionnaire.title ?? 'check'} of ${clinicDay(at.identified, at.zone)}`,
      },
      author: author,
    }),
  );
}

/**
 * The scores among the Observations a check's transaction wrote (a number: pain, the PEG score; not an effect), by
 * id: what goes to the booster timing. A server that answered without bodies gives their locations only, and every
 * Observation there is taken (the booster timing reads each and ignores what is not a score).
 */
export function scoreIdsWritten(entries: BundleEntry[]): string[] {
  return entries.flatMap((e) => {
    const observation = e.resource?.resourceType === 'Observation' ? e.resource : undefined;
    if (observation)
      return observation.valueQuantity || observation.valueInteger !== undefined ? [observation.id!] : [];
    const [type, id] = (e.response?.location ?? '').split('/');
    return type === 'Observation' && id ? [id] : [];
  });
}
