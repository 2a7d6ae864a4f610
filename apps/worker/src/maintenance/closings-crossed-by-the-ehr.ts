import { Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { openOrdersOfSessions } from '@kc/nest-core';
import {
  closedWithItsOrdersCancelled,
  openOrdersOfSession,
  replacementsCrossingTheClosing,
  replacementsOf,
  whenClosed,
} from '@kc/task-states';
import { closeCrossed, historiesOf, withEhrReplacementsOpen, writtenAtOf } from './crossed-replacement-io';

/**
 * The EHR's replacements of a closed session's order written while it was being closed, that the closing's second
 * read (withdrawCrossedOrders, CrossedEhrOrders) did not close: it failed (the FHIR server down a moment, the process
 * stopped between the two), and nothing looks at a closed session again. Reconciled with the other orders of closed
 * Tasks (AnsweredOrdersSweep, every 15 minutes) over the sessions this service closed since its last run: withdrawn
 * with their plan, rejected, superseded (closedWithItsOrdersCancelled). Such a replacement, written before the session
 * was closed (its Task's history) and not begun at the pump, is cancelled as the closing cancelled the others, with a
 * Provenance naming the service; one written after is left (replacementsCrossingTheClosing). Since session 58; before,
 * it stayed to give under the closed session.
 *
 * Reads: one search of the sessions' patients' open orders (per 50 patients); only when one of them is the EHR's
 * replacement of an order, the sessions' orders (one batch), and then the histories of the Tasks and replacements
 * concerned (one batch). A transaction per session with such an order.
 */
@Injectable()
export class ClosingsCrossedByTheEhr {
  private readonly logger = new Logger(ClosingsCrossedByTheEhr.name);

  constructor(private readonly fhir: FhirClient) {}

  /** Of `closed` (Tasks closed since the last run), the orders cancelled. A conflict leaves one to the next run. */
  async close(closed: Task[], now = new Date()): Promise<number> {
    const sessions = await withEhrReplacementsOpen(this.fhir, closed.filter(closedWithItsOrdersCancelled));
    if (!sessions.length) return 0;
    const open = await openOrdersOfSessions(this.fhir, sessions);
    const candidates = sessions.flatMap((task) => {
      const replacements = replacementsOf(task, openOrdersOfSession(open.get(task.id!)));
      return replacements.length ? [{ task, open: replacements }] : [];
    });
    if (!candidates.length) return 0;
    const histories = await historiesOf(this.fhir, [
      ...candidates.map(({ task }) => `Task/${task.id}`),
      ...candidates.flatMap(({ open: o }) => o.map(({ order }) => `${order.resourceType}/${order.id}`)),
    ]);
    let cancelled = 0;
    for (const { task, open: replacements } of candidates) {
      const crossed = replacementsCrossingTheClosing({
        task,
        open: replacements,
        closedAt: whenClosed(histories.get(`Task/${task.id}`) as Task[]),
        createdAt: writtenAtOf(replacements, histories),
      });
      cancelled += await closeCrossed(
        this.fhir,
        task,
        crossed,
        {
          activity: 'close the order of a closed Task',
          reason: `Written in the EHR while its session was being closed here: ${task.statusReason?.text ?? task.status}`,
        },
        now,
      );
    }
    if (cancelled) this.logger.log({ msg: 'closed the EHR’s orders that crossed a closing', orders: cancelled });
    return cancelled;
  }
}
