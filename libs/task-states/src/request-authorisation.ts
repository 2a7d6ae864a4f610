import type {
  CommunicationRequest,
  Dosage,
  MedicationAdministration,
  MedicationRequest,
  Reference,
  Resource,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import { isClosedElsewhere, stateOf } from './task-states';

/** The identifier an approval writes on its order (`Task/<id>`): how the order of an approved Task is found. */
export const ORDER_KEY_SYSTEM = 'https://ketamine-careplans.example/fhir/NamingSystem/order-key';

/** The key of the order an approval of Task `taskId` writes. */
export function orderKeyFor(taskId: string): { system: string; value: string } {
  return { system: ORDER_KEY_SYSTEM, value: `Task/${taskId}` };
}

/** The token search for that order (`identifier=<system>|Task/<id>`). */
export function orderKeySearch(taskId: string): string {
  const { system, value } = orderKeyFor(taskId);
  return `${system}|${value}`;
}

/** The id of the Task whose approval wrote this order (its key), if this service wrote it. */
export function orderTaskIdOf(
  order: Resource & { identifier?: { system?: string; value?: string }[] },
): string | undefined {
  const key = order.identifier?.find((i) => i.system === ORDER_KEY_SYSTEM)?.value;
  return /^Task\/([^/]+)$/.exec(key ?? '')?.[1];
}

/** Requests a Task can authorise. Appointments are booked by the scheduling system, not ordered here. */
export type AuthorisableRequest = MedicationRequest | ServiceRequest | CommunicationRequest;

/** The request types a Task's approval orders (what the sweeps search orders of). */
export const AUTHORISABLE_TYPES = ['MedicationRequest', 'ServiceRequest', 'CommunicationRequest'] as const;

export function isAuthorisable(resource: Resource | undefined): resource is AuthorisableRequest {
  return (AUTHORISABLE_TYPES as readonly string[]).includes(resource?.resourceType ?? '');
}

/** The type of order an approval of the Task writes: its proposal's (`focus`), when one an approval authorises. */
export function orderTypeOf(task: Task): AuthorisableRequest['resourceType'] | undefined {
  const type = task.focus?.reference?.split('/')[0];
  return (AUTHORISABLE_TYPES as readonly string[]).includes(type ?? '')
    ? (type as AuthorisableRequest['resourceType'])
    : undefined;
}

/** Still to be given (or sent): active, or on hold. */
export function isOpenOrder(order: AuthorisableRequest): boolean {
  return order.status === 'active' || order.status === 'on-hold';
}

/** What the pump records once a session has begun: under way, paused at the pump, or given. */
const SESSION_BEGUN: ReadonlySet<MedicationAdministration['status']> = new Set(['in-progress', 'on-hold', 'completed']);

/**
 * The administration (of an order) showing its session has begun at the pump, if any: the order is then the pump's and
 * its infusion's (no dose change here, no withdrawal or hold for its plan).
 */
export function sessionBegunBy(administrations: MedicationAdministration[]): MedicationAdministration | undefined {
  return administrations.find((a) => SESSION_BEGUN.has(a.status));
}

/** Medication and service orders need a prescriber; a communication may be sent on the clinic's behalf. */
export function needsRequester(request: AuthorisableRequest): boolean {
  return request.resourceType !== 'CommunicationRequest';
}

export interface OrderInput {
  proposal: AuthorisableRequest & { id: string };
  carePlan?: Reference;
  /** The approving practitioner (the token's fhirUser). */
  requester?: Reference;
  now: Date;
  /** Deterministic identifier so a retried approval writes one order. */
  key: { system: string; value: string };
  /** A MedicationRequest's dosage as ordered (a titrated rate, the latest weight), instead of the proposal's. */
  dosage?: Dosage[];
  /** What the order rests on besides the proposal (the body weight its dose was computed from). */
  supportingInformation?: Reference[];
  /** The order this one replaces, cancelled with it (a dose changed before the session): `priorPrescription`. */
  replaces?: Reference;
  /** For whoever gives it: why it was written (a dose change's reason), advice (a weight to take again). */
  notes?: string[];
}

/**
 * CPG's proposal -> order step: a new request, active and authorised, based on the CarePlan and on the proposal
 * it came from. The proposal itself is left as it was (intent is immutable); an EHR reading status and intent
 * finds exactly one active order.
 */
export function orderFromProposal(input: OrderInput): AuthorisableRequest {
  const { proposal, now } = input;

  const { id: _id, meta: _meta, identifier: _identifier, ...body } = proposal;
  const basedOn = [
    ...(input.carePlan ? [input.carePlan] : []),
    { reference: `${proposal.resourceType}/${proposal.id}` },
  ];
  const common = { identifier: [input.key], authoredOn: now.toISOString(), requester: input.requester, basedOn };
  if (body.resourceType === 'CommunicationRequest') {
    return { ...body, ...common, status: 'active' } as CommunicationRequest;
  }
  const medication =
    body.resourceType === 'MedicationRequest'
      ? {
          ...(input.dosage ? { dosageInstruction: input.dosage } : {}),
          ...(input.supportingInformation?.length
            ? { supportingInformation: [...(body.supportingInformation ?? []), ...input.supportingInformation] }
            : {}),
          ...(input.replaces ? { priorPrescription: input.replaces } : {}),
          ...(input.notes?.length ? { note: [...(body.note ?? []), ...input.notes.map((text) => ({ text }))] } : {}),
        }
      : {};
  return { ...body, ...common, ...medication, status: 'active', intent: 'order' } as MedicationRequest | ServiceRequest;
}

/** How a dose change here begins the reason of the order it replaces (cancelled, never given): what tells it apart. */
const REPLACED_BY_DOSE_CHANGE = 'Replaced by a new order at';

/** The reason a dose change here gives the order it replaces (`$change-dose`). */
export function doseChangeReason(newDose: string): string {
  return `${REPLACED_BY_DOSE_CHANGE} ${newDose}: the dose was changed before the session`;
}

/**
 * An order a dose change here wrote (`$change-dose`): keyed by its Task, `priorPrescription` the order it replaced.
 * Nothing else this service writes names a prior prescription.
 */
export function writtenByDoseChange(order: AuthorisableRequest): order is MedicationRequest {
  return order.resourceType === 'MedicationRequest' && Boolean(orderTaskIdOf(order) && order.priorPrescription);
}

/** The order was replaced by a dose change here (doseChangeReason), not cancelled for another reason. */
export function replacedByDoseChange(order: MedicationRequest): boolean {
  return order.status === 'cancelled' && Boolean(order.statusReason?.text?.startsWith(REPLACED_BY_DOSE_CHANGE));
}

/**
 * A proposal (or an order not given yet) closed with why, in the fields each type has: rejected by a clinician,
 * withdrawn with its plan, or made moot by a later infusion.
 */
export function cancelledProposal(proposal: AuthorisableRequest, reason: string): AuthorisableRequest {
  switch (proposal.resourceType) {
    case 'MedicationRequest':
      return { ...proposal, status: 'cancelled', statusReason: { text: reason } };
    case 'CommunicationRequest':
      return { ...proposal, status: 'revoked', statusReason: { text: reason } };
    case 'ServiceRequest':
      // No statusReason in R4: the reason goes in a note.
      return { ...proposal, status: 'revoked', note: [...(proposal.note ?? []), { text: reason }] };
  }
}

/**
 * The order of a Task an infusion answered: given (the Task done) -> completed; made moot by a later infusion (the
 * Task superseded) -> cancelled, never given, saying which infusion. So an EHR reading status alone finds only what
 * is still to be given (before session 17 every session's order stayed active after its infusion).
 */
export function orderAnsweredBy(
  order: AuthorisableRequest,
  outcome: 'done' | 'superseded',
  by: Reference,
): AuthorisableRequest {
  if (outcome === 'superseded')
    return cancelledProposal(order, `Superseded: a later infusion was completed (${by.reference})`);
  if (order.resourceType === 'ServiceRequest') return { ...order, status: 'completed' };
  const { statusReason: _previous, ...rest } = order;
  return { ...rest, status: 'completed' };
}

/**
 * The order of a Task that is closed (done, superseded, rejected, withdrawn) but still open itself: what the infusion or the
 * rejection would have written with it (orders written before session 17 stayed active). Undefined while the Task is
 * open, or when the order is already closed.
 */
export function orderForClosedTask(task: Task, order: AuthorisableRequest): AuthorisableRequest | undefined {
  if (!isOpenOrder(order)) return undefined;
  const output = (kind: string) => task.output?.find((o) => o.type?.text === kind)?.valueReference;
  switch (stateOf(task)) {
    case 'done':
      return orderAnsweredBy(order, 'done', output('fulfilled-by') ?? {});
    case 'superseded': {
      const by = output('superseded-by');
      return by
        ? orderAnsweredBy(order, 'superseded', by)
        : cancelledProposal(order, 'Superseded: a later infusion was completed');
    }
    case 'rejected':
      return cancelledProposal(order, task.statusReason?.text ?? 'Rejected');
    case 'withdrawn':
      // Its plan ended (the stopped-plan sweep cancels the order with it; this closes one that write missed).
      return cancelledProposal(order, task.statusReason?.text ?? 'Withdrawn: its care plan ended');
    case 'recorded-in-error':
      // The infusion that closed it did not happen: proposed again as another Task, whose approval orders it anew.
      return cancelledProposal(order, task.statusReason?.text ?? 'Not given: recorded in error');
    default:
      return closedElsewhere(task, order);
  }
}

/**
 * Open as this service last wrote it (its business state), closed since by someone else (an EHR setting Task.status,
 * the field an EHR reads): completed, as given; cancelled, rejected or failed, as not to be given. Since session 42;
 * before, such a Task's order stayed active.
 */
function closedElsewhere(task: Task, order: AuthorisableRequest): AuthorisableRequest | undefined {
  if (!isClosedElsewhere(task)) return undefined;
  if (task.status === 'completed') return orderAnsweredBy(order, 'done', {});
  return cancelledProposal(order, task.statusReason?.text ?? `Its Task was ${task.status} in the EHR`);
}
