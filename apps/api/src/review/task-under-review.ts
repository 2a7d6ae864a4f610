import type { CarePlan, DetectedIssue, Patient, Period, Resource, Task } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, notFound, RESOURCE_ID_PATTERN, unprocessable } from '@kc/common';
import { includedOf, matchesOf } from '@kc/fhir';
import { carePlanHoldsTask, carePlanReferenceOf, dueAfterPlanEnd, planEndDay } from '@kc/followups';
import { clinicDay } from '@kc/protocols';
import { isAuthorisable, needsRequester, type AuthorisableRequest } from '@kc/task-states';
import { assertClearOf } from './contraindication-guard';
import type { DecisionWriter } from './task-review.service';

const PRESCRIBER = new RegExp(`^(Practitioner|PractitionerRole)/${RESOURCE_ID_PATTERN}$`);

export type Proposal = AuthorisableRequest & { id: string };

/** A Task a clinician is deciding on, with what the decision needs to judge it. */
export interface TaskUnderReview {
  task: Task;
  /** The request the Task authorises (`Task.focus`), when it is one (a proposal). */
  proposal?: Proposal;
  carePlan?: CarePlan;
  /** The DetectedIssues implicating its CarePlan (the approval guard's). */
  issues: DetectedIssue[];
  /** The patient it is for (`Task.for`), when the server included them. */
  patient?: Patient;
}

/**
 * One request: the Task, its patient (`_include=Task:patient`), the request it authorises (`_include=Task:focus`) if that is a proposal, its CarePlan
 * (`_include=Task:based-on`, for the protocol's reminder rules) and the DetectedIssues implicating it
 * (`_revinclude:iterate`, supported by Medplum and HAPI).
 */
export async function readTaskUnderReview(writer: DecisionWriter, taskId: string): Promise<TaskUnderReview> {
  const bundle = await writer.search<Task | Resource>('Task', {
    _id: taskId,
    // The patient too (since session 44): nothing is authorised for one recorded as deceased (PatientRecordGuard).
    _include: ['Task:focus', 'Task:based-on', 'Task:patient'],
    // The contraindications of its CarePlan (included just above) for the approval guard, in the same request.
    '_revinclude:iterate': 'DetectedIssue:implicated',
  });
  const task = matchesOf<Task>(bundle).find((t) => t.id === taskId);
  if (!task) throw notFound(`Task/${taskId} not found`);
  const included = includedOf(bundle);
  const focus = included.find((r) => `${r.resourceType}/${r.id}` === task.focus?.reference);
  const carePlan = included.find((r): r is CarePlan => `${r.resourceType}/${r.id}` === carePlanReferenceOf(task));
  const issues = included.filter((r): r is DetectedIssue => r.resourceType === 'DetectedIssue');
  const patient = included.find((r): r is Patient => `${r.resourceType}/${r.id}` === task.for?.reference);
  return {
    task,
    proposal: focus && isAuthorisable(focus) ? (focus as Proposal) : undefined,
    carePlan,
    issues,
    patient,
  };
}

/**
 * Checks made before a decision that authorises care writes anything: the plan still holds care (not stopped, over
 * or paused), it is clear of contraindications, and an order has a prescriber.
 */
export function assertAuthorisable(under: TaskUnderReview, caller: Caller): void {
  const { task, proposal, carePlan, issues } = under;
  // A post-infusion check outlives its plan stopped, completed or paused (carePlanHoldsTask): it orders nothing.
  const plan = carePlan && carePlanHoldsTask(carePlan, task);
  if (plan && !plan.ok)
    throw conflict(`This task cannot be approved or rescheduled: ${plan.reason}. It can still be rejected.`);
  assertClearOf(carePlanReferenceOf(task), issues);
  if (proposal && needsRequester(proposal) && !PRESCRIBER.test(caller.fhirUser ?? '')) {
    throw unprocessable(
      `Approving this Task orders a ${proposal.resourceType}, which needs a prescriber: sign in as a Practitioner (token claim fhirUser)`,
    );
  }
}

/**
 * A session is not approved or rescheduled for a window that begins after its plan ends (dueAfterPlanEnd: the EHR set
 * `CarePlan.period.end`): 409, the plan the EHR's to extend (since session 48). Checks and instructions are not held
 * to it.
 */
export function assertWithinPlan(under: TaskUnderReview, window: Period | undefined, zone: string): void {
  const { task, carePlan } = under;
  if (!carePlan || !task.focus?.reference?.startsWith('MedicationRequest/')) return;
  if (!dueAfterPlanEnd(carePlan, window, zone)) return;
  throw conflict(
    `Its care plan ends on ${planEndDay(carePlan, zone)} (set in the EHR): this session, from ${clinicDay(window!.start, zone)}, would be after it. Extend the plan in the EHR to approve it, or reject this task.`,
  );
}
