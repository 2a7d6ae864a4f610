import type {
  MedicationAdministration,
  MedicationRequest,
  Period,
  Procedure,
  Reference,
  Task,
} from '@medplum/fhirtypes';
import {
  isOpen,
  isOpenOrder,
  orderAnsweredBy,
  ordersApprovedOn,
  orderTaskIdOf,
  sessionBegunBy,
  stateOf,
} from '@kc/task-states';
import { isOfInfusion } from './infusion-as-given';
import { answeredByInfusion, applyInfusionUpdate } from './superseded';

/**
 * An approved session this service closed (superseded by another infusion, withdrawn with its stopped plan) on a read
 * of the patient's orders that did not show the pump beginning it yet: the pump recorded the administration after the
 * read and before the closing write landed. FHIR has no lock spanning an administration's create and an order's
 * update, so the crossing cannot be prevented; it is undone, as the read would have judged had it seen the record:
 * the session is its infusion's. Its Task and order are written back as they were before the closing (approved, the
 * order to give), or, when the infusion the pump gave it during is on record, answered by it (done, the order
 * completed).
 */
export interface CrossedClosing {
  /** The Task as read (closed: its version is the write's If-Match), and as written back. */
  task: { read: Task; written: Task };
  order: { read: MedicationRequest; written: MedicationRequest };
  /** The pump's record the closing crossed. */
  administration: MedicationAdministration;
  /** The infusion on record that gave the session, which answers it; undefined: left to its infusion. */
  answeredBy?: Reference;
  /**
   * The pump's record was charted after the closing, but says the pump began before it (its effective time): the
   * closing withdrew or superseded a session being given. Undone only when its infusion on record answers it.
   */
  chartedLate?: boolean;
}

/** An administration of the order, with its versions newest first when read (its first begun one is when it was recorded). */
export interface PumpRecord {
  administration: MedicationAdministration;
  versions?: MedicationAdministration[];
}

/**
 * The crossing to undo for a session's order (written here, the EHR's it was approved on, or the EHR's replacement of
 * one of those), if any. Only a closing by this service (the Task superseded
 * or withdrawn, the order cancelled with the Task's reason in the same write) that landed after the pump recorded
 * beginning the order, or (since session 49) after the time the pump says it began, on a record charted late, when
 * the infusion it is part of is on record (answered at once). One that began after the order was closed is the pump
 * giving a cancelled order, the EHR's to answer. Pure: the caller reads the versions (instance histories, newest
 * first) and the infusions (the plan's, and the patient's naming no plan).
 */
export function crossedClosingOf(input: {
  orderVersions: MedicationRequest[];
  taskVersions: Task[];
  administrations: PumpRecord[];
  infusions: Procedure[];
  /** The order is the EHR's replacement of the session's (the caller followed the orders it replaces to the Task). */
  replacesSessionOrder?: boolean;
  now: Date;
  zone?: string;
}): CrossedClosing | undefined {
  const [order] = input.orderVersions;
  const [task] = input.taskVersions;
  if (!order || !task || order.status !== 'cancelled') return undefined;
  if (!input.replacesSessionOrder && !isOrderOf(order, task)) return undefined;
  const state = stateOf(task);
  if (state !== 'superseded' && state !== 'withdrawn') return undefined;
  // The order closed by the same write as the Task: cancelled with the Task's reason (an EHR's cancel is not undone).
  if (!order.statusReason?.text?.startsWith(task.statusReason?.text ?? '\u0000')) return undefined;
  // Versions newest first: the newest open one is what the closing closed.
  const orderBefore = input.orderVersions.find(isOpenOrder);
  const taskBefore = input.taskVersions.find(isOpen);
  const closedAt = closingTime(input.orderVersions, orderBefore);
  if (!orderBefore || !taskBefore || closedAt === undefined) return undefined;
  const records = input.administrations.filter(
    (r) =>
      r.administration.request?.reference === `MedicationRequest/${order.id}` && sessionBegunBy([r.administration]),
  );
  const crossing = records.find((r) => firstBegunAt(r) < closedAt)?.administration;
  const chartedLate = crossing
    ? undefined
    : records.find((r) => pumpBeganAt(r.administration) < closedAt)?.administration;
  const crossed = crossing ?? chartedLate;
  if (!crossed) return undefined;

  const reopened: Task = { ...taskBefore, meta: task.meta, lastModified: input.now.toISOString() };
  const reopenedOrder: MedicationRequest = { ...orderBefore, meta: order.meta };
  const infusion = infusionThatGave(crossed, input.infusions);
  const answered = infusion && answeredByInfusionGiven({ task: reopened, order: reopenedOrder, infusion, ...input });
  // Charted late with its infusion not on record: left closed. Reopened, its order would stand active after the drug
  // went in, under a plan stopped or a patient dead since, for as long as the infusion takes to be charted; a crossing
  // is reopened because the pump is running it then.
  if (chartedLate && !answered) return undefined;
  return {
    task: { read: task, written: answered?.task ?? reopened },
    order: { read: order, written: answered?.order ?? reopenedOrder },
    administration: crossed,
    answeredBy: answered?.by,
    ...(chartedLate ? { chartedLate: true } : {}),
  };
}

