import { Injectable, Logger } from '@nestjs/common';
import type {
  BundleEntry,
  CarePlan,
  MedicationAdministration,
  MedicationRequest,
  Procedure,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import {
  FhirClient,
  isStaleWrite,
  includedOf,
  matchesOf,
  readAndSearchEach,
  updateEntry,
  type NamedSearch,
} from '@kc/fhir';
import {
  administrationsSearchParams,
  carePlanReferenceOf,
  infusionAsGiven,
  infusionDefinitionFor,
  isOfInfusion,
  rateNoticeSinceApproval,
  reproposedAtRateGiven,
  standingNoticeRates,
  type RateNotice,
  type RateReproposal,
} from '@kc/followups';
import { PatientDataLoader, PlanDefinitions } from '@kc/nest-core';
import { activityDefinitionIn, rateTitrationOf, type RateNoticeAlert, type ResolvedPlan } from '@kc/protocols';
import {
  changeProvenance,
  isApproved,
  orderKeySearch,
  orderTaskIdOf,
  sessionBegunBy,
  THIS_SERVICE,
  TO_BE_DONE,
} from '@kc/task-states';
import { RateNoticeAlerts } from '../alerts/rate-notice-alerts';
import { administrationRecords } from './follow-up-reads';

/** A session proposed after an infusion (awaiting approval, or approved), with what it is judged by. */
interface ProposedSession {
  task: Task;
  proposal: MedicationRequest;
  carePlan: CarePlan;
  /** The protocol the plan was applied with (the catalog's, or an EHR's on the FHIR server). */
  protocol: ResolvedPlan;
  procedureId: string;
}

/**
 * An administration recorded (notified, or found by the poll) after its infusion's follow-ups were written: the
 * sessions proposed from that infusion and still awaiting approval are proposed again at the rate it records
 * (reproposedAtRateGiven), each with its Task's version bumped (an approval of the old proposal, seen before, is then
 * refused as stale) and a Provenance naming the service, in one If-Match transaction. Those approved already keep
 * their order (the clinician's), which gets a note when the rate proposed from the infusion now differs from the rate
 * it gives (rateNoticeSinceApproval; since session 39), with a Provenance; not once the pump has begun it. Since
 * session 40 the clinic is told of each such order (RateNoticeAlerts, by email and in the EHR's inbox, once per rate): a
 * note on an order is read only by who opens it. Recorded before the follow-up event, an administration is read by
 * the event itself, and this finds nothing to change.
 */
@Injectable()
export class LateAdministrations {
  private readonly logger = new Logger(LateAdministrations.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    private readonly patientData: PatientDataLoader,
    private readonly alerts: RateNoticeAlerts,
  ) {}

  async handle(administrationId: string, now = new Date()): Promise<{ reproposed: number }> {
    const administration = await this.fhir.readIfExists<MedicationAdministration>(
      'MedicationAdministration',
      administrationId,
    );
    return this.forAdministration(administration, now);
  }

  /** The administration as read (gone: undefined). */
  async forAdministration(
    administration: MedicationAdministration | undefined,
    now = new Date(),
  ): Promise<{ reproposed: number; noted: number }> {
    const patientId = /^Patient\/([^/]+)$/.exec(administration?.subject?.reference ?? '')?.[1];
    if (!administration || !patientId) return { reproposed: 0, noted: 0 };
    const sessions = await this.proposedSessions(patientId);
    const procedures = await this.infusionsOf(sessions, administration);
    let reproposed = 0;
    let noted = 0;
    const alerts: RateNoticeAlert[] = [];
    for (const [procedureId, procedure] of procedures) {
      const ofIt = sessions.filter((s) => s.procedureId === procedureId);
      const judged = await this.reproposals(ofIt, procedure, patientId, now);
      for (const r of judged.reproposals) if (await this.write(r.session, r.reproposal, now)) reproposed++;
      const notedNow = new Map<string, MedicationRequest>();
      for (const n of judged.notices)
        if (await this.note(n, now)) {
          noted++;
          notedNow.set(n.order.id!, n.noted);
        }
      alerts.push(...rateAlertsOf(judged.ordersToGive, notedNow));
    }
    if (reproposed) this.logger.log({ msg: 'sessions proposed again at the rate given', reproposed });
    if (noted) this.logger.log({ msg: 'approved sessions told of the rate given since', noted });
    await this.alerts.tell(alerts, now);
    return { reproposed, noted };
  }

  /**
   * The patient's sessions proposed after an infusion at a titrated rate, awaiting approval or approved (one
   * search).
   */
  private async proposedSessions(patientId: string): Promise<ProposedSession[]> {
    const pages = this.fhir.searchPages<Task>('Task', {
      patient: `Patient/${patientId}`,
      // Approved ones whatever the EHR made of them since (in progress...); those set to be done unapproved wait.
      status: ['draft', ...TO_BE_DONE].join(','),
      _include: ['Task:focus', 'Task:based-on'],
      _count: 200,
    });
    const tasks: Task[] = [];
    const included = new Map<string, Resource>();
    for await (const page of pages) {
      tasks.push(...matchesOf<Task>(page));
      for (const r of includedOf<Resource>(page)) included.set(`${r.resourceType}/${r.id}`, r);
    }
    const sessions = tasks.map(async (task): Promise<ProposedSession[]> => {
      const proposal = included.get(task.focus?.reference ?? '');
      const carePlan = included.get(carePlanReferenceOf(task) ?? '');
      const procedureId = /^Procedure\/([^/]+)$/.exec(task.reasonReference?.reference ?? '')?.[1];
      if (proposal?.resourceType !== 'MedicationRequest' || carePlan?.resourceType !== 'CarePlan' || !procedureId)
        return [];
      const protocol = await this.protocols.ofCarePlan(carePlan);
      const activity = protocol && activityDefinitionIn(protocol.definitions, proposal.instantiatesCanonical?.[0]);
      if (!protocol || !rateTitrationOf(activity)) return [];
      return [{ task, proposal, carePlan, protocol, procedureId }];
    });
    return (await Promise.all(sessions)).flat();
  }

  /** The infusions those sessions were proposed from that the administration is part of (one batch of reads). */
  private async infusionsOf(
    sessions: ProposedSession[],
    administration: MedicationAdministration,
  ): Promise<Map<string, Procedure>> {
    const ids = [...new Set(sessions.map((s) => s.procedureId))];
    const { read } = await readAndSearchEach(
      this.fhir,
      ids.map((id) => `Procedure/${id}`),
      [],
    );
    const procedures = new Map<string, Procedure>();
    read.forEach((p, i) => {
      const procedure = p as Procedure | undefined;
      if (procedure?.performedPeriod && isOfInfusion(administration, ids[i], procedure.performedPeriod))
        procedures.set(ids[i], procedure);
    });
    return procedures;
  }

  /**
   * One infusion's sessions judged again: its administrations as recorded now, the approved sessions' orders with the
   * pump's records of them, and the patient's data (the weight the dose is computed from), in one batch.
   */
  private async reproposals(
    sessions: ProposedSession[],
    procedure: Procedure,
    patientId: string,
    now: Date,
  ): Promise<{
    reproposals: { session: ProposedSession; reproposal: RateReproposal }[];
    notices: RateNotice[];
    /** The approved sessions' orders the pump has not begun, as read. */
    ordersToGive: { session: ProposedSession; order: MedicationRequest }[];
  }> {
    const { plan, definitions } = sessions[0].protocol;
    const params = administrationsSearchParams(patientId, procedure.performedPeriod!);
    if (!params) return { reproposals: [], notices: [], ordersToGive: [] };
    const approved = sessions.filter((s) => isApproved(s.task));
    const searches: NamedSearch[] = [
      ...(approved.length
        ? [
            {
              name: 'orders',
              resourceType: 'MedicationRequest',
              params: {
                identifier: approved.map((s) => orderKeySearch(s.task.id!)).join(','),
                status: 'active,on-hold',
                _revinclude: 'MedicationAdministration:request',
                _count: 200,
              },
              everyMatch: true,
            },
          ]
        : []),
      { name: 'given', resourceType: 'MedicationAdministration', params, everyMatch: true },
      // The session the infusion gave (completed, `output` the Procedure): its order is what it was given under.
      {
        name: 'done',
        resourceType: 'Task',
        params: { 'based-on': carePlanReferenceOf(sessions[0].task)!, status: 'completed', _count: 200 },
        everyMatch: true,
      },
    ];
    const [{ found }, data] = await Promise.all([
      readAndSearchEach(this.fhir, [], searches),
      this.patientData.load(plan, patientId),
    ]);
    const given = infusionAsGiven({
      procedureId: procedure.id!,
      performed: procedure.performedPeriod!,
      drug: infusionDefinitionFor(plan, definitions).drug,
      records: administrationRecords(found.given),
      approved: await this.orderGiven(matchesOf<Task>(found.done), procedure.id!),
    });
    const activityOf = (s: ProposedSession) => activityDefinitionIn(definitions, s.proposal.instantiatesCanonical?.[0]);
    const reproposals = sessions.flatMap((session) => {
      const reproposal = reproposedAtRateGiven({
        task: session.task,
        proposal: session.proposal,
        activity: activityOf(session),
        given,
        variables: data.data,
      });
      return reproposal ? [{ session, reproposal }] : [];
    });
    // An approved session's order, unless the pump has begun it (the infusion's then, and the next one's rate).
    const orders = matchesOf<MedicationRequest>(found.orders);
    const begun = includedOf<MedicationAdministration>(found.orders, 'MedicationAdministration');
    const ordersToGive = approved.flatMap((session) => {
      const order = orders.find((o) => orderTaskIdOf(o) === session.task.id);
      const ref = `MedicationRequest/${order?.id}`;
      if (!order || sessionBegunBy(begun.filter((a) => a.request?.reference === ref))) return [];
      return [{ session, order }];
    });
    const notices = ordersToGive.flatMap(({ session, order }) => {
      const notice = rateNoticeSinceApproval({
        order,
        activity: activityOf(session),
        given,
        variables: data.data,
        now,
      });
      return notice ? [notice] : [];
    });
    return { reproposals, notices, ordersToGive };
  }

  /** The note on the approved session's order, with its If-Match and a Provenance naming the service. */
  private async note(notice: RateNotice, now: Date): Promise<boolean> {
    const { order, noted, reason } = notice;
    const provenance = changeProvenance({
      targets: [{ reference: `MedicationRequest/${order.id}` }],
      revisionOf: { reference: `MedicationRequest/${order.id}/_history/${order.meta!.versionId}` },
      who: THIS_SERVICE,
      activity: 'note the rate given since approval',
      now,
      reason,
    });
    return this.writeUnlessStale([
      updateEntry(noted, order.meta!.versionId),
      { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
    ]);
  }

  /**
   * The order approved here for the session an infusion gave (the Task it completed), as the follow-up event read it:
   * the rate and weight the next session falls back on when the pump recorded nothing. One search, when there is one.
   */
  private async orderGiven(done: Task[], procedureId: string): Promise<MedicationRequest | undefined> {
    const fulfilled = done.find((t) =>
      (t.output ?? []).some((o) => o.valueReference?.reference === `Procedure/${procedureId}`),
    );
    if (!fulfilled) return undefined;
    const orders = await this.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(fulfilled.id!),
      _sort: '-_lastUpdated',
    });
    return orders.find((o) => o.status !== 'entered-in-error' && o.status !== 'cancelled');
  }

  private async write(session: ProposedSession, r: RateReproposal, now: Date): Promise<boolean> {
    const { task } = session;
    // The Task's version moves with its proposal: a clinician who saw the old rate approves nothing unseen.
    const touched: Task = { ...task, lastModified: now.toISOString() };
    const provenance = changeProvenance({
      targets: [{ reference: `Task/${task.id}` }, { reference: `MedicationRequest/${r.proposal.id}` }],
      revisionOf: { reference: `Task/${task.id}/_history/${task.meta!.versionId}` },
      who: THIS_SERVICE,
      activity: 'propose again at the rate given',
      now,
      reason: r.reason,
    });
    return this.writeUnlessStale([
      updateEntry(r.reproposed, r.proposal.meta!.versionId),
      updateEntry(touched, task.meta!.versionId),
      { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
    ]);
  }

  /**
   * One If-Match transaction. A change made meanwhile (a decision, a dose change, a hold) wins: nothing is written,
   * and the session is judged again when the next administration is recorded.
   */
  private async writeUnlessStale(entries: BundleEntry[]): Promise<boolean> {
    try {
      await this.fhir.transaction(entries);
      return true;
    } catch (err) {
      if (isStaleWrite(err)) return false;
      throw err;
    }
  }
}

/**
 * What the clinic is told of: every order to give whose rate notice stands, noted now (`notedNow`, as written) or
 * before, so that a run whose alert failed, run again, tells it (the alerts' records keep it to once).
 */
function rateAlertsOf(
  ordersToGive: { session: ProposedSession; order: MedicationRequest }[],
  notedNow: Map<string, MedicationRequest>,
): RateNoticeAlert[] {
  return ordersToGive.flatMap(({ session, order }) => {
    const current = notedNow.get(order.id!) ?? order;
    const rates = standingNoticeRates(current);
    return rates ? [{ order: current, ...rates, task: session.task }] : [];
  });
}
