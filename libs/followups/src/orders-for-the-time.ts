import type { CodeableConcept, MedicationRequest, Period, Task } from '@medplum/fhirtypes';
import { clinicDays, orderRateText } from '@kc/protocols';
import { isClosedByStatus, isOpen, isOpenOrder, orderTaskIdOf } from '@kc/task-states';
import { carePlanReferenceOf } from './care-plan-state';

/**
 * Two ketamine orders for one session would be given twice. These say which open orders cover the time of a session
 * or of another order: the CDS order-sign card (ketamine signed in the EHR) and the approval here (ketamine ordered in
 * the EHR first) judge by them.
 */

/** When an order is to be given: its `dosageInstruction.timing.repeat.boundsPeriod`; none set, undefined. */
export function orderWindow(order: MedicationRequest): Period | undefined {
  return order.dosageInstruction?.find((d) => d.timing?.repeat?.boundsPeriod)?.timing?.repeat?.boundsPeriod;
}

/** Whether two windows share a moment; a missing window (given any time), or a missing end, is open. */
export function windowsOverlap(a: Period | undefined, b: Period | undefined): boolean {
  const start = (p: Period | undefined) => Date.parse(p?.start ?? '') || -Infinity;
  const end = (p: Period | undefined) => Date.parse(p?.end ?? '') || Infinity;
  return start(a) <= end(b) && start(b) <= end(a);
}

/**
 * The open orders of the proposal's drug written outside this service (not keyed to a Task here) for a time the
 * session's due window shares: approving the session would order it a second time. The drug is compared on its codes
 * (an order naming a Medication by reference is not judged). An order with no window is not judged either: it may be
 * another session's (an EHR's replacement of a session given already, left open), and refusing every approval on it
 * would stop the plan; order-sign's card says it to the EHR's prescriber instead.
 */
export function orderedElsewhereForSession(
  session: Task,
  proposal: MedicationRequest,
  open: MedicationRequest[],
): MedicationRequest[] {
  return ehrOrdersForSession(session.restriction?.period, proposal, open).timed;
}

/**
 * The EHR's open orders of the proposal's drug (written outside this service) a clinician approving the session should
 * know of: `timed` for a time its due window shares (approving is refused, asking whether one is this session's), and
 * `untimed`, with no time set (not refused, as it may be another session's, but worth a look first). `window`: the
 * session's due window (Task.restriction.period).
 */
export function ehrOrdersForSession(
  window: Period | undefined,
  proposal: MedicationRequest,
  open: MedicationRequest[],
): { timed: MedicationRequest[]; untimed: MedicationRequest[] } {
  const ofTheDrug = open.filter(
    (o) =>
      isOpenOrder(o) && !orderTaskIdOf(o) && sameDrug(o.medicationCodeableConcept, proposal.medicationCodeableConcept),
  );
  return {
    timed: ofTheDrug.filter((o) => orderWindow(o) !== undefined && windowsOverlap(orderWindow(o), window)),
    untimed: ofTheDrug.filter((o) => orderWindow(o) === undefined),
  };
}

/** Those orders in a clinician's words, for the session's row before it is approved; undefined when there are none. */
export function ehrOrdersNotice(
  orders: { timed: MedicationRequest[]; untimed: MedicationRequest[] },
  zone?: string,
): string | undefined {
  const said = [
    orders.timed.length
      ? `Already ordered in the EHR for this session's time: ${orders.timed.map((o) => orderInWords(o, orderWindow(o), zone)).join('; ')}`
      : '',
    orders.untimed.length
      ? `The EHR has an open order of this drug with no time set: ${orders.untimed.map((o) => orderInWords(o, orderWindow(o), zone)).join('; ')}; check it is not this session's`
      : '',
  ].filter(Boolean);
  return said.length ? `${said.join('. ')}.` : undefined;
}

/**
 * An order in words, for a clinician deciding whether it is the same session: "Ketamine 0.75 mg/kg/h (60 mg/h),
 * 2027-01-04 to 2027-01-06, approved in the ketamine care plan by Dr Ada (on hold)". No id: a clinician reads it (an
 * integrator reads the references beside it).
 * `window`: when it is to be given, when the order itself does not say (its session's, for an order approved here).
 */
export function orderInWords(order: MedicationRequest, window = orderWindow(order), zone?: string): string {
  const what = order.medicationCodeableConcept?.text ?? order.medicationCodeableConcept?.coding?.[0]?.display;
  const rate = orderRateText(order);
  const when = window ? clinicDays(window, zone) : 'no time set';
  const who = order.requester?.display ? ` by ${order.requester.display}` : '';
  const where = orderTaskIdOf(order) ? `approved in the ketamine care plan${who}` : `ordered${who}`;
  const held = order.status === 'on-hold' ? ' (on hold)' : '';
  return `${what ?? 'Ketamine'}${rate ? ` ${rate}` : ''}, ${when}, ${where}${held}`;
}

/**
 * The orders this service wrote for sessions of the patient's other care plans (keyed to a Task there) of the
 * proposal's drug, still to be given: a patient on two protocols at once (a series and its maintenance begun early)
 * could be approved two infusions for the same days, which the EHR-order check cannot see (those orders are this
 * service's). Their sessions' windows say which share the session's days (sessionsOfOtherPlansAt). Since session 45.
 */
export function ordersOfOtherPlans(
  session: Task,
  proposal: MedicationRequest,
  open: MedicationRequest[],
): MedicationRequest[] {
  const plan = carePlanReferenceOf(session);
  return open.filter((o) => {
    const taskId = orderTaskIdOf(o);
    return (
      isOpenOrder(o) &&
      taskId !== undefined &&
      taskId !== session.id &&
      carePlanReferenceOf(o) !== plan &&
      isSameDrugOrder(o, proposal)
    );
  });
}

/**
 * Of those orders, the ones whose session (its Task, read: still open) is due in days the window shares, each with its
 * session. An order whose Task is gone or closed is not judged (the reconciliation closes it).
 */
export function sessionsOfOtherPlansAt(
  window: Period | undefined,
  orders: MedicationRequest[],
  sessions: Task[],
): { order: MedicationRequest; session: Task }[] {
  return orders.flatMap((order) => {
    const session = sessions.find((t) => t.id === orderTaskIdOf(order));
    if (!session || !isOpen(session) || isClosedByStatus(session)) return [];
    return windowsOverlap(session.restriction?.period, window) ? [{ order, session }] : [];
  });
}

/** An order of the proposal's drug (by its codes). */
export function isSameDrugOrder(order: MedicationRequest, proposal: MedicationRequest): boolean {
  return sameDrug(order.medicationCodeableConcept, proposal.medicationCodeableConcept);
}

function sameDrug(a: CodeableConcept | undefined, b: CodeableConcept | undefined): boolean {
  return (a?.coding ?? []).some((x) => (b?.coding ?? []).some((y) => x.code === y.code && x.system === y.system));
}