/**
 * The order is the session's: written by its approval (its key), or the EHR's it was approved on (since session 42, as
 * a withdrawal or a superseding closes that order too; before, its closing across the pump was not undone).
 */
function isOrderOf(order: MedicationRequest, task: Task): boolean {
  return orderTaskIdOf(order) === task.id || ordersApprovedOn(task).includes(`MedicationRequest/${order.id}`);
}

/**
 * The cancelled orders a pump record of this infusion began (isOfInfusion): a closing of its session by this service
 * may have crossed the pump, or a record charted before the infusion (crossedClosingOf undoes a closing of a session
 * the pump began only once that infusion is on record). Their order-changed jobs judge it again now the infusion is.
 */
export function cancelledOrdersGivenDuring(
  infusion: { procedureId: string; performed: Period },
  records: { administrations: MedicationAdministration[]; orders: MedicationRequest[] },
): string[] {
  const cancelled = new Set(
    records.orders.filter((o) => o.status === 'cancelled').map((o) => `MedicationRequest/${o.id}`),
  );
  const begun = records.administrations.filter(
    (a) =>
      cancelled.has(a.request?.reference ?? '') &&
      sessionBegunBy([a]) &&
      isOfInfusion(a, infusion.procedureId, infusion.performed),
  );
  return [...new Set(begun.map((a) => a.request!.reference!.slice('MedicationRequest/'.length)))];
}

/**
 * The infusion on record the pump's record is part of (isOfInfusion), if any: a completed one, or with `status`
 * `entered-in-error` one recorded in error since, whose in-error job judges the sessions the pump gave during it and
 * must be asked again when the pump's record is charted after that job ran (since session 44: clinic day seed 2471).
 */
export function infusionThatGave(
  administration: MedicationAdministration,
  infusions: Procedure[],
  status: Extract<Procedure['status'], 'completed' | 'entered-in-error'> = 'completed',
): Procedure | undefined {
  return infusions.find(
    (p) => p.id && p.status === status && p.performedPeriod && isOfInfusion(administration, p.id, p.performedPeriod),
  );
}

/**
 * An open session and its order answered by the infusion that gave it: the Task done (output the Procedure), the order
 * completed, as the infusion's follow-up answers them. Undefined when either is no longer open.
 */
export function answeredByInfusionGiven(input: {
  task: Task;
  order: MedicationRequest;
  infusion: Procedure;
  now: Date;
  zone?: string;
}): { task: Task; order: MedicationRequest; by: Reference } | undefined {
  if (!isOpen(input.task) || !isOpenOrder(input.order)) return undefined;
  const { start, end } = input.infusion.performedPeriod ?? {};
  const by = answeredByInfusion(input.infusion.id!, Date.parse(end ?? start ?? ''), input.zone);
  return {
    task: applyInfusionUpdate({ task: input.task, outcome: 'done', by }, input.now),
    order: orderAnsweredBy(input.order, 'done', by) as MedicationRequest,
    by,
  };
}

function closingTime(versions: MedicationRequest[], before: MedicationRequest | undefined): number | undefined {
  const index = before ? versions.indexOf(before) : -1;
  const closing = index > 0 ? versions[index - 1] : undefined;
  const at = Date.parse(closing?.meta?.lastUpdated ?? '');
  return Number.isFinite(at) ? at : undefined;
}

/** When the pump says it began, by its own clock (`effectivePeriod.start` or `effectiveDateTime`). */
function pumpBeganAt(administration: MedicationAdministration): number {
  return Date.parse(administration.effectivePeriod?.start ?? administration.effectiveDateTime ?? '') || Infinity;
}

/** When the pump's record of a begun session was first written: its oldest begun version, else as read. */
function firstBegunAt(record: PumpRecord): number {
  const begun = (record.versions ?? []).filter((v) => sessionBegunBy([v]));
  const first = begun.length ? begun[begun.length - 1] : record.administration;
  return Date.parse(first.meta?.lastUpdated ?? '') || Infinity;
}
