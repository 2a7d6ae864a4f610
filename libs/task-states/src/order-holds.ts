import type { CodeableConcept, Coding, DetectedIssue, Reference, Resource, Task } from '@medplum/fhirtypes';
import { activeAgain, isHeldFor, onHoldWith, reasonCoded, sameCoding } from './order-status-reason';
import type { AuthorisableRequest } from './request-authorisation';
import { TASK_STATE_SYSTEM } from './task-states';

/**
 * Why an order is on hold when this service held it (fhir-profiles' CodeSystem): the reason it writes, and how it
 * tells its own holds (which an override releases) from a hold an EHR or a pharmacist placed (left alone).
 */
export const CONTRAINDICATION_HOLD: Coding = {
  system: TASK_STATE_SYSTEM,
  code: 'held-for-contraindication',
  display: 'Held: a contraindication was found after the order was approved',
};

export interface OrderHold {
  /** The order as read (its version is the If-Match of the write). */
  read: AuthorisableRequest;
  held: AuthorisableRequest;
}

/**
 * The active orders a contraindication found after approval puts on hold: each gets status `on-hold` with the
 * reason naming the contraindications (what an EHR, a pharmacy or an infusion pump integration reads; see heldOrder). Orders already
 * on hold, stopped or done are left as they are. Pure: the caller reads the orders and writes the result.
 */
export function ordersToHold(
  orders: AuthorisableRequest[],
  unresolved: DetectedIssue[],
  released: ReleasedBy = OVERRIDE_RELEASES,
): OrderHold[] {
  if (!unresolved.length) return [];
  return orders
    .filter((o) => o.status === 'active')
    .map((read) => ({ read, held: heldOrder(read, unresolved, released) }));
}

/** What releases an order an issue holds, in a sentence ending the held order's reason (protocols' howReleased). */
export type ReleasedBy = (issue: DetectedIssue) => string;

const OVERRIDE_RELEASES: ReleasedBy = () => "A clinician's override with a reason releases it.";

/**
 * Orders already held for a contraindication that an unresolved issue does not implicate yet (the issue that held them
 * was deleted on the FHIR server and the contraindication found again under a new one): held again by the issues
 * unresolved now, so the order names why it is held (a MedicationRequest's `detectedIssue` and reason) and an
 * override of those issues finds it. Other requests carry no `detectedIssue`: they are returned as they are, for the
 * issues to implicate them. Pure.
 */
export function holdsToRestate(
  orders: AuthorisableRequest[],
  unresolved: DetectedIssue[],
  released: ReleasedBy = OVERRIDE_RELEASES,
): OrderHold[] {
  const reference = (o: AuthorisableRequest) => `${o.resourceType}/${o.id}`;
  return orders
    .filter(
      (o) =>
        isHeldForContraindication(o) &&
        unresolved.some((i) => !(i.implicated ?? []).some((r) => r.reference === reference(o))),
    )
    .map((read) => ({
      read,
      held: read.resourceType === 'MedicationRequest' ? heldOrder(read, unresolved, released) : read,
    }));
}

/**
 * The DetectedIssues an order names (`detectedIssue`) besides these: an issue deleted on the FHIR server since it held
 * the order, or one the EHR named. The caller asks the server which of them are gone (withoutIssues).
 */
export function otherIssuesNamed(orders: Resource[], known: DetectedIssue[]): string[] {
  const ids = new Set(known.map((i) => `DetectedIssue/${i.id}`));
  return [
    ...new Set(
      orders.flatMap((o) =>
        o.resourceType === 'MedicationRequest'
          ? (o.detectedIssue ?? []).flatMap((r) => (r.reference && !ids.has(r.reference) ? [r.reference] : []))
          : [],
      ),
    ),
  ];
}

/**
 * An order without the DetectedIssues deleted on the FHIR server (`gone`): an EHR following its `detectedIssue`
 * finds each one it names (a deleted one answers 410). Others' references, and the rest of the order, as they are.
 */
export function withoutIssues<T extends Resource>(order: T, gone: ReadonlySet<string>): T {
  if (order.resourceType !== 'MedicationRequest' || !gone.size) return order;
  const kept = (order.detectedIssue ?? []).filter((r) => !gone.has(r.reference ?? ''));
  if (kept.length === (order.detectedIssue ?? []).length) return order;
  const { detectedIssue: _gone, ...rest } = order;
  return (kept.length ? { ...rest, detectedIssue: kept } : rest) as T;
}

/**
 * The orders an override releases: those this service held, once no contraindication on the plan is unresolved (as
 * the approval guard, a hold is the plan's: any unresolved issue keeps every order held). Each goes back to active,
 * its hold reason removed.
 */
