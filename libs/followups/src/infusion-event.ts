import type { Period, Procedure } from '@medplum/fhirtypes';

/** A completed infusion, as the follow-up rules need it. */
export interface InfusionCompleted {
  procedureId: string;
  patientId: string;
  carePlanId: string;
  /** When the infusion happened; follow-up windows are anchored on its end. */
  performed: Period;
}

export type InfusionEventCheck = { ok: true; event: InfusionCompleted } | { ok: false; reason: string };

/** Why an infusion naming no plan is not followed up as it is (UnlinkedInfusions looks for its plan). */
export const NOT_BASED_ON_A_CAREPLAN = 'not based on a CarePlan';

/**
 * Decides whether a Procedure is an infusion this service follows up: completed, for a patient, based on a
 * CarePlan, with a time. Anything else (a planned infusion, an unrelated procedure) is ignored, not failed.
 */
export function toInfusionCompleted(procedure: Procedure): InfusionEventCheck {
  if (procedure.resourceType !== 'Procedure' || !procedure.id) return { ok: false, reason: 'not a stored Procedure' };
  if (procedure.status !== 'completed') return { ok: false, reason: `status is ${procedure.status}, not completed` };
  const patientId = /^Patient\/([^/]+)$/.exec(procedure.subject?.reference ?? '')?.[1];
  if (!patientId) return { ok: false, reason: 'subject is not a Patient reference' };
  const carePlanId = procedure.basedOn?.map((b) => /^CarePlan\/([^/]+)$/.exec(b.reference ?? '')?.[1]).find(Boolean);
  const performed = performedOf(procedure);
  if (!performed) return { ok: false, reason: 'no performed time' };
  if (!carePlanId) return { ok: false, reason: NOT_BASED_ON_A_CAREPLAN };
  return { ok: true, event: { procedureId: procedure.id, patientId, carePlanId, performed } };
}

/** When a Procedure happened (its period, or its instant as one), with an end; undefined without a valid time. */
export function performedOf(procedure: Procedure): Period | undefined {
  const performed =
    procedure.performedPeriod ??
    (procedure.performedDateTime
      ? { start: procedure.performedDateTime, end: procedure.performedDateTime }
      : undefined);
  const end = performed?.end ?? performed?.start;
  if (!end || Number.isNaN(Date.parse(end))) return undefined;
  return { start: performed!.start ?? end, end };
}
