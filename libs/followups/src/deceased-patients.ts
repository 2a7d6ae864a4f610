import type { CarePlan, Patient } from '@medplum/fhirtypes';

/** Why a plan ended with its patient's death, as its note and its Provenance say it. */
export const ENDED_FOR_DEATH = 'Ended by ketamine-careplans: the patient is recorded as deceased in the EHR';

/** Why nothing is applied nor approved for a patient recorded as deceased ($apply, an approval: 422). */
export const DECEASED_REFUSAL =
  'The patient is recorded as deceased in the EHR: no plan is applied and nothing is approved for them. If the record is wrong, correct it in the EHR first.';

/** The plan statuses a death ends: a plan that still holds care, or will (draft), or is paused. */
const HOLDING_CARE: readonly CarePlan['status'][] = ['active', 'draft', 'on-hold'];

/**
 * Recorded as deceased (R4 Patient.deceased[x]): `deceasedBoolean` true, or a `deceasedDateTime`. A death recorded with
 * a date still to come (a data entry error, most likely) counts too: nothing is worth sending to such a record.
 */
export function isRecordedDeceased(patient: Pick<Patient, 'deceasedBoolean' | 'deceasedDateTime'>): boolean {
  return patient.deceasedBoolean === true || Boolean(patient.deceasedDateTime);
}

/**
 * A plan of a patient recorded as deceased, ended (since session 44; before, it went on: its sessions stayed approved
 * with their orders active, and the fasting and ride-home reminders went out to the patient's address): `revoked`, as a
 * plan stopped in the EHR, so the stopped-plan sweep withdraws its open Tasks, cancels their orders and revokes their
 * reminders, and an EHR reading CarePlan.status alone finds it over. Why in a note (R4 CarePlan has no statusReason).
 * Undefined for a plan over already.
 */
export function planEndedForDeath(carePlan: CarePlan, now: Date): CarePlan | undefined {
  if (!HOLDING_CARE.includes(carePlan.status)) return undefined;
  return {
    ...carePlan,
    status: 'revoked',
    note: [...(carePlan.note ?? []), { time: now.toISOString(), text: ENDED_FOR_DEATH }],
  };
}
