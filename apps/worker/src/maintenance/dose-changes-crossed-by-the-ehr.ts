import { Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { openOrdersOfSessions } from '@kc/nest-core';
import { orderRateText } from '@kc/protocols';
import {
  doseChangeReason,
  openOrdersOfSession,
  replacementsCrossingTheDoseChange,
  replacementsOf,
  writtenByDoseChange,
} from '@kc/task-states';
import { closeCrossed, historiesOf, withEhrReplacementsOpen, writtenAtOf } from './crossed-replacement-io';

/**
 * The EHR's replacements of a session's order written while a clinician's `$change-dose` was being made, that the
 * change's second read (CrossedEhrOrders) did not replace: it failed, and the session was left with two orders to give
 * (the new dose, and the EHR's replacement of the old one; the to-do list names both). Reconciled with the other orders
 * (AnsweredOrdersSweep, every 15 minutes) over the open sessions whose order to give is a dose change here: such a
 * replacement, written before the change's order (their histories) and not begun at the pump, is cancelled as the
 * change replaced the others, with the change's reason and a Provenance naming the service; one written after is left
 * (replacementsCrossingTheDoseChange). Since session 60; before, it stayed beside the new dose.
 *
 * Reads: one search of the sessions' patients' open orders (per 50 patients); only when one of them is the EHR's
 * replacement of an order, the sessions' orders (one batch), and then the histories of the orders concerned (one
 * batch). A transaction per session with such an order.
 */
@Injectable()
export class DoseChangesCrossedByTheEhr {
  private readonly logger = new Logger(DoseChangesCrossedByTheEhr.name);

  constructor(private readonly fhir: FhirClient) {}

  /** Of `sessions` (open, given under an order a dose change wrote), the orders cancelled. A conflict leaves one. */
  async close(sessions: Task[], now = new Date()): Promise<number> {
    const replacing = await withEhrReplacementsOpen(this.fhir, sessions);
    if (!replacing.length) return 0;
    const open = await openOrdersOfSessions(this.fhir, replacing);
    const candidates = replacing.flatMap((task) => {
      const orders = openOrdersOfSession(open.get(task.id!));
      const given = orders[0]?.order;
      if (!given || !writtenByDoseChange(given)) return [];
      return replacementsOf(task, orders.slice(1)).length ? [{ task, orders, given }] : [];
    });
    if (!candidates.length) return 0;
    const refs = candidates.flatMap(({ orders }) => orders.map(({ order }) => `${order.resourceType}/${order.id}`));
    const histories = await historiesOf(this.fhir, refs);
    let cancelled = 0;
    for (const { task, orders, given } of candidates) {
      const reason = doseChangeReason(orderRateText(given) || 'another dose');
      const crossed = replacementsCrossingTheDoseChange({
        task,
        open: orders,
        createdAt: writtenAtOf(orders, histories),
        reason,
      });
      cancelled += await closeCrossed(
        this.fhir,
        task,
        crossed,
        {
          activity: 'replace an order a dose change crossed',
          reason: `${reason} (written in the EHR while the dose was being changed here)`,
          sources: [`${given.resourceType}/${given.id}`],
        },
        now,
      );
    }
    if (cancelled) this.logger.log({ msg: 'replaced the EHR’s orders that crossed a dose change', orders: cancelled });
    return cancelled;
  }
}
