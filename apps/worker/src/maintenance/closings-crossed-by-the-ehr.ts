import { Injectable, Logger } from '@nestjs/common';
import type { Bundle, MedicationRequest, Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, isStaleWrite, matchesOf, readAndSearchEach, searchEach } from '@kc/fhir';
import { openOrdersOfSessions } from '@kc/nest-core';
import {
  closedWithItsOrdersCancelled,
  openOrdersOfSession,
  ordersFollowedOn,
  orderTaskIdOf,
  replacementsCrossingTheClosing,
  replacementsOf,
  whenClosed,
  whenWritten,
} from '@kc/task-states';
import { serviceChangeEntries } from './withdrawal-writes';

/** Patients per search of their open orders: a URL of a few KB. */
const PATIENTS_PER_SEARCH = 50;

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
    const sessions = await this.withReplacementsOpen(closed.filter(closedWithItsOrdersCancelled));
    if (!sessions.length) return 0;
    const open = await openOrdersOfSessions(this.fhir, sessions);
    const candidates = sessions.flatMap((task) => {
      const replacements = replacementsOf(task, openOrdersOfSession(open.get(task.id!)));
      return replacements.length ? [{ task, open: replacements }] : [];
    });
    if (!candidates.length) return 0;
    const histories = await this.historiesOf([
      ...candidates.map(({ task }) => `Task/${task.id}`),
      ...candidates.flatMap(({ open: o }) => o.map(({ order }) => `${order.resourceType}/${order.id}`)),
    ]);
    let cancelled = 0;
    for (const { task, open: replacements } of candidates) {
      const crossed = replacementsCrossingTheClosing({
        task,
        open: replacements,
        closedAt: whenClosed(histories.get(`Task/${task.id}`) as Task[]),
        createdAt: new Map(
          replacements.map(({ order }) => {
            const ref = `${order.resourceType}/${order.id}`;
            return [ref, whenWritten(histories.get(ref) ?? [])];
          }),
        ),
      });
      if (!crossed.length) continue;
      try {
        await this.fhir.transaction(
          serviceChangeEntries(
            crossed.map(({ read, closed: c }) => ({ resource: c, read })),
            task,
            {
              activity: 'close the order of a closed Task',
              reason: `Written in the EHR while its session was being closed here: ${task.statusReason?.text ?? task.status}`,
            },
            now,
          ),
        );
        cancelled += crossed.length;
      } catch (err) {
        if (!isStaleWrite(err)) throw err;
      }
    }
    if (cancelled) this.logger.log({ msg: 'closed the EHR’s orders that crossed a closing', orders: cancelled });
    return cancelled;
  }

  /**
   * The sessions whose patient has an open order of the EHR's replacing another: the only ones that can have a
   * replacement left open. One search per PATIENTS_PER_SEARCH patients.
   */
  private async withReplacementsOpen(sessions: Task[]): Promise<Task[]> {
    const patients = [...new Set(sessions.flatMap((t) => t.for?.reference ?? []))];
    if (!patients.length) return [];
    const searches = [];
    for (let i = 0; i < patients.length; i += PATIENTS_PER_SEARCH)
      searches.push({
        name: `open-${i}`,
        resourceType: 'MedicationRequest' as const,
        params: {
          subject: patients.slice(i, i + PATIENTS_PER_SEARCH).join(','),
          status: 'active,on-hold',
          intent: 'order',
          _count: 200,
        },
        everyMatch: true,
      });
    const found = Object.values(await searchEach(this.fhir, searches)).flatMap((b) => matchesOf<MedicationRequest>(b));
    const replacing = new Set(
      found.filter((o) => !orderTaskIdOf(o) && ordersFollowedOn(o).length > 0).map((o) => o.subject?.reference),
    );
    return sessions.filter((t) => replacing.has(t.for?.reference));
  }

  /**
   * Each resource's versions, newest first, in one batch; a history the server pages (HAPI, by 20) read whole, one
   * resource at a time (when it was closed, or first written, may be on a later page).
   */
  private async historiesOf(refs: string[]): Promise<Map<string, Resource[]>> {
    const { read } = await readAndSearchEach(
      this.fhir,
      refs.map((r) => `${r}/_history`),
      [],
    );
    const histories = new Map<string, Resource[]>();
    for (const [i, ref] of refs.entries()) {
      const history = read[i] as Bundle | undefined;
      const [resourceType, id] = ref.split('/');
      histories.set(
        ref,
        history?.link?.some((l) => l.relation === 'next')
          ? await this.fhir.versionsOf(resourceType as Resource['resourceType'], id)
          : (history?.entry ?? []).flatMap((e) => e.resource ?? []),
      );
    }
    return histories;
  }
}
