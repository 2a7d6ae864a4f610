import type { MedicationAdministration, Period, Reference, Task } from '@medplum/fhirtypes';
import { clinicDay } from '@kc/protocols';
import {
  isOpen,
  isOpenOrder,
  openOrdersOfSession,
  orderAnsweredBy,
  type AuthorisableRequest,
  type OpenOrder,
} from '@kc/task-states';
import { isOfInfusion } from './infusion-as-given';
import { applyInfusionUpdate } from './superseded';

/**
 * A session the pump recorded giving (its administration `completed`) during an infusion the EHR then recorded in
 * error, or deleted, before that infusion's follow-up ran: the follow-up ignores an infusion not completed, so nothing
 * would ever answer the session, and its order would stay active after the drug went in, to be given again (or held
 * with its plan and released to active by an override). The pump's record is what was given: the session is done by
 * it (output the administration) and its order completed. Found in session 38 (the clinic day with the pump on).
 */
export interface GivenAtThePump {
  task: { read: Task; written: Task };
  /** Its open orders (the one written here, the EHR's replacements left open beside it), completed. */
  orders: { read: AuthorisableRequest; written: AuthorisableRequest }[];
  /** The pump's record that gave it. */
  administration: MedicationAdministration;
  /** That record as what answered it (givenBy): what its reminders' revocation says too. */
  by: Reference;
}

/**
 * The approved sessions (`sessions`: open Tasks with their open orders and the pump's records of them) the pump gave
 * during the infusion `procedureId` (performed `performed`, as recorded before it was taken back): each answered by its
 * completed administration. A session the pump is still running (in progress, paused) is left to the pump; nothing
 * when the infusion's time is unknown. Pure.
 */
export function sessionsGivenDuringInfusionInError(input: {
  procedureId: string;
  performed: Period | undefined;
  sessions: { task: Task; open: OpenOrder }[];
  now: Date;
  zone?: string;
}): GivenAtThePump[] {
  const { procedureId, performed, now, zone } = input;
  if (!performed?.start && !performed?.end) return [];
  return input.sessions.flatMap(({ task, open }) => {
    const orders = openOrdersOfSession(open).filter((o) => isOpenOrder(o.order));
    if (!isOpen(task) || !orders.length) return [];
    const administration = orders
      .flatMap((o) => o.administrations)
      .find((a) => a.status === 'completed' && isOfInfusion(a, procedureId, performed));
    if (!administration?.id) return [];
    const by = givenBy(administration, zone);
    return [
      {
        task: { read: task, written: applyInfusionUpdate({ task, outcome: 'done', by }, now) },
        orders: orders.map(({ order }) => ({ read: order, written: orderAnsweredBy(order, 'done', by) })),
        administration,
        by,
      },
    ];
  });
}

/** The pump's record as what fulfilled a session: `MedicationAdministration/<id>`, "given at the pump on <day>". */
export function givenBy(administration: MedicationAdministration, zone?: string): Reference {
  const when =
    administration.effectivePeriod?.end ?? administration.effectivePeriod?.start ?? administration.effectiveDateTime;
  const day = clinicDay(when, zone);
  return {
    reference: `MedicationAdministration/${administration.id}`,
    display: day ? `given at the pump on ${day}` : 'given at the pump',
  };
}
