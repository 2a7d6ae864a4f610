import type { ActivityDefinition, Annotation, MedicationRequest, Reference, Task } from '@medplum/fhirtypes';
import {
  dosageAtRate,
  orderedRatePerKg,
  RATE_SINCE_APPROVAL_EXTENSION,
  rateGiven,
  rateTitrationOf,
  rateToPropose,
  weightForTitration,
  type LastGiven,
  type ProtocolVariables,
} from '@kc/protocols';
import { isAwaitingApproval, isOpenOrder, orderTaskIdOf } from '@kc/task-states';

/** A session awaiting approval proposed again at the rate its infusion was given, as recorded since. */
export interface RateReproposal {
  proposal: MedicationRequest;
  reproposed: MedicationRequest;
  /** Why, in words: the rate given and the one it was proposed at before. */
  reason: string;
}

/**
 * A session proposed after an infusion is proposed at the rate that infusion was given at the pump (buildRequest). An
 * eMAR often records the administrations after the Procedure, so after the follow-ups were written: the proposal then
 * carries the order's rate. Judged again from the infusion as now recorded (`given`, infusionAsGiven), the same rule
 * gives the rate to propose; when it differs from the proposal's (or names another administration), the proposal's
 * dosage is computed again at it, from the patient's data now, naming the administration it was read from.
 *
 * Only a session still awaiting approval (an approved one's order is the clinician's: $change-dose), only an infusion
 * with administrations of its drug on record or a proposal naming one (taken back since: entered in error, so the
 * order's rate again), and only when the dose can be computed (a body weight on record). Pure: the worker reads the proposal, its ActivityDefinition, the
 * infusion's administrations and the patient's data.
 */
export function reproposedAtRateGiven(input: {
  task: Task;
  proposal: MedicationRequest;
  activity: ActivityDefinition | undefined;
  given: LastGiven | undefined;
  variables: ProtocolVariables;
}): RateReproposal | undefined {
  const { task, proposal, activity, given, variables } = input;
  const titration = rateTitrationOf(activity);
  if (!titration || !activity || !isAwaitingApproval(task) || proposal.status !== 'draft') return undefined;
  // Nothing recorded at the pump, and the proposal named nothing from it: the order's rate stands as proposed.
  const namedBefore = administrationsNamed(proposal);
  if (!given || (!given.administrations?.length && !namedBefore.length)) return undefined;
  const last = rateGiven(given, titration.unit, weightForTitration(titration, variables)?.kg);
  const rate = rateToPropose(titration, last?.ratePerKg);
  const givenAt = last?.reference && rate === last.ratePerKg ? last.reference : undefined;
  const proposedAt = orderedRatePerKg(proposal, titration.unit);
  if (rate === proposedAt && sameReferences(namedBefore, givenAt ? [givenAt] : [])) return undefined;
  const { dosageInstruction, unresolved } = dosageAtRate(activity, rate, variables, proposal.dosageInstruction);
  if (unresolved.length) return undefined;
  const others = (proposal.supportingInformation ?? []).filter((r) => !isAdministration(r));
  const supportingInformation = [...others, ...(givenAt ? [givenAt] : [])];
  const reproposed: MedicationRequest = {
    ...proposal,
    dosageInstruction,
    supportingInformation: supportingInformation.length ? supportingInformation : undefined,
  };
  const before = proposedAt === undefined ? '' : `; proposed at ${proposedAt} ${titration.unit} before`;
  const reason = givenAt
    ? `Proposed at the rate the last session was given, recorded since: ${givenAt.display ?? `${rate} ${titration.unit}`}${before}`
    : `Proposed at ${rate} ${titration.unit}: the administration it was proposed from is no longer on record as given${before}`;
  return { proposal, reproposed, reason };
}

/** An approved session's order with a note saying the rate its protocol proposes now, from the pump's late record. */
export interface RateNotice {
  order: MedicationRequest;
  noted: MedicationRequest;
  /** The note's words: what the pump recorded, what the protocol proposes from it, what the order gives. */
  reason: string;
}

