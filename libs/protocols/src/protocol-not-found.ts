import type { Coding, DetectedIssue } from '@medplum/fhirtypes';
import { CANONICAL_BASE, SERVICE_CODE_SYSTEM } from './canonical';

/** Identifies a plan's "protocol not found" issue: `CarePlan/<id>`, one per plan (resolved and reopened, not written again). */
export const PROTOCOL_NOT_FOUND_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/protocol-not-found-key`;

/** fhir-profiles' CodeSystem. */
export const PROTOCOL_NOT_FOUND: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'protocol-not-found',
  display: 'Care plan’s protocol not found: the patient cannot be checked',
};

export interface ProtocolNotFoundAt {
  /** `CarePlan/<id>`. */
  carePlan: string;
  patient: NonNullable<DetectedIssue['patient']>;
  /** What the plan instantiates (url|version): not patient data, so the issue and the logs may name it. */
  canonical: string;
  identified: string;
}

/**
 * A plan with approved orders whose protocol is gone (neither the catalog's nor on the FHIR server, any version), as
 * an EHR reads an issue with the patient's care: nothing can tell whether a pregnancy or a blood pressure recorded
 * since contraindicates the orders, so they are held (unresolved, it holds them as a contraindication does) until the
 * protocol is posted again (the sweep then resolves it) or a clinician overrides it with what was decided.
 */
export function protocolNotFoundIssue(at: ProtocolNotFoundAt): DetectedIssue {
  return {
    resourceType: 'DetectedIssue',
    identifier: [{ system: PROTOCOL_NOT_FOUND_KEY_SYSTEM, value: at.carePlan }],
    status: 'preliminary',
    code: { coding: [PROTOCOL_NOT_FOUND], text: 'Care plan’s protocol not found' },
    severity: 'high',
    patient: at.patient,
    identifiedDateTime: at.identified,
    implicated: [{ reference: at.carePlan }],
    detail:
      `This care plan’s protocol (${at.canonical}) is not found any more, neither one of this service’s nor on the ` +
      'FHIR server, so the patient’s record cannot be checked against its contraindications. Its approved orders ' +
      'are held until the protocol is posted again, or a clinician overrides this with what was decided; nothing ' +
      'more under the plan is approved until the protocol is posted again.',
  };
}

export function isProtocolNotFound(issue: DetectedIssue): boolean {
  return Boolean(
    issue.code?.coding?.some((c) => c.system === PROTOCOL_NOT_FOUND.system && c.code === PROTOCOL_NOT_FOUND.code),
  );
}

/** The service's mitigation when the protocol is found again (fhir-profiles' CodeSystem). */
export const PROTOCOL_FOUND_AGAIN: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'protocol-found-again',
  display: 'Protocol found again: the patient is checked against it',
};

/**
 * The issue resolved by the service (the protocol is posted again: the plan is checked against it as before), as an
 * override resolves one: final, with a mitigation saying what was done (status values that R4's ObservationStatus and
 * Medplum's DetectedIssueStatus both have, so either server takes it).
 */
export function resolvedProtocolNotFound(issue: DetectedIssue, now: string): DetectedIssue {
  return {
    ...issue,
    status: 'final',
    mitigation: [
      ...(issue.mitigation ?? []),
      {
        action: {
          coding: [PROTOCOL_FOUND_AGAIN],
          text: 'The care plan’s protocol is found again: the patient is checked against it as before',
        },
        date: now,
      },
    ],
  };
}

/**
 * The issue, resolved by the service before, unresolved again (the protocol is gone again); undefined when it needs no
 * change: unresolved already, or overridden by a clinician (their decision stands for the orders it held).
 */
export function reopenedProtocolNotFound(issue: DetectedIssue, identified: string): DetectedIssue | undefined {
  const mitigations = issue.mitigation ?? [];
  if (!mitigations.length || !mitigations.every(isFoundAgainMitigation)) return undefined;
  const { mitigation: _resolved, ...rest } = issue;
  return { ...rest, status: 'preliminary', identifiedDateTime: identified };
}

/** Resolved by the service because its protocol was found again (not by a clinician). */
export function isFoundAgain(issue: DetectedIssue): boolean {
  const last = issue.mitigation?.at(-1);
  return Boolean(last && isFoundAgainMitigation(last));
}

function isFoundAgainMitigation(mitigation: NonNullable<DetectedIssue['mitigation']>[number]): boolean {
  return Boolean(
    mitigation.action.coding?.some(
      (c) => c.system === PROTOCOL_FOUND_AGAIN.system && c.code === PROTOCOL_FOUND_AGAIN.code,
    ),
  );
}
