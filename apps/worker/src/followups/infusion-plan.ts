import type { CarePlan, Procedure } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { carePlanReferencesOf, protocolPlanOf } from '@kc/followups';

/**
 * The plan of a protocol an infusion names (protocolPlanOf): the CarePlans it is based on read in one search, the first
 * that instantiates a protocol; undefined when it names none, or only the EHR's own plans. Nothing is read for an
 * infusion naming no CarePlan.
 */
export async function protocolPlanNamedBy(fhir: FhirClient, procedure: Procedure): Promise<CarePlan | undefined> {
  const named = carePlanReferencesOf(procedure);
  if (!named.length) return undefined;
  const plans = await fhir.searchAll<CarePlan>('CarePlan', {
    _id: named.map((ref) => ref.slice('CarePlan/'.length)).join(','),
  });
  return protocolPlanOf(procedure, plans);
}
