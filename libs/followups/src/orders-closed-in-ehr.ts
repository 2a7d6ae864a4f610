import type { CommunicationRequest, MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { closedInEhrWords, closedUngiven, isAwaitingApproval, isOpen, orderInEhr, transition } from '@kc/task-states';
import { remindersRevokedFor } from './reminders';

/** An approved session returned to a clinician, with what goes with it. */
export interface ReturnForReview {
  /** The Task as read (its version is the If-Match of the write). */
  task: Task;
  returned: Task;
  /** The order that was closed (the last of its chain), as read: named by the Provenance. */
  closedOrder: MedicationRequest;
  /** Its reminders not sent yet, as read and revoked: nothing is to be given, so the patient is not told to come. */
  reminders: { read: CommunicationRequest; revoked: CommunicationRequest }[];
}

/** The approved infusion sessions (ready, or held): those whose orders are read to see whether the EHR closed them. */
export function approvedSessions(tasks: Task[]): Task[] {
  return tasks.filter(
    (t) => isOpen(t) && !isAwaitingApproval(t) && Boolean(t.focus?.reference?.startsWith('MedicationRequest/')),
  );
}

/**
 * Approved sessions whose order the EHR cancelled, stopped or entered in error with nothing in its place (no open
 * order replacing it, none given, the pump not started under it): each goes back to awaiting a clinician (draft, why
 * in `statusReason`), since a `ready` Task with no order to give misleads an EHR and the nurse, and only a clinician
 * can order the session again (approve) or drop it (reject). Its reminders not sent are revoked.
 *
 * `closedBefore`: only orders closed (last updated) before it count. An EHR that changes a dose may cancel the order
 * before it writes the replacement; the caller leaves it that grace (the notified job waits it out; the sweep passes
 * now minus it). Pure: the worker reads the orders (`written`, by Task id), their administrations and the patients'
 * orders since (replacements, any depth).
 */
export function sessionsToReturnForReview(input: {
  tasks: Task[];
  written: Map<string, MedicationRequest[]>;
  patientOrders: MedicationRequest[];
  administrations: MedicationAdministration[];
  reminders: CommunicationRequest[];
  now: Date;
  closedBefore?: Date;
}): ReturnForReview[] {
  return approvedSessions(input.tasks).flatMap((task) => {
    const written = input.written.get(task.id!) ?? [];
    if (!written.length) return [];
    const closedOrder = closedUngiven(orderInEhr(written, input.patientOrders), input.administrations);
    if (!closedOrder) return [];
    const closedAt = Date.parse(closedOrder.meta?.lastUpdated ?? '');
    if (input.closedBefore && !(closedAt < input.closedBefore.getTime())) return [];
    const reason = `Its order ${closedInEhrWords(closedOrder)}: approve it again to order the session, or reject it`;
    const returned = transition(task, { event: 'return-for-review', now: input.now, reason });
    const revoke = `Not to be given now: its order ${closedInEhrWords(closedOrder)}`;
    return [
      {
        task,
        returned,
        closedOrder,
        reminders: remindersRevokedFor(task, input.reminders, revoke),
      },
    ];
  });
}
