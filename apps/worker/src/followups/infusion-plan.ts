import type { CarePlan, Procedure } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import {
  carePlanReferencesOf,
  followsUpInfusions,
  infusionDefinitionFor,
  isInfusion,
  protocolPlansOf,
  type InfusionDefinition,
} from '@kc/followups';
import type { ResolvedPlan } from '@kc/protocols';

/** Where an infusion's protocol is found: the catalog, or the FHIR server for an EHR's (PlanDefinitions). */
export interface ProtocolSource {
  ofCarePlan(carePlan: CarePlan): Promise<ResolvedPlan | undefined>;
}

/** The plan an infusion is a session of, with its protocol and what an infusion of it looks like. */
export interface InfusionPlan {
  carePlan: CarePlan;
  protocol: ResolvedPlan;
  infusion: InfusionDefinition;
}

/**
 * Among the plans an infusion names (`named`, as read), the one it is a session of: the first that instantiates a
 * protocol that is found and follows up infusions like it (its code, or the infusion it instantiates). Else why not:
 * `ignored`, it names plans of protocols that follow up infusions, but it is none of theirs; `notFound`, the first
 * plan whose protocol is nowhere to be read (its job fails: the infusion must not be lost); `none`, it names only the
 * EHR's own plans (none instantiating a protocol, or protocols that follow up no infusion: a care pathway), so it is
 * linked on evidence like one naming none. Before session 48 the first plan whose protocol was found was taken: an
 * EHR's pathway named first had its infusion ignored as "not an infusion of the CarePlan's protocol".
 */
export async function infusionPlanAmong(
  protocols: ProtocolSource,
  procedure: Procedure,
  named: CarePlan[],
): Promise<InfusionPlan | { ignored: string } | { notFound: CarePlan } | { none: true }> {
  let ofInfusions = false;
  let notFound: CarePlan | undefined;
  for (const carePlan of protocolPlansOf(procedure, named)) {
    const protocol = await protocols.ofCarePlan(carePlan);
    if (!protocol) {
      notFound ??= carePlan;
      continue;
    }
    const infusion = infusionDefinitionFor(protocol.plan, protocol.definitions);
    if (isInfusion(procedure, infusion)) return { carePlan, protocol, infusion };
    ofInfusions ||= followsUpInfusions(infusion);
  }
  if (ofInfusions) return { ignored: "not an infusion of the CarePlan's protocol" };
  return notFound ? { notFound } : { none: true };
}

/**
 * The plan an infusion is a session of among those it names (infusionPlanAmong), read in one search; undefined when
 * there is none. Nothing is read for an infusion naming no CarePlan.
 */
export async function infusionPlanNamedBy(
  fhir: FhirClient,
  protocols: ProtocolSource,
  procedure: Procedure,
): Promise<InfusionPlan | undefined> {
  const named = carePlanReferencesOf(procedure);
  if (!named.length) return undefined;
  const plans = await fhir.searchAll<CarePlan>('CarePlan', {
    _id: named.map((ref) => ref.slice('CarePlan/'.length)).join(','),
  });
  const found = await infusionPlanAmong(protocols, procedure, plans);
  return 'carePlan' in found ? found : undefined;
}
