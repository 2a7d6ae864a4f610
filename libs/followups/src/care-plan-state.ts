import type { CarePlan, Period, Reference } from '@medplum/fhirtypes';
import { addClinicCalendar, clinicDay, clinicInstant } from '@kc/protocols';

/** The CarePlan a Task, request or reminder is based on (`CarePlan/<id>`), when it names one. */
export function carePlanReferenceOf(resource: { basedOn?: Reference[] }): string | undefined {
  return resource.basedOn?.map((b) => b.reference).find((r) => /^CarePlan\/[^/]+$/.test(r ?? ''));
}

/** Every CarePlan a resource is based on (`CarePlan/<id>`), in its order: an EHR may name its own plans too. */
export function carePlanReferencesOf(resource: { basedOn?: Reference[] }): string[] {
  return (resource.basedOn ?? []).flatMap((b) => (/^CarePlan\/[^/]+$/.test(b.reference ?? '') ? [b.reference!] : []));
}

/**
 * The plan of a protocol an infusion names, among the plans it is based on that were read (`plans`): the first that
 * instantiates one (this service's plans do, from $apply). An EHR's own plans (a care episode, a problem's plan) name
 * none: an infusion based on those alone names no plan of a protocol, and is linked on evidence like one naming none
 * (since session 47; before, the first CarePlan it named was taken for its plan, and its follow-up failed).
 */
export function protocolPlanOf(procedure: { basedOn?: Reference[] }, plans: CarePlan[]): CarePlan | undefined {
  return protocolPlansOf(procedure, plans)[0];
}

/** Every plan of a protocol it names among `plans`, in its order (protocolPlanOf: the first). */
export function protocolPlansOf(procedure: { basedOn?: Reference[] }, plans: CarePlan[]): CarePlan[] {
  const byRef = new Map(plans.map((p) => [`CarePlan/${p.id}`, p]));
  return carePlanReferencesOf(procedure).flatMap((ref) => {
    const plan = byRef.get(ref);
    return plan?.instantiatesCanonical?.length ? [plan] : [];
  });
}

/**
 * When a plan ends, as the EHR set it (`CarePlan.period.end`): a day given alone is the whole of that day in the
 * clinic (a Period's end is inclusive), so the plan ends at the next day's start. Undefined for a plan with no end.
 */
export function planEndsAt(carePlan: Pick<CarePlan, 'period'>, zone?: string): number | undefined {
  const end = carePlan.period?.end;
  const at = end ? clinicInstant(end, zone) : undefined;
  if (!end || !at) return undefined;
  return /^\d{4}-\d{2}-\d{2}$/.test(end) ? addClinicCalendar(at.getTime(), { days: 1 }, zone) : at.getTime();
}

/** Whether a plan's end (planEndsAt) has passed by `now`; false for a plan with no end. */
export function planEndPassed(carePlan: Pick<CarePlan, 'period'>, now: Date, zone?: string): boolean {
  const ends = planEndsAt(carePlan, zone);
  return ends !== undefined && ends <= now.getTime();
}

/** The day a plan ends on, as the clinic reads it: the date the EHR set, or a dateTime's day in the clinic's zone. */
export function planEndDay(carePlan: Pick<CarePlan, 'period'>, zone?: string): string | undefined {
  const end = carePlan.period?.end;
  return end && /^\d{4}-\d{2}-\d{2}$/.test(end) ? end : clinicDay(end, zone);
}

/**
 * An infusion session due in this window begins after its plan ends (planEndsAt): it is not proposed, approved or
 * rescheduled there (since session 48; before, a plan's end date was not read, and maintenance boosters went on being
 * proposed after it). A check is not: the last infusion's post-infusion check is due whatever the plan's end.
 */
export function dueAfterPlanEnd(
  carePlan: Pick<CarePlan, 'period'>,
  window: Period | undefined,
  zone?: string,
): boolean {
  const ends = planEndsAt(carePlan, zone);
  const start = Date.parse(window?.start ?? '');
  return ends !== undefined && Number.isFinite(start) && start >= ends;
}

/** CarePlans that are over (or were a mistake) get no new follow-ups; draft and active plans do. */
const CLOSED_CARE_PLAN = new Set<CarePlan['status']>(['revoked', 'completed', 'entered-in-error']);

export function carePlanTakesFollowUps(carePlan: CarePlan): { ok: true } | { ok: false; reason: string } {
  return CLOSED_CARE_PLAN.has(carePlan.status) ? { ok: false, reason: `CarePlan is ${carePlan.status}` } : { ok: true };
}

/**
 * Whether care may be given under a plan now: a draft or active one. A plan stopped (revoked), over (completed),
 * written in error or paused (on-hold) authorises no order and sends no reminder; why, when it does not.
 */
export function carePlanHoldsCare(carePlan: CarePlan): { ok: true } | { ok: false; reason: string; closed: boolean } {
  if (carePlan.status === 'draft' || carePlan.status === 'active') return { ok: true };
  return {
    ok: false,
    reason: `its care plan ${IN_WORDS[carePlan.status]}`,
    closed: CLOSED_CARE_PLAN.has(carePlan.status),
  };
}

/**
 * A plan's status as a clinician reads it (the reason lands in statusReason.text, in refusals and on the page);
 * the code itself stays in CarePlan.status for the EHR.
 */
const IN_WORDS: Record<Exclude<CarePlan['status'], 'draft' | 'active'>, string> = {
  'on-hold': 'is on hold',
  revoked: 'was stopped (revoked)',
  completed: 'is completed',
  'entered-in-error': 'was entered in error',
  unknown: 'has an unknown status',
};
