import { Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { FhirClient } from '@kc/fhir';
import { openOrdersOfSessions } from '@kc/nest-core';
import { openOrdersOfSession, sessionBegunBy, type OpenOrder } from '@kc/task-states';
import { decisionProvenance } from './provenance';
import { cancelledEntry } from './task-review.service';

/** A clinician's decision that closed or replaced a session's open orders, as it landed. */
export interface DecisionOnOrders {
  /** The session's Task, as the decision wrote it. */
  task: Task;
  caller: Caller;
  /** The decision, as its Provenance names it (`reject`, `change-dose`). */
  decision: string;
  /**
   * Which of the session's open orders now are ones the decision would have closed, had it read them. `main`: the one
   * the session is given under (the open one written here, else the EHR's), not one left open beside it.
   */
  crossed: (open: OpenOrder, main: boolean) => boolean;
  /** Why such an order is cancelled (its status reason). */
  reason: string;
}

/**
 * A decision on a session's orders reads them, then writes: an order the EHR writes in between (its replacement of the
 * old order, a dose changed there at the same moment with its cancel of the old order never sent) is not among those
 * it closes, and stays to be given beside what the decision left (two orders to give; or one under a rejected session).
 * Once the decision has landed the session's orders are read again (one batch), and those crossed get what the others
 * got: cancelled with the decision's reason, If-Match on the version read, with the clinician's Provenance. One the
 * pump has begun is the infusion's. A write refused (the EHR closed it meanwhile) or failed is logged and leaves it
 * (after a dose change the to-do list then says two orders to give): the decision itself stands, and is answered so;
 * the worker's reconciliation of orders cancels it within 15 minutes (after a rejection ClosingsCrossedByTheEhr, since
 * session 58; after a dose change DoseChangesCrossedByTheEhr, since session 60). Since session 56, after CI's clinic day found two orders to give once.
 */
@Injectable()
export class CrossedEhrOrders {
  private readonly logger = new Logger(CrossedEhrOrders.name);

  constructor(private readonly fhir: FhirClient) {}

  /** The number of orders cancelled. */
  async closeAfter(decision: DecisionOnOrders): Promise<number> {
    const { task } = decision;
    try {
      // The order the session is given under first, then those left open beside it.
      const open = openOrdersOfSession((await openOrdersOfSessions(this.fhir, [task])).get(task.id!));
      const crossed = open.filter((o, i) => decision.crossed(o, i === 0) && !sessionBegunBy(o.administrations));
      if (!crossed.length) return 0;
      const provenance = decisionProvenance({
        targets: crossed.map(({ order }) => ({ reference: `${order.resourceType}/${order.id}` })),
        caller: decision.caller,
        decision: decision.decision,
        now: new Date(),
        reason: `${decision.reason} (written in the EHR while this decision was being made)`,
      });
      await this.fhir.transaction([
        ...crossed.map(({ order }) => cancelledEntry(order, decision.reason)),
        { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
      ]);
      this.logger.log({ msg: 'orders that crossed a decision closed with it', task: task.id, orders: crossed.length });
      return crossed.length;
    } catch (err) {
      this.logger.warn({ msg: 'orders that crossed a decision left open', task: task.id, error: String(err) });
      return 0;
    }
  }
}
