import type { CarePlan, MedicationAdministration, MedicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import { ordersApprovedOn, replacedChain } from '@kc/task-states';
import { carePlanReferenceOf, carePlanReferencesOf } from './care-plan-state';
import { isOfInfusion } from './infusion-as-given';
import { NOT_BASED_ON_A_CAREPLAN, performedOf, toInfusionCompleted } from './infusion-event';
import { isInfusion, type InfusionDefinition } from './infusion-history';

/** The statuses of a plan an infusion may be charted under by its protocol alone. */
const OPEN_PLAN: readonly CarePlan['status'][] = ['active', 'draft', 'on-hold'];

/** One of the patient's plans, with the infusion its protocol follows up. */
export interface PlanCandidate {
  carePlan: CarePlan;
  infusion: InfusionDefinition;
}

/**
 * The plan an infusion naming none is tied to, with its protocol's infusion, and what ties it (a reference, for the
 * link's Provenance); else why
 * not, with the open plans it may be a session of by its code alone (`mayBe`, `CarePlan/<id>`): a clinician's to say.
 */
export type UnlinkedInfusionPlan =
  (PlanCandidate & { source: string; evidence: string }) | { why: string; mayBe: string[] };

/** A completed infusion of a patient, with a time, that names no CarePlan: an EHR that does not link its Procedures. */
export function isUnlinkedInfusion(procedure: Procedure): boolean {
  const check = toInfusionCompleted(procedure);
  return !check.ok && check.reason === NOT_BASED_ON_A_CAREPLAN;
}

/**
 * A completed infusion of a patient, with a time, that names none of these plans (the patient's plans of a protocol):
 * naming no CarePlan at all, or only an EHR's own (since session 47).
 */
export function namesNoneOf(procedure: Procedure, plans: CarePlan[]): boolean {
  const check = toInfusionCompleted(procedure);
  if (!check.ok && check.reason !== NOT_BASED_ON_A_CAREPLAN) return false;
  const named = new Set(carePlanReferencesOf(procedure));
  return !plans.some((p) => named.has(`CarePlan/${p.id}`));
}

/**
 * The plan an infusion that names none belongs to (since session 43; before, it was ignored: no post-infusion check,
 * no next session). Only on evidence that ties it to one plan, never on its code alone (an IV infusion of anything
 * else carries the same code): it names the plan's infusion definition (`instantiatesCanonical`), or the pump recorded
 * one of that plan's orders during it (a MedicationAdministration within its time or `partOf` it, whose order is based
 * on the plan, or is the EHR's a session of the plan was approved on), or, since session 48, the EHR named it as what
 * one of the plan's sessions produced (the session's Task.output, as FHIR's workflow closes a Task). The first only
 * for an open plan (active, draft, paused); the others for a plan stopped since too, whose session given is still
 * answered by its infusion. The plan must follow up this kind of infusion and have begun before it ended. Evidence for
 * two plans, or for none, links nothing. Pure: the worker reads the patient's plans, the pump's records around it and
 * the plans' Tasks.
 */
export function planOfUnlinkedInfusion(input: {
  procedure: Procedure;
  candidates: PlanCandidate[];
  /** The patient's administrations around the infusion. */
  administrations?: MedicationAdministration[];
  /** The plan (`CarePlan/<id>`) of each order they name (`MedicationRequest/<id>`), where known: ordersPlans. */
  planOfOrder?: Map<string, string>;
  /** The patient's plans' Tasks (any whose `output` names the infusion: a session the EHR completed with it). */
  tasks?: Task[];
}): UnlinkedInfusionPlan {
  const { procedure } = input;
  const performed = performedOf(procedure);
  if (
    !namesNoneOf(
      procedure,
      input.candidates.map((c) => c.carePlan),
    ) ||
    !performed
  )
    return { why: 'not an infusion naming no plan', mayBe: [] };
  const ended = Date.parse(performed.end!);
  const plans = input.candidates.filter(({ infusion }) => isInfusion(procedure, infusion));
  // Named by its protocol: among open plans begun by then only (an older plan of the same protocol, over, or a newer
  // one, would be named too). The pump's record of a plan's order needs neither: the order is that plan's, whenever
  // its session was given (one the EHR moved before the plan's start: clinic day seed 2479).
  const open = plans.filter(({ carePlan }) => OPEN_PLAN.includes(carePlan.status) && begunBy(carePlan, ended));
  const named = open.filter(({ infusion }) =>
    (procedure.instantiatesCanonical ?? []).some((c) => infusion.canonicals.includes(c)),
  );
  if (named.length === 1)
    return {
      ...named[0],
      source: `CarePlan/${named[0].carePlan.id}`,
      evidence: `it instantiates the infusion of this plan's protocol`,
    };
  const given = plans.flatMap((plan) => {
    const administration = (input.administrations ?? []).find(
      (a) =>
        (a.status === 'completed' || a.status === 'in-progress') &&
        isOfInfusion(a, procedure.id!, performed) &&
        input.planOfOrder?.get(a.request?.reference ?? '') === `CarePlan/${plan.carePlan.id}`,
    );
    return administration ? [{ plan, administration }] : [];
  });
  // The EHR completed one of a plan's sessions naming this infusion as what it produced (FHIR workflow's Task.output;
  // since session 48): as telling as the pump's record, whichever comes.
  const done = plans.flatMap((plan) => {
    const session = (input.tasks ?? []).find(
      (t) => carePlanReferenceOf(t) === `CarePlan/${plan.carePlan.id}` && isSessionProducing(t, procedure.id!),
    );
    return session ? [{ plan, session }] : [];
  });
  const tied = new Set([...given, ...done].map(({ plan }) => plan.carePlan.id));
  if (given.length === 1 && tied.size === 1)
    return {
      ...given[0].plan,
      source: `MedicationAdministration/${given[0].administration.id}`,
      evidence: "the pump recorded this plan's order during it",
    };
  if (!given.length && done.length === 1)
    return {
      ...done[0].plan,
      source: `Task/${done[0].session.id}`,
      evidence: "the EHR completed this plan's session naming it (Task.output)",
    };
  const namesOwn = carePlanReferencesOf(procedure).length > 0;
  return {
    why:
      `${namesOwn ? 'it names no care plan of a protocol (only the EHR’s own)' : NOT_BASED_ON_A_CAREPLAN}, and ${tied.size > 1 || named.length > 1 ? 'more than one' : 'none'} of the ` +
      "patient's plans is tied to it (by instantiatesCanonical, the pump's record of the plan's order, or a session " +
      'of the plan naming it in Task.output): link it with Procedure.basedOn',
    // Of its code, under a plan open then: the plans it may be a session of (named: those it names, more than one).
    mayBe: (named.length ? named : open).map(({ carePlan }) => `CarePlan/${carePlan.id}`),
  };
}

/** An infusion session's Task (its focus the order to give) that names the infusion as what it produced. */
function isSessionProducing(task: Task, procedureId: string): boolean {
  return (
    Boolean(task.focus?.reference?.startsWith('MedicationRequest/')) &&
    (task.output ?? []).some((o) => o.valueReference?.reference === `Procedure/${procedureId}`)
  );
}

/**
 * The infusion as linked: its plan added to `basedOn`, first (before any plan of the EHR's own it names), so every
 * reader (history, replan, the pump's records) finds it.
 */
export function linkedToPlan(procedure: Procedure, carePlan: Pick<CarePlan, 'id'>): Procedure {
  return { ...procedure, basedOn: [{ reference: `CarePlan/${carePlan.id}` }, ...(procedure.basedOn ?? [])] };
}

/**
 * The plan of each order: the one it is based on (the service's orders; an EHR's replacement that keeps it), else that
 * of the Task approved on it (an EHR's own order a session was approved on, which names none), else the same of the
 * orders it replaces, at any depth through `patientOrders` (the EHR's replacements of such an order, which name none:
 * clinic day seeds 2359 and, twice replaced, big seed 5097).
 */
export function ordersPlans(
  orders: MedicationRequest[],
  tasksApprovedOn: Task[],
  patientOrders: MedicationRequest[] = [],
): Map<string, string> {
  const planOfSessionOn = (ref: string) =>
    carePlanReferenceOf(tasksApprovedOn.find((t) => ordersApprovedOn(t).includes(ref)) ?? {});
  const plans = new Map<string, string>();
  for (const order of orders) {
    const ref = `MedicationRequest/${order.id}`;
    let plan: string | undefined;
    for (const link of replacedChain(order, patientOrders)) {
      plan = (link.order && carePlanReferenceOf(link.order)) ?? planOfSessionOn(link.ref);
      if (plan) break;
    }
    if (plan) plans.set(ref, plan);
  }
  return plans;
}

/** The orders whose plan only the Tasks approved on them (or on the orders they replace) can tell: to search for. */
export function ordersNamingNoPlan(orders: MedicationRequest[], patientOrders: MedicationRequest[] = []): string[] {
  return [
    ...new Set(
      orders.filter((o) => !carePlanReferenceOf(o)).flatMap((o) => replacedChain(o, patientOrders).map((l) => l.ref)),
    ),
  ];
}

/** A plan begun by then (its period's start, else when it was created; neither: taken as begun). */
function begunBy(carePlan: CarePlan, at: number): boolean {
  const start = Date.parse(carePlan.period?.start ?? carePlan.created ?? '');
  return Number.isNaN(start) || start <= at;
}
