import { Inject, Injectable, Logger } from '@nestjs/common';
import type {
  Bundle,
  MedicationAdministration,
  MedicationRequest,
  Procedure,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, includedOf, matchesOf, readAndSearchEach, updateEntry, type NamedSearch } from '@kc/fhir';
import {
  administrationWindow,
  answeredByInfusionGiven,
  carePlanReferenceOf,
  crossedClosingOf,
  infusionThatGave,
  isUnlinkedInfusion,
  type CrossedClosing,
} from '@kc/followups';
import { sessionsOfOrderInEhr } from '@kc/nest-core';
import { changeProvenance, sessionBegunBy, stateOf, THIS_SERVICE } from '@kc/task-states';

/**
 * Undoes a closing of an approved session by this service that crossed the pump beginning it (crossedClosingOf): run
 * when an administration is recorded (notified or polled) and when one of this service's orders is closed (notified
 * or polled), so whichever of the two writes lands last finds the other. The Task and order are written back with
 * If-Match and a Provenance naming the service and the pump's record; a write refused as stale fails the job, which
 * runs again in seconds and judges anew.
 */
@Injectable()
export class CrossedClosings {
  private readonly logger = new Logger(CrossedClosings.name);

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /**
   * An order searched by `_id`, with `_revinclude=MedicationAdministration:request` and `_revinclude=Task:based-on` (by
   * the job that heard of it; the Tasks approved on it, for an EHR's order): when this service cancelled it and the pump
   * began it, one batch more (the order's, its Task's and the records' histories, and the plan's infusions) and the
   * write.
   */
  async ofOrderFound(found: Bundle, now = new Date()): Promise<{ undone: number }> {
    const [order] = matchesOf<MedicationRequest>(found).filter((o) => o.status === 'cancelled');
    const begun = includedOf<MedicationAdministration>(found, 'MedicationAdministration').filter((a) =>
      sessionBegunBy([a]),
    );
    if (!order?.id || !begun.length) return { undone: 0 };
    const session = await this.sessionOf(order, includedOf<Task>(found, 'Task'));
    if (!session) return { undone: 0 };
    const { taskId } = session;
    const orderId = order.id;
    // An EHR's order may name no plan: its session's does.
    const plan = carePlanReferenceOf(order) ?? session.plan;
    const unlinked = unlinkedInfusionsSearch(order, begun);
    const searches: NamedSearch[] = [...(plan ? [infusionsSearch(plan)] : []), ...(unlinked ? [unlinked] : [])];
    const { read, found: around } = await readAndSearchEach(
      this.fhir,
      [
        `MedicationRequest/${orderId}/_history`,
        `Task/${taskId}/_history`,
        ...begun.map((a) => `MedicationAdministration/${a.id}/_history`),
      ],
      searches,
    );
    const [orderHistory, taskHistory, ...administrationHistories] = read.map((b) => versionsIn(b as Bundle));
    const crossed = crossedClosingOf({
      orderVersions: orderHistory as MedicationRequest[],
      taskVersions: taskHistory as Task[],
      administrations: begun.map((administration, i) => ({
        administration,
        versions: administrationHistories[i] as MedicationAdministration[],
      })),
      infusions: [
        ...(plan ? matchesOf<Procedure>(around.infusions) : []),
        // One naming no plan may be what the pump's record charted late is part of (it ties it to the plan).
        ...(unlinked ? matchesOf<Procedure>(around.unlinked).filter(isUnlinkedInfusion) : []),
      ],
      replacesSessionOrder: session.replacement,
      now,
      zone: this.config.clinicTimeZone,
    });
    if (!crossed) return { undone: 0 };
    await this.write(crossed, now);
    // Reopened, left to its infusion: one recorded since the read above had its follow-up read the session closed.
    const answered =
      crossed.answeredBy !== undefined || (plan ? await this.answerIfGivenSince(crossed, plan, now) : false);
    this.logger.log({
      msg: crossed.chartedLate
        ? 'a closing of a session the pump had begun, on its record charted late, undone'
        : 'a closing that crossed the pump undone',
      task: crossed.task.read.id,
      answered,
    });
    return { undone: 1 };
  }

  /**
   * The session an order is of (`tasks`: those approved on it, as the job's search included them), or for an EHR order
   * replacing another (`priorPrescription`) the session of the orders it replaces (sessionsOfOrderInEhr: one search a
   * step, only for a replacement this service cancelled and the pump began; since session 42, before its crossing was
   * not undone). Its plan: the session's, else the order's it was found on.
   */
  private async sessionOf(order: MedicationRequest, tasks: Task[]): Promise<OrderSession | undefined> {
    const { session, tasks: approvedOn } = await sessionsOfOrderInEhr(this.fhir, order, tasks);
    if (!session) return undefined;
    const taskId = session.ids[0];
    const task = approvedOn.find((t) => t.id === taskId);
    return {
      taskId,
      plan: (task && carePlanReferenceOf(task)) ?? carePlanReferenceOf(session.through),
      replacement: session.replacement,
    };
  }

