import type { Dosage, MedicationRequest, Quantity } from '@medplum/fhirtypes';

/** How a dose or rate was given (HL7 dose-rate-type): `ordered` as prescribed (per kg here), `calculated` for this patient. */
export const DOSE_RATE_TYPE = 'http://terminology.hl7.org/CodeSystem/dose-rate-type';

export type DoseRateType = 'ordered' | 'calculated';

/** The type of a doseAndRate entry, as written. */
export function doseRateType(code: DoseRateType): NonNullable<Dosage['doseAndRate']>[number]['type'] {
  return { coding: [{ system: DOSE_RATE_TYPE, code, display: code === 'ordered' ? 'Ordered' : 'Calculated' }] };
}

/** Whether a doseAndRate entry is of this type. */
export const ofDoseRateType = (code: DoseRateType) => (entry: NonNullable<Dosage['doseAndRate']>[number]) =>
  entry.type?.coding?.some((c) => c.system === DOSE_RATE_TYPE && c.code === code) ?? false;

/**
 * The `ordered` value of a request in this unit, in any of its dosages: its rate (`rateQuantity`, the infusion's
 * mg/kg/h) or its dose (`doseQuantity`, a bolus's mg/kg). Undefined when it gives none in that unit.
 */
export function orderedValue(
  request: MedicationRequest | undefined,
  field: 'rateQuantity' | 'doseQuantity',
  unit: string,
): number | undefined {
  return request?.dosageInstruction
    ?.flatMap((d) => d.doseAndRate ?? [])
    .filter(ofDoseRateType('ordered'))
    .map((e) => e[field])
    .find((q): q is Quantity => q?.code === unit && typeof q.value === 'number')?.value;
}
