import type { CarePlan, Coding, Patient } from '@medplum/fhirtypes';
import { SERVICE_CODE_SYSTEM } from '@kc/protocols';
import { sameCoding } from '@kc/task-states';

/** Why a plan ended with its patient's death, as its note and its Provenance say it. */
export const ENDED_FOR_DEATH = 'Ended by ketamine-careplans: the patient is recorded as deceased in the EHR';

/** Why nothing is applied nor approved for a patient recorded as deceased ($apply, an approval: 422). */
export const DECEASED_REFUSAL =
  'The patient is recorded as deceased in the EHR: no plan is applied and nothing is approved for them. If the record is wrong, correct it in the EHR first.';

/**
 * A plan ended for its patient's death, tagged so (R4 CarePlan has no statusReason to search): the sweep finds such plans
 * whose patient the EHR no longer records as deceased (`CarePlan?_tag=<system>|ended-for-death`). Since session 46.
 */
export const ENDED_FOR_DEATH_TAG: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'ended-for-death',
  display: 'Ended: the patient was recorded as deceased',
};

/** The `_tag` search value of plans ended for a death not yet found corrected. */
export const ENDED_FOR_DEATH_TAG_SEARCH = `${ENDED_FOR_DEATH_TAG.system}|${ENDED_FOR_DEATH_TAG.code}`;

/** Its tag once the clinic was told the death record was corrected (so it is told once). */
export const DEATH_RECORD_CORRECTED_TAG: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'death-record-corrected',
  display: 'Ended for a death the EHR has since taken back',
};

/** What the plan's note says once the death is found taken back: it stays ended, and what the clinic does. */
export const DEATH_RECORD_CORRECTED =
  'The EHR no longer records the patient as deceased: this plan stays ended (its sessions were withdrawn, their orders cancelled). If their care goes on, apply the protocol again.';

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
    meta: { ...carePlan.meta, tag: [...withoutDeathTags(carePlan), ENDED_FOR_DEATH_TAG] },
    note: [...(carePlan.note ?? []), { time: now.toISOString(), text: ENDED_FOR_DEATH }],
  };
}

/**
 * A plan ended for its patient's death, whose patient the EHR no longer records as deceased (a death recorded in error,
 * taken back): it stays ended (what it held was withdrawn; only a clinician knows what the patient's care is now), its
 * note says so and what to do, and its tag says the clinic was told. Undefined for any other plan (not ended for a
 * death, or told already).
 */
export function planOfDeathTakenBack(carePlan: CarePlan, now: Date): CarePlan | undefined {
  if (!isEndedForDeath(carePlan)) return undefined;
  return {
    ...carePlan,
    meta: { ...carePlan.meta, tag: [...withoutDeathTags(carePlan), DEATH_RECORD_CORRECTED_TAG] },
    note: [...(carePlan.note ?? []), { time: now.toISOString(), text: DEATH_RECORD_CORRECTED }],
  };
}

/** Ended for its patient's death (its tag), the clinic not yet told of the death taken back. */
export function isEndedForDeath(carePlan: CarePlan): boolean {
  return Boolean(carePlan.meta?.tag?.some((t) => sameCoding(t, ENDED_FOR_DEATH_TAG)));
}

/** Ended for its patient's death (its tag), whether or not the death has since been taken back. */
export function wasEndedForDeath(carePlan: CarePlan): boolean {
  return Boolean(
    carePlan.meta?.tag?.some((t) => sameCoding(t, ENDED_FOR_DEATH_TAG) || sameCoding(t, DEATH_RECORD_CORRECTED_TAG)),
  );
}

function withoutDeathTags(carePlan: CarePlan): Coding[] {
  return (carePlan.meta?.tag ?? []).filter(
    (t) => !sameCoding(t, ENDED_FOR_DEATH_TAG) && !sameCoding(t, DEATH_RECORD_CORRECTED_TAG),
  );
}
