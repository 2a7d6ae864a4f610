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

/**
 * An order's rate as prescribed and as given (dose-rate types ordered and calculated), and its bolus when it gives one:
 * "0.75 mg/kg/h (52.5 mg/h)", "0.75 mg/kg/h (52.5 mg/h), bolus 0.25 mg/kg (17.5 mg)".
 */
export function orderRateText(order: MedicationRequest): string | undefined {
  const [infusion, ...others] = order.dosageInstruction ?? [];
  const rate = orderedAndCalculated(infusion?.doseAndRate, 'rateQuantity');
  const bolus = others.map((d) => orderedAndCalculated(d.doseAndRate, 'doseQuantity')).find(Boolean);
  return [rate, bolus && `bolus ${bolus}`].filter(Boolean).join(', ') || undefined;
}

function orderedAndCalculated(
  entries: Dosage['doseAndRate'],
  field: 'rateQuantity' | 'doseQuantity',
): string | undefined {
  const of = (type: DoseRateType) => {
    const q = entries?.find(ofDoseRateType(type))?.[field];
    return q?.value !== undefined ? `${q.value} ${q.unit ?? q.code ?? ''}`.trim() : undefined;
  };
  const [ordered, calculated] = [of('ordered'), of('calculated')];
  return ordered && calculated ? `${ordered} (${calculated})` : (ordered ?? calculated);
}