  /**
   * A session reopened for its infusion: that infusion, recorded between the read above and the reopening (its follow-up
   * saw the session closed, and answered nothing), answers it now. One batch (the Task, the order, the plan's
   * infusions), and a write only then. Whatever is recorded after the reopening has its own follow-up read it open.
   */
  private async answerIfGivenSince(crossed: CrossedClosing, plan: string, now: Date): Promise<boolean> {
    const taskId = crossed.task.read.id!;
    const orderId = crossed.order.read.id!;
    const { read, found } = await readAndSearchEach(
      this.fhir,
      [`Task/${taskId}`, `MedicationRequest/${orderId}`],
      [infusionsSearch(plan)],
    );
    const [task, order] = read as [Task | undefined, MedicationRequest | undefined];
    const infusion = infusionThatGave(crossed.administration, matchesOf<Procedure>(found.infusions));
    if (!task || !order || !infusion) return false;
    const answered = answeredByInfusionGiven({ task, order, infusion, now, zone: this.config.clinicTimeZone });
    if (!answered) return false;
    // If-Match: a change meanwhile fails the job, which judges again.
    await this.fhir.transaction([
      updateEntry(answered.task, task.meta!.versionId),
      updateEntry(answered.order, order.meta!.versionId),
    ]);
    return true;
  }

  private async write(crossed: CrossedClosing, now: Date): Promise<void> {
    const { task, order, administration, answeredBy } = crossed;
    const provenance = changeProvenance({
      targets: [{ reference: `Task/${task.read.id}` }, { reference: `MedicationRequest/${order.read.id}` }],
      revisionOf: { reference: `Task/${task.read.id}/_history/${task.read.meta!.versionId}` },
      who: THIS_SERVICE,
      activity: 'undo a closing that crossed the pump',
      now,
      reason:
        (crossed.chartedLate
          ? `The pump's record, charted after the service's ${stateWord(task.read)}, says it began this session's order before it: `
          : `The pump recorded beginning this session's order before the service's ${stateWord(task.read)} landed: `) +
        (answeredBy ? `given during the ${answeredBy.display}` : 'left to its infusion'),
    });
    provenance.entity = [
      ...(provenance.entity ?? []),
      { role: 'source', what: { reference: `MedicationAdministration/${administration.id}` } },
    ];
    // A change meanwhile refuses the write (If-Match): the job fails and runs again on what is there then.
    await this.fhir.transaction([
      updateEntry(task.written, task.read.meta!.versionId),
      updateEntry(order.written, order.read.meta!.versionId),
      { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
    ]);
  }
}

/** An instance history's versions, newest first; none when it was deleted last (its newest entry carries no resource). */
function versionsIn(history: Bundle | undefined): Resource[] {
  const entries = history?.entry ?? [];
  if (entries.length && !entries[0].resource) return [];
  return entries
    .map((e) => e.resource)
    .filter((r): r is Resource => Boolean(r))
    .sort((a, b) => (b.meta?.lastUpdated ?? '').localeCompare(a.meta?.lastUpdated ?? ''));
}

function stateWord(task: Task): string {
  return stateOf(task) === 'withdrawn' ? 'withdrawal' : 'superseding';
}

/** A plan's completed infusions (the one the pump's record is part of answers the session). */
function infusionsSearch(plan: string): NamedSearch {
  return {
    name: 'infusions',
    resourceType: 'Procedure',
    params: { 'based-on': plan, status: 'completed', _count: 200 },
    everyMatch: true,
  };
}

/**
 * The patient's completed infusions during the pump's records of the order (by time: R4 has no search by `partOf`),
 * for one naming no plan that a record charted late is part of. Undefined: no record has a time.
 */
function unlinkedInfusionsSearch(
  order: MedicationRequest,
  records: MedicationAdministration[],
): NamedSearch | undefined {
  const windows = records
    .map((a) => administrationWindow(a.effectivePeriod ?? { start: a.effectiveDateTime, end: a.effectiveDateTime }))
    .filter((w): w is { from: string; to: string } => Boolean(w));
  const subject = order.subject?.reference;
  if (!windows.length || !subject) return undefined;
  const from = windows.map((w) => w.from).sort()[0];
  const to = windows
    .map((w) => w.to)
    .sort()
    .at(-1)!;
  return {
    name: 'unlinked',
    resourceType: 'Procedure',
    params: { subject, status: 'completed', date: [`ge${from}`, `le${to}`], _count: 50 },
  };
}

/** The session (Task) an order is of, as the search found it; `replacement`: through an order it replaces. */
interface OrderSession {
  taskId: string;
  plan?: string;
  replacement?: boolean;
}