export function ordersToRelease(input: {
  orders: AuthorisableRequest[];
  /** The unresolved DetectedIssues still implicating the plan (the overridden one excluded). */
  stillUnresolved: DetectedIssue[];
}): OrderHold[] {
  if (input.stillUnresolved.length) return [];
  return input.orders.filter(isHeldForContraindication).map((read) => ({ read, held: releasedOrder(read) }));
}

/**
 * The approved Task of a held order, on hold with it (`Task?status=ready` is what an EHR acts on, so a Task left ready
 * would still say "to be done"); its businessStatus (approved, rescheduled) is kept for the release.
 */
export function heldTask(task: Task, order: AuthorisableRequest): Task {
  return { ...task, status: 'on-hold', statusReason: reasonCoded(order, CONTRAINDICATION_HOLD) };
}

/** An approved Task this service held with its order (not one somebody else put on hold). */
export function isTaskHeldForContraindication(task: Task): boolean {
  return (
    task.status === 'on-hold' && Boolean(task.statusReason?.coding?.some((c) => sameCoding(c, CONTRAINDICATION_HOLD)))
  );
}

/**
 * A decision on a Task held with its order (its contraindication resolved, the hold not released yet: a reschedule, an
 * approval of an overdue one) keeps the hold: only the release, once the plan is clear, makes the Task ready with its
 * order, so the sweep still finds what to release and the order is never left held under a ready Task.
 */
export function keptOnHold(before: Task, after: Task): Task {
  if (!isTaskHeldForContraindication(before)) return after;
  return { ...after, status: before.status, statusReason: before.statusReason };
}

/** A Task this service held, ready again; undefined for any other Task (left as it is). */
export function releasedTask(task: Task): Task | undefined {
  if (!isTaskHeldForContraindication(task)) return undefined;
  const { statusReason: _held, ...rest } = task;
  return { ...rest, status: 'ready' };
}

/** On hold because this service found a contraindication (not a hold somebody else placed). */
export function isHeldForContraindication(order: AuthorisableRequest): boolean {
  return isHeldFor(order, CONTRAINDICATION_HOLD);
}

/**
 * The DetectedIssue with the held orders (and their Tasks) among what it implicates (so
 * `DetectedIssue?implicated=MedicationRequest/x` finds why an order is held, and an override finds what to release),
 * or undefined when it names them all already.
 */
export function implicatingOrders(issue: DetectedIssue, held: Reference[]): DetectedIssue | undefined {
  const named = new Set((issue.implicated ?? []).map((r) => r.reference));
  const added = held.filter((o) => !named.has(o.reference));
  if (!added.length) return undefined;
  return { ...issue, implicated: [...(issue.implicated ?? []), ...added] };
}

/**
 * On hold, with why in words (the reason's text: what a clinician, a pharmacist or a pump's screen shows) and, on a
 * MedicationRequest, the DetectedIssues by reference in its standard `detectedIssue` (kept after the release: the
 * order was given with that issue overridden, as a CDS alert's override stays with its order). The issues also
 * implicate the order (`DetectedIssue?implicated=`), whatever the request's type.
 */
function heldOrder(order: AuthorisableRequest, issues: DetectedIssue[], released: ReleasedBy): AuthorisableRequest {
  const named = issues.map(contraindicationName);
  // Every issue must be resolved: what releases each, once.
  const releases = [...new Set(issues.map((issue) => released(issue)))];
  const reason: CodeableConcept = {
    coding: [CONTRAINDICATION_HOLD],
    text: `Held: found after approval: ${named.join('; ')}. ${releases.length > 1 ? 'Each to be resolved: ' : ''}${releases.join(' ')}`,
  };
  const held = onHoldWith(order, reason);
  if (held.resourceType !== 'MedicationRequest') return held;
  const known = new Set((held.detectedIssue ?? []).map((r) => r.reference));
  const detected = issues
    .map((i, k) => ({ reference: `DetectedIssue/${i.id}`, display: named[k] }))
    .filter((r) => !known.has(r.reference));
  return { ...held, detectedIssue: [...(held.detectedIssue ?? []), ...detected] };
}

/** A contraindication as a person reads it: its text, without a closing full stop (it goes inside a sentence). */
export function contraindicationName(issue: DetectedIssue): string {
  return (issue.code?.text ?? issue.code?.coding?.[0]?.display ?? 'contraindication').replace(/\.$/, '');
}

function releasedOrder(order: AuthorisableRequest): AuthorisableRequest {
  return activeAgain(order, CONTRAINDICATION_HOLD);
}
