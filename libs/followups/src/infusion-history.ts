import type { ActivityDefinition, Coding, Period, PlanDefinition, Procedure } from '@medplum/fhirtypes';
import {
  activityDefinitionIn,
  addDuration,
  flattenActions,
  INFUSION_COMPLETED_TRIGGER,
  triggeredActions,
  type DefinitionResolver,
  type ProtocolCatalog,
} from '@kc/protocols';
import { performedOf, type InfusionCompleted } from './infusion-event';

/** What an infusion of this protocol looks like as a Procedure: its codes, or the ActivityDefinition it instantiates. */
export interface InfusionDefinition {
  codes: Coding[];
  canonicals: string[];
  /** The drug infused (the ActivityDefinitions' product codes): which administrations recorded during it count. */
  drug: Coding[];
  /**
   * How long one infusion lasts (the longest `dosage.timing.repeat.duration` of its ActivityDefinitions: 40 minutes
   * low-dose, 60 high-dose; 0 when none says): records of a plan's infusions closer together than this are one
   * infusion (sameInfusion).
   */
  lengthMs: number;
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
  let lengthMs = 0;
  for (const action of anchors) {
    const activity = activityDefinitionIn(definitions, action.definitionCanonical);
    if (!activity) continue;
    codes.push(...(activity.code?.coding ?? []).filter((c) => c.system && c.code));
    if (activity.url)
      canonicals.push(activity.url, ...(activity.version ? [`${activity.url}|${activity.version}`] : []));
    drug.push(...(activity.productCodeableConcept?.coding ?? []).filter((c) => c.system && c.code));
    lengthMs = Math.max(lengthMs, infusionLengthMs(activity));
  }
  return { codes, canonicals, drug, lengthMs };
}

/** The longest duration an ActivityDefinition's dosage gives one administration (0 when none, or not in time units). */
function infusionLengthMs(activity: ActivityDefinition): number {
  return Math.max(
    0,
    ...(activity.dosage ?? []).map(({ timing }) => {
      const { duration, durationUnit } = timing?.repeat ?? {};
      if (duration === undefined || !durationUnit) return 0;
      try {
        return addDuration(0, { value: duration, code: durationUnit }, 'ActivityDefinition.dosage.timing.repeat');
      } catch {
        return 0;
      }
    }),
  );
}

/**
 * Whether two records of a plan's infusions are one infusion: their times overlap (charted twice, since session 47),
 * or lie closer together than one infusion lasts (`lengthMs`, since session 53): one charted at the instant it ended
 * beside its period, or a pump stopped and started again, charted as two. No protocol begins a session within one
 * infusion's length of the last (they are days apart), so such records are never two sessions. Before session 53 a
 * copy charted minutes apart was taken for a second infusion: a second check, and the next session answered by it.
 */
export function sameInfusion(a: Period, b: Period, definition: Pick<InfusionDefinition, 'lengthMs'>): boolean {
  const start = (p: Period) => Date.parse(p.start ?? '') || -Infinity;
  const end = (p: Period) => Date.parse(p.end ?? '') || Infinity;
  const gap = Math.max(start(b) - end(a), start(a) - end(b));
  return gap <= 0 || gap < definition.lengthMs;
}

/** Every protocol's infusion codes, once each: what an appointment for a session says it is for (serviceType). */
export function infusionCodesOf(catalog: ProtocolCatalog): Coding[] {
  const codes = new Map<string, Coding>();
  for (const plan of catalog.planDefinitions())
    for (const code of infusionDefinitionFor(plan, catalog).codes) codes.set(`${code.system}|${code.code}`, code);
  return [...codes.values()];
}

/** A Procedure is one of the protocol's infusions when it carries the infusion's code or instantiates its definition. */
/**
 * Whether a protocol follows up infusions at all (its infusion-completed trigger names an infusion). An EHR's own
 * protocol (a care pathway on the same FHIR server, as an EHR on Medplum writes with $apply) follows up none: a plan of
 * it is not the plan of an infusion it names.
 */
export function followsUpInfusions(definition: InfusionDefinition): boolean {
  return definition.codes.length > 0 || definition.canonicals.length > 0;
}

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
 * so a replay never turns an induction follow-up into a booster. Infusions charted for overlapping times count once
 * (a patient is given one infusion at a time: one charted twice, since session 47; before, each counted, so a series
 * charted twice once ended a session early), and so do those closer together than one infusion lasts (sameInfusion).
 */
export function completedInfusionCount(
  event: InfusionCompleted,
  history: Procedure[],
  definition: InfusionDefinition,
): number {
  const end = Date.parse(event.performed.end!);
  const counted: Period[] = [event.performed];
  const earlier = infusionsOfPlan(event, history, definition)
    .filter(({ period }) => Date.parse(period.end!) <= end)
    .sort((a, b) => Date.parse(a.period.end!) - Date.parse(b.period.end!));
  for (const { period } of earlier) if (!counted.some((c) => sameInfusion(c, period, definition))) counted.push(period);
  return counted.length;
}

/**
 * The plan's other completed infusions charted for this one's time (sameInfusion: overlapping it, or closer to it than
 * one infusion lasts): the same infusion charted twice (an EHR's interface sending it again as a new record), or this
 * one charted again. Since session 47.
 */
export function sameTimeInfusions(
  event: InfusionCompleted,
  history: Procedure[],
  definition: InfusionDefinition,
): Procedure[] {
  return infusionsOfPlan(event, history, definition)
    .filter(({ period }) => sameInfusion(period, event.performed, definition))
    .map(({ procedure }) => procedure);
}

/** The plan's completed infusions besides this event's, each with when it was (its period, or its instant as one). */
function infusionsOfPlan(
  event: InfusionCompleted,
  history: Procedure[],
  definition: InfusionDefinition,
): { procedure: Procedure; period: Period }[] {
  return history.flatMap((procedure) => {
    if (!procedure.id || procedure.id === event.procedureId || procedure.status !== 'completed') return [];
    if (!isInfusion(procedure, definition)) return [];
    if (!procedure.basedOn?.some((b) => b.reference === `CarePlan/${event.carePlanId}`)) return [];
    const period = performedOf(procedure);
    return period ? [{ procedure, period }] : [];
  });
}
