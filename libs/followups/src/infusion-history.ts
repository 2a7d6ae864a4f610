import type { Coding, PlanDefinition, Procedure } from '@medplum/fhirtypes';
import {
  activityDefinitionIn,
  flattenActions,
  INFUSION_COMPLETED_TRIGGER,
  triggeredActions,
  type DefinitionResolver,
  type ProtocolCatalog,
} from '@kc/protocols';
import type { InfusionCompleted } from './infusion-event';

/** What an infusion of this protocol looks like as a Procedure: its codes, or the ActivityDefinition it instantiates. */
export interface InfusionDefinition {
  codes: Coding[];
  canonicals: string[];
  /** The drug infused (the ActivityDefinitions' product codes): which administrations recorded during it count. */
  drug: Coding[];
}

/**
 * The infusion is whatever the follow-up rules are anchored on (relatedAction.actionId, e.g. `infusion-session`):
 * its ActivityDefinition's code (SNOMED 14152002 in the shipped protocols) names the Procedure to look for. Read
 * from the protocol, so a clinic using another code changes fhir-profiles/, not this file.
 */
export function infusionDefinitionFor(plan: PlanDefinition, definitions: DefinitionResolver): InfusionDefinition {
  const anchorIds = new Set(
    triggeredActions(plan, INFUSION_COMPLETED_TRIGGER).flatMap((a) => (a.relatedAction ?? []).map((r) => r.actionId)),
  );
  const anchors = flattenActions(plan.action ?? []).filter((a) => a.id && anchorIds.has(a.id));
  const codes: Coding[] = [];
  const canonicals: string[] = [];
  const drug: Coding[] = [];
  for (const action of anchors) {
    const activity = activityDefinitionIn(definitions, action.definitionCanonical);
    if (!activity) continue;
    codes.push(...(activity.code?.coding ?? []).filter((c) => c.system && c.code));
    if (activity.url)
      canonicals.push(activity.url, ...(activity.version ? [`${activity.url}|${activity.version}`] : []));
    drug.push(...(activity.productCodeableConcept?.coding ?? []).filter((c) => c.system && c.code));
  }
  return { codes, canonicals, drug };
}

/** Every protocol's infusion codes, once each: what an appointment for a session says it is for (serviceType). */
export function infusionCodesOf(catalog: ProtocolCatalog): Coding[] {
  const codes = new Map<string, Coding>();
  for (const plan of catalog.planDefinitions())
    for (const code of infusionDefinitionFor(plan, catalog).codes) codes.set(`${code.system}|${code.code}`, code);
  return [...codes.values()];
}

/** A Procedure is one of the protocol's infusions when it carries the infusion's code or instantiates its definition. */
export function isInfusion(procedure: Procedure, definition: InfusionDefinition): boolean {
  const coded = (procedure.code?.coding ?? []).some((c) =>
    definition.codes.some((d) => d.system === c.system && d.code === c.code),
  );
  const instantiated = (procedure.instantiatesCanonical ?? []).some((c) => definition.canonicals.includes(c));
  return coded || instantiated;
}

/**
 * %completedInfusionCount for this event: completed infusions on the CarePlan that ended no later than this one,
 * this one included. Counting by time rather than "everything on record now" keeps the answer the same however
 * late the event is processed (a retry from the dead-letter view days later, or events handled out of order),
 * so a replay never turns an induction follow-up into a booster.
 */
export function completedInfusionCount(
  event: InfusionCompleted,
  history: Procedure[],
  definition: InfusionDefinition,
): number {
  const end = Date.parse(event.performed.end!);
  const counted = new Set<string>([event.procedureId]);
  for (const procedure of history) {
    if (!procedure.id || procedure.status !== 'completed' || !isInfusion(procedure, definition)) continue;
    if (!procedure.basedOn?.some((b) => b.reference === `CarePlan/${event.carePlanId}`)) continue;
    const at = Date.parse(
      procedure.performedPeriod?.end ?? procedure.performedPeriod?.start ?? procedure.performedDateTime ?? '',
    );
    if (Number.isFinite(at) && at <= end) counted.add(procedure.id);
  }
  return counted.size;
}
