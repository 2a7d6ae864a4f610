import type { Coding, DetectedIssue, Procedure, Task } from '@medplum/fhirtypes';
import { CANONICAL_BASE, SERVICE_CODE_SYSTEM } from './canonical';

/** Identifies an infusion's "recorded in error" issue: `Procedure/<id>`, one per infusion. */
export const INFUSION_IN_ERROR_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/infusion-in-error-key`;

/** fhir-profiles' CodeSystem. */
export const INFUSION_RECORDED_IN_ERROR: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'infusion-recorded-in-error',
  display: 'Infusion recorded in error after its follow-ups were planned or its session was given',
};

/**
 * The Tasks an infusion left behind: those it planned (their `reasonReference`) and those it answered (done or
 * superseded by it: their `output`). What a clinician corrects by hand once the infusion is known not to have
 * happened. Pure.
 */
export function tasksOfInfusion(procedureId: string, tasks: Task[]): { planned: Task[]; answered: Task[] } {
  const reference = `Procedure/${procedureId}`;
  return {
    planned: tasks.filter((t) => t.reasonReference?.reference === reference),
    answered: tasks.filter((t) => (t.output ?? []).some((o) => o.valueReference?.reference === reference)),
  };
}

export interface InfusionInErrorAt {
  procedure: Procedure;
  /** `CarePlan/<id>`. */
  carePlan: string;
  patient: NonNullable<DetectedIssue['patient']>;
  planned: Task[];
  answered: Task[];
  /**
   * Sessions the pump gave during it, answered here by the pump's record since it was taken back before its follow-up
   * ran (sessionsGivenDuringInfusionInError): their post-infusion check and next sessions were never planned.
   */
  givenAtThePump?: Task[];
  identified: string;
}

/**
 * An infusion recorded in error (or deleted) after its follow-ups were written, as an EHR reads an issue with the
 * patient's care: what it planned is timed from an infusion that did not happen, and what it answered is done
 * although it was not. Unresolved, it holds the plan as a contraindication does (approved orders held, nothing
 * approved under it, the clinic told) until a clinician has put the plan right (rejected, rescheduled, approved again)
 * and overrides it with what was decided. Undefined when the infusion left nothing behind.
 */
export function infusionInErrorIssue(at: InfusionInErrorAt): DetectedIssue | undefined {
  const given = at.givenAtThePump ?? [];
  const tasks = [...at.planned, ...at.answered, ...given];
  if (!tasks.length) return undefined;
  const reference = `Procedure/${at.procedure.id}`;
  const followedUp = at.planned.length + at.answered.length > 0;
  return {
    resourceType: 'DetectedIssue',
    identifier: [{ system: INFUSION_IN_ERROR_KEY_SYSTEM, value: reference }],
    status: 'preliminary',
    code: { coding: [INFUSION_RECORDED_IN_ERROR], text: 'Infusion recorded in error' },
    severity: 'high',
    patient: at.patient,
    identifiedDateTime: at.identified,
    implicated: [{ reference: at.carePlan }, ...tasks.map((t) => ({ reference: `Task/${t.id}` }))],
    evidence: [{ detail: [{ reference }] }],
    detail:
      (followedUp
        ? `The infusion ${reference} was recorded in error after its follow-ups were planned: ` +
          `${at.planned.length} Task(s) it planned are timed from it, and ${at.answered.length} it answered are done ` +
          'or superseded although it did not happen. ' +
          (given.length
            ? `The pump recorded giving ${given.length} approved session(s) during it that its follow-up had not ` +
              'answered: they are done and their orders completed as the pump recorded. '
            : '')
        : `The infusion ${reference} was recorded in error before its follow-ups were planned, but the pump recorded ` +
          `giving ${given.length} approved session(s) during it: they are done and their orders completed as the ` +
          'pump recorded, and no post-infusion check or next session was planned from it (record the infusion ' +
          'again to plan them). ') +
      'Its approved orders are held, and nothing more under the plan is approved, until a clinician has put the plan ' +
      'right (reject, reschedule or approve again) and overrides this with what was decided.',
  };
}

export function isInfusionInError(issue: DetectedIssue): boolean {
  return Boolean(
    issue.code?.coding?.some(
      (c) => c.system === INFUSION_RECORDED_IN_ERROR.system && c.code === INFUSION_RECORDED_IN_ERROR.code,
    ),
  );
}

/** The id of the infusion an `infusion-recorded-in-error` issue is about (its evidence: `Procedure/<id>`). */
export function infusionInErrorOf(issue: DetectedIssue): string | undefined {
  return /^Procedure\/([^/]+)$/.exec(issue.evidence?.[0]?.detail?.[0]?.reference ?? '')?.[1];
}
