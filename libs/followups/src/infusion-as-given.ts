import type {
  CodeableConcept,
  Coding,
  Medication,
  MedicationAdministration,
  MedicationRequest,
  Period,
} from '@medplum/fhirtypes';
import { bagOf, latestAdministration, type LastGiven } from '@kc/protocols';

/**
 * How far from the infusion's recorded time an administration may be and still be its own: the pump's clock and the
 * nurse's record of the Procedure are not the same clock, and a bag is often hung before the Procedure is started.
 */
export const ADMINISTRATION_MARGIN_MS = 60 * 60_000;

/** The interval an infusion's administrations are searched in: its performed period, widened by the margin. */
export function administrationWindow(performed: Period): { from: string; to: string } | undefined {
  const start = Date.parse(performed.start ?? performed.end ?? '');
  const end = Date.parse(performed.end ?? performed.start ?? '');
  if (Number.isNaN(start) || Number.isNaN(end)) return undefined;
  return {
    from: new Date(start - ADMINISTRATION_MARGIN_MS).toISOString(),
    to: new Date(end + ADMINISTRATION_MARGIN_MS).toISOString(),
  };
}

/**
 * The search (MedicationAdministration) for what the EHR recorded of an infusion, whichever order it names or none:
 * the patient's administrations within its time, with the orders and the bags they name (a pump's mL/h is read through
 * the bag's concentration). By time, as R4 has no search by `partOf`. Undefined: the infusion has no time.
 */
export function administrationsSearchParams(
  patientId: string,
  performed: Period,
): Record<string, string | string[]> | undefined {
  const window = administrationWindow(performed);
  if (!window) return undefined;
  return {
    patient: `Patient/${patientId}`,
    'effective-time': [`ge${window.from}`, `le${window.to}`],
    _include: ['MedicationAdministration:request', 'MedicationAdministration:medication'],
  };
}

/** What the EHR recorded around an infusion: the patient's administrations then, and the orders and bags they name. */
export interface AdministrationRecords {
  administrations: MedicationAdministration[];
  /** The orders the administrations name (`_include=MedicationAdministration:request`), whoever wrote them. */
  orders: MedicationRequest[];
  /** The bags they name (`_include=MedicationAdministration:medication`). */
  medications: Medication[];
}

export interface InfusionAsGivenInput {
  procedureId: string;
  performed: Period;
  /** The protocol's drug (its infusion ActivityDefinitions' product codes): only its administrations count. */
  drug: Coding[];
  records: AdministrationRecords;
  /** The order approved here for the session the infusion gave, when it is still open (active or held). */
  approved?: MedicationRequest;
}

/**
 * An infusion as it was given, whichever system recorded it: its administrations of the protocol's drug (part of this
 * Procedure, or of none and recorded within its time; whatever order they name, or none), and the order it was given
 * under (the one the latest administration names: the EHR's, when it replaced the order approved here; else the order
 * approved here). Undefined when nothing of it is on record: the next session is proposed at the protocol's rate.
 */
export function infusionAsGiven(input: InfusionAsGivenInput): LastGiven | undefined {
  const { records, approved } = input;
  const window = administrationWindow(input.performed);
  const orderOf = (a: MedicationAdministration) =>
    [...records.orders, ...(approved ? [approved] : [])].find(
      (o) => `MedicationRequest/${o.id}` === a.request?.reference,
    );
  const administrations = records.administrations.filter(
    (a) =>
      ofThisInfusion(a, input.procedureId, window) &&
      ofDrug(a, input.drug, orderOf(a), records.medications) &&
      a.status !== 'entered-in-error',
  );
  const latest = latestAdministration(administrations);
  const order = (latest && orderOf(latest)) ?? approved;
  if (!order && administrations.length === 0) return undefined;
  return {
    order,
    ...(approved && order !== approved ? { approved } : {}),
    administrations,
    medications: records.medications,
  };
}

/** Recorded as part of this infusion (ofThisInfusion): what a late administration is matched to its infusion by. */
export function isOfInfusion(
  administration: MedicationAdministration,
  procedureId: string,
  performed: Period,
): boolean {
  return ofThisInfusion(administration, procedureId, administrationWindow(performed));
}

/**
 * Part of this Procedure (`partOf`), or part of no Procedure and recorded within the infusion's time (the search's
 * bounds, checked again: servers differ on how a period matches a date range).
 */
function ofThisInfusion(
  administration: MedicationAdministration,
  procedureId: string,
  window: { from: string; to: string } | undefined,
): boolean {
  const procedures = (administration.partOf ?? [])
    .map((p) => p.reference)
    .filter((r): r is string => !!r?.startsWith('Procedure/'));
  if (procedures.length) return procedures.includes(`Procedure/${procedureId}`);
  if (!window) return false;
  const start = Date.parse(administration.effectivePeriod?.start ?? administration.effectiveDateTime ?? '');
  const end = Date.parse(administration.effectivePeriod?.end ?? administration.effectivePeriod?.start ?? '') || start;
  return !Number.isNaN(start) && start <= Date.parse(window.to) && end >= Date.parse(window.from);
}

/**
 * Of the protocol's drug, by what the administration says (its code, or its bag's code or an ingredient), else by the
 * order it names. An antiemetic given during the session is not the infusion's rate.
 */
function ofDrug(
  administration: MedicationAdministration,
  drug: Coding[],
  order: MedicationRequest | undefined,
  medications: Medication[],
): boolean {
  const medication = bagOf(administration, medications);
  const concepts: (CodeableConcept | undefined)[] = [
    administration.medicationCodeableConcept,
    medication?.code,
    ...(medication?.ingredient ?? []).map((i) => i.itemCodeableConcept),
  ];
  const coded = concepts.some((c) => c?.coding?.length);
  if (coded) return concepts.some((c) => isOf(c, drug));
  return isOf(order?.medicationCodeableConcept, drug);
}

function isOf(concept: CodeableConcept | undefined, drug: Coding[]): boolean {
  return (concept?.coding ?? []).some((c) => drug.some((d) => d.system === c.system && d.code === c.code));
}