/**
 * An approved session proposed after an infusion whose pump record arrived after the approval: its order is the
 * clinician's (changed with `$change-dose`), so it is not changed, but when the rate its protocol proposes from the
 * infusion as now recorded differs from the rate it gives (the patient was given less, say), the order gets a note
 * saying so (RATE_SINCE_APPROVAL_EXTENSION carrying that rate), which an EHR reads on the order and the to-do list shows
 * while the order gives another rate. Before session 39 nothing told the clinician. Only an open order written here,
 * only a rate read from the pump's record, once per rate proposed. Pure.
 */
export function rateNoticeSinceApproval(input: {
  order: MedicationRequest;
  activity: ActivityDefinition | undefined;
  given: LastGiven | undefined;
  variables: ProtocolVariables;
  now: Date;
}): RateNotice | undefined {
  const { order, activity, given, variables, now } = input;
  const titration = rateTitrationOf(activity);
  if (!titration || !isOpenOrder(order) || !orderTaskIdOf(order) || !given?.administrations?.length) return undefined;
  const last = rateGiven(given, titration.unit, weightForTitration(titration, variables)?.kg);
  if (!last?.reference) return undefined;
  const rate = rateToPropose(titration, last.ratePerKg);
  const orderedAt = orderedRatePerKg(order, titration.unit);
  if (orderedAt === undefined || rate === orderedAt || rateNotedOn(order)?.value === rate) return undefined;
  const { unit } = titration;
  const reason =
    `Recorded at the pump after this session was approved: ${last.reference.display ?? `${last.ratePerKg} ${unit}`}. ` +
    `Its protocol proposes ${rate} ${unit} from it; this order gives ${orderedAt} ${unit}: change the dose if needed`;
  const note: Annotation = {
    extension: [
      {
        url: RATE_SINCE_APPROVAL_EXTENSION,
        valueQuantity: { value: rate, unit, system: 'http://unitsofmeasure.org', code: unit },
      },
    ],
    authorString: 'ketamine-careplans (automatic)',
    time: now.toISOString(),
    text: reason,
  };
  return { order, noted: { ...order, note: [...(order.note ?? []), note] }, reason };
}

/**
 * The latest rate a note of the order says its protocol proposes since the session's approval (rateNoticeSinceApproval),
 * with the note's words; undefined when none does.
 */
export function rateNotedOn(order: MedicationRequest): { value: number; unit?: string; text: string } | undefined {
  for (const note of [...(order.note ?? [])].reverse()) {
    const quantity = note.extension?.find((e) => e.url === RATE_SINCE_APPROVAL_EXTENSION)?.valueQuantity;
    if (quantity?.value !== undefined) return { value: quantity.value, unit: quantity.code, text: note.text };
  }
  return undefined;
}

/**
 * The words of the order's rate notice (rateNoticeSinceApproval) while they still apply: the order gives another rate
 * than its protocol proposes since (a dose change writes a new order, without the note). What the to-do list and the
 * patient's timeline show.
 */
export function standingRateNotice(order: MedicationRequest): string | undefined {
  const noted = rateNotedOn(order);
  if (!noted?.unit || orderedRatePerKg(order, noted.unit) === noted.value) return undefined;
  return noted.text;
}

/** The rate an order's notice says its protocol proposes, and the rate the order gives, both in `unit`. */
export interface NoticeRates {
  proposed: number;
  ordered: number;
  unit: string;
}

/**
 * The order's rate notice while it applies (standingRateNotice), with its rates: the one its protocol proposes since
 * the session's approval and the one the order gives, in `unit`; none when the order's rate cannot be read in that
 * unit. What the clinic is told of (session 40).
 */
export function standingNoticeRates(order: MedicationRequest): NoticeRates | undefined {
  const noted = rateNotedOn(order);
  const ordered = noted?.unit ? orderedRatePerKg(order, noted.unit) : undefined;
  if (!noted?.unit || ordered === undefined || ordered === noted.value) return undefined;
  return { proposed: noted.value, ordered, unit: noted.unit };
}

function isAdministration(ref: Reference): boolean {
  return Boolean(ref.reference?.startsWith('MedicationAdministration/'));
}

function administrationsNamed(proposal: MedicationRequest): Reference[] {
  return (proposal.supportingInformation ?? []).filter(isAdministration);
}

function sameReferences(a: Reference[], b: Reference[]): boolean {
  return a.length === b.length && a.every((r, i) => r.reference === b[i].reference && r.display === b[i].display);
}
