import type { Coding, DetectedIssue, Procedure } from '@medplum/fhirtypes';
import { CANONICAL_BASE, SERVICE_CODE_SYSTEM } from './canonical';
import { clinicPeriod } from './clinic-time';

/** Identifies an infusion's "not linked to a care plan" issue: `Procedure/<id>`, one per infusion. */
export const INFUSION_NOT_LINKED_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/infusion-not-linked-key`;

/** fhir-profiles' CodeSystem. */
export const INFUSION_NOT_LINKED: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'infusion-not-linked',
  display: 'Infusion charted naming no care plan, for a patient on a ketamine infusion plan',
};

/**
 * How the issue was resolved (DetectedIssue.mitigation.action), fhir-profiles' CodeSystem: a clinician linked it
 * ($link-infusion); the service found what ties it to a plan later (the pump's record charted after it); the EHR
 * linked it itself; or it was taken back (entered in error, deleted). A clinician who says it was no session of the
 * plan overrides the issue ($override) with that reason.
 */
export const INFUSION_LINKED_BY_CLINICIAN: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'infusion-linked-by-clinician',
  display: 'Linked to its care plan by a clinician',
};
export const INFUSION_LINKED_ON_EVIDENCE: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'infusion-linked-on-evidence',
  display: "Linked to its care plan on evidence found since (the pump's record)",
};
export const INFUSION_LINKED_IN_EHR: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'infusion-linked-in-ehr',
  display: 'Linked to its care plan in the EHR',
};
export const INFUSION_TAKEN_BACK: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'infusion-taken-back',
  display: 'The infusion was recorded in error or deleted in the EHR',
};

/** The resolutions the service makes itself: nobody reviewed the issue. */
const BY_THE_SERVICE = [INFUSION_LINKED_ON_EVIDENCE, INFUSION_LINKED_IN_EHR, INFUSION_TAKEN_BACK];

export interface InfusionNotLinkedAt {
  procedure: Procedure & { id: string };
  /** `CarePlan/<id>`: the patient's open plans that follow up an infusion of this kind (by its code). */
  carePlans: string[];
  patient: NonNullable<DetectedIssue['patient']>;
  identified: string;
  /** The clinic's time zone, for when the infusion was (the page shows it). UTC unless given. */
  zone?: string;
}

/**
 * An infusion an EHR charted naming no care plan, with nothing to tie it to one (no protocol named, no pump record of
 * a plan's order), for a patient whose open plans follow up infusions of its code, as an EHR reads an issue with the
 * patient's care. By its code alone it may be another drug's infusion, so it is not followed up; but if it was a
 * session of the plan, its post-infusion check and next session are not planned, and its approved session stays open
 * with its order active (a second dose to give). So, unresolved, it holds the plans as a contraindication does
 * (approved orders held, nothing approved under them, the clinic told) until a clinician links it to its plan
 * ($link-infusion: then followed up) or says it was not one of their sessions ($override), or the EHR links it.
 */
export function infusionNotLinkedIssue(at: InfusionNotLinkedAt): DetectedIssue {
  const reference = `Procedure/${at.procedure.id}`;
  const plans = at.carePlans.length;
  return {
    resourceType: 'DetectedIssue',
    identifier: [{ system: INFUSION_NOT_LINKED_KEY_SYSTEM, value: reference }],
    status: 'preliminary',
    code: { coding: [INFUSION_NOT_LINKED], text: 'Infusion charted naming no care plan' },
    severity: 'moderate',
    patient: at.patient,
    identifiedDateTime: at.identified,
    implicated: at.carePlans.map((carePlan) => ({ reference: carePlan })),
    evidence: [{ detail: [{ reference, display: infusionCharted(at.procedure, at.zone) }] }],
    // In words, no references (the EHR shows it to its users; `evidence` holds the infusion's).
    detail:
      `${infusionCharted(at.procedure, at.zone)} (Procedure.basedOn), and nothing ties it to one of the patient’s ` +
      'plans: it names no protocol and the pump recorded none of their orders during it. By its code ' +
      'alone it may be an infusion of another drug, so it is not followed up: if it was a ketamine session, its ' +
      'post-infusion check and next session are not planned. ' +
      `Approved orders under the patient’s ${plans === 1 ? 'plan are' : `${plans} plans are`} held, and nothing more ` +
      'under them is approved, until a clinician links it to its care plan (it is then followed up) or records that ' +
      'it was not one of the plan’s sessions.',
  };
}

/** The infusion as the page names it: when it was, on the clinic's clock. */
function infusionCharted(procedure: Procedure, zone: string | undefined): string {
  const when = procedure.performedPeriod ?? { start: procedure.performedDateTime, end: procedure.performedDateTime };
  return `Infusion charted ${clinicPeriod(when, zone)}, naming no care plan`;
}

export function isInfusionNotLinked(issue: DetectedIssue): boolean {
  return Boolean(
    issue.code?.coding?.some((c) => c.system === INFUSION_NOT_LINKED.system && c.code === INFUSION_NOT_LINKED.code),
  );
}

/** The id of the infusion an `infusion-not-linked` issue is about (its evidence: `Procedure/<id>`). */
export function infusionNotLinkedOf(issue: DetectedIssue): string | undefined {
  return /^Procedure\/([^/]+)$/.exec(issue.evidence?.[0]?.detail?.[0]?.reference ?? '')?.[1];
}

/**
 * The issue resolved, as an override resolves one: final, with a mitigation saying how (`how`, one of the codings
 * above) and what; the clinician's reference as its author when they linked it.
 */
export function resolvedInfusionNotLinked(
  issue: DetectedIssue,
  how: Coding,
  text: string,
  now: string,
  author?: string,
): DetectedIssue {
  return {
    ...issue,
    status: 'final',
    mitigation: [
      ...(issue.mitigation ?? []),
      { action: { coding: [how], text }, date: now, ...(author ? { author: { reference: author } } : {}) },
    ],
  };
}

/** Resolved by the service itself (linked on evidence, linked in the EHR, taken back): nobody reviewed it. */
export function isNotLinkedResolvedByService(issue: DetectedIssue): boolean {
  const last = issue.mitigation?.at(-1);
  return Boolean(
    isInfusionNotLinked(issue) &&
    last?.action.coding?.some((c) => BY_THE_SERVICE.some((s) => s.system === c.system && s.code === c.code)),
  );
}

/**
 * How an `infusion-not-linked` issue settled without a clinician, from its infusion as it is now (undefined: deleted):
 * taken back (gone, entered in error, not done), or linked in the EHR (it names one of `plans`, the issue's, now, and
 * its own event follows it up; a plan of the EHR's own is no link). Undefined while it names none of them: a
 * clinician's to decide.
 */
export function notLinkedInfusionSettled(
  procedure: Procedure | undefined,
  plans: string[],
): { how: Coding; text: string } | undefined {
  if (!procedure || procedure.status !== 'completed')
    return {
      how: INFUSION_TAKEN_BACK,
      text: procedure
        ? `The infusion is ${procedure.status} in the EHR now: nothing to follow up`
        : 'The infusion was deleted in the EHR: nothing to follow up',
    };
  const [plan] = linkedPlansOf(procedure, plans);
  return plan ? { how: INFUSION_LINKED_IN_EHR, text: `Linked to ${plan} in the EHR, and followed up` } : undefined;
}

/**
 * Of an `infusion-not-linked` issue's plans (`plans`, `CarePlan/<id>`), those its infusion names now: linked to them.
 * A plan of the EHR's own it names (a care episode) is none of them, and no link.
 */
export function linkedPlansOf(procedure: Procedure, plans: string[]): string[] {
  return (procedure.basedOn ?? []).flatMap((r) => (r.reference && plans.includes(r.reference) ? [r.reference] : []));
}
