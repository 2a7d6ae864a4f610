import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CarePlan, CommunicationRequest, DetectedIssue, Patient, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, FhirVersionConflictError, matchesOf, readAndSearchEach } from '@kc/fhir';
import {
  aboutTask,
  carePlanReferenceOf,
  deliveryDecision,
  reminderAsSent,
  reminderRuleOf,
  reminderRulesForTask,
  revokedReminder,
  shortNotice,
  type DeliveryDecision,
} from '@kc/followups';
import { PlanDefinitions } from '@kc/nest-core';
import { contraindicationState, hasContraindicationChecks, protocolActionOf, type ResolvedPlan } from '@kc/protocols';
import { ReminderQueue } from '@kc/queue';
import { contraindicationName } from '@kc/task-states';
import { FhirCommunicationRecord } from './fhir-communication-record';
import { REMINDER_SENDERS, type ReminderSender } from './reminder-sender';
import { ReminderSendMarks } from './reminder-send-marks';

export type ReminderOutcome =
  /** why: set when it went out with less notice than its instruction needs. */
  | { status: 'sent'; channels: string[]; why?: string }
  | { status: Exclude<DeliveryDecision['action'], 'send'> | 'already-done'; why?: string };

/**
 * Delivers one reminder when its delayed job fires. Everything is decided from the FHIR server now: the request
 * must still be active and due at the time the job was queued for, about a Task that is still approved and open.
 * Sent on every configured channel (email), then recorded on the FHIR server (FhirCommunicationRecord).
 */
@Injectable()
export class ReminderDelivery {
  private readonly logger = new Logger(ReminderDelivery.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly queue: ReminderQueue,
    @Inject(REMINDER_SENDERS) private readonly senders: ReminderSender[],
    private readonly record: FhirCommunicationRecord,
    private readonly marks: ReminderSendMarks,
    private readonly protocols: PlanDefinitions,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async deliver(requestId: string, plannedAt: string): Promise<ReminderOutcome> {
    const request = await this.fhir.readIfExists<CommunicationRequest>('CommunicationRequest', requestId);
    if (!request?.id) return { status: 'skip', why: 'request not found' };
    const { task, carePlan, patient, issues } = await this.context(request);
    // The catalog's protocol, or an EHR's read from the FHIR server (kept 30 s).
    const protocol = carePlan && (await this.protocols.ofCarePlan(carePlan));
    const contraindications = gating(task, protocol, issues);
    const now = new Date();
    const decision = deliveryDecision({ request, plannedAt, task, carePlan, contraindications, patient, now });
    switch (decision.action) {
      case 'skip':
        return { status: 'skip', why: decision.why };
      case 'reschedule':
        await this.queue.schedule(request.id, decision.sendAt);
        return { status: 'reschedule', why: `moved to ${decision.sendAt}` };
      case 'revoke':
        return this.revoke(request, decision.why);
      case 'send': {
        const rule = task && reminderRuleOf(request, reminderRulesForTask(task, protocol));
        const late = shortNotice({ rule, task, now, zone: this.config.clinicTimeZone });
        const asSent = reminderAsSent({ ...request, id: request.id }, task, this.config.clinicTimeZone);
        return this.send(asSent, patient, late);
      }
    }
  }

  /** `late`: why this reminder gives less notice than its instruction needs (recorded for the clinic). */
  private async send(
    request: CommunicationRequest & { id: string },
    patient: Patient | undefined,
    late: string | undefined,
  ): Promise<ReminderOutcome> {
    const channels: string[] = [];
    // Outside channels first: a crash before the record below re-sends (at least once) rather than never sending. A
    // channel it went out on already, for this time, is not sent again (a record the FHIR server refused, retried).
    const time = request.occurrenceDateTime;
    for (const sender of this.senders) {
      if (await this.marks.sentBefore(request.id, time, sender.channel)) channels.push(sender.channel);
      else if (await sender.send({ request, patient })) {
        channels.push(sender.channel);
        await this.marks.sent(request.id, time, sender.channel);
      }
    }
    if ((await this.record.record(request, channels, late)) === 'already-done')
      return { status: 'already-done', why: 'request changed meanwhile' };
    this.logger.log({
      msg: 'reminder sent',
      request: `CommunicationRequest/${request.id}`,
      channels,
      shortNotice: !!late,
    });
    return { status: 'sent', channels, ...(late ? { why: late } : {}) };
  }

  private async revoke(request: CommunicationRequest, why: string): Promise<ReminderOutcome> {
    try {
      await this.fhir.update(revokedReminder(request, why), { ifMatch: request.meta!.versionId! });
    } catch (err) {
      if (err instanceof FhirVersionConflictError) return { status: 'already-done', why: 'request changed meanwhile' };
      throw err;
    }
    this.logger.log({ msg: 'reminder revoked', request: `CommunicationRequest/${request.id}` });
    return { status: 'revoke', why };
  }

  /**
   * One batch: the Task the reminder is about, the CarePlan it is based on and the contraindications implicating it,
   * and the patient (contact details for a channel; since session 44 also whether they are recorded as deceased).
   */
  private async context(
    request: CommunicationRequest,
  ): Promise<{ task?: Task; carePlan?: CarePlan; patient?: Patient; issues: DetectedIssue[] }> {
    const taskRef = aboutTask(request);
    const carePlanRef = carePlanReferenceOf(request);
    const patientRef = request.recipient?.[0]?.reference;
    const refs = [taskRef, carePlanRef, patientRef].filter((r): r is string => Boolean(r));
    const searches = carePlanRef
      ? [{ name: 'issues', resourceType: 'DetectedIssue', params: { implicated: carePlanRef }, everyMatch: true }]
      : [];
    const { read, found: searched } = await readAndSearchEach(this.fhir, refs, searches);
    const found = new Map(refs.map((ref, i) => [ref, read[i]]));
    return {
      task: taskRef ? (found.get(taskRef) as Task | undefined) : undefined,
      carePlan: carePlanRef ? (found.get(carePlanRef) as CarePlan | undefined) : undefined,
      patient: patientRef ? (found.get(patientRef) as Patient | undefined) : undefined,
      issues: searched.issues ? matchesOf<DetectedIssue>(searched.issues) : [],
    };
  }
}

/**
 * The plan's unresolved contraindications, named, when a contraindication check of its protocol gates the Task the
 * reminder is about (a session's "no driving afterwards", not the post-infusion check's). A protocol not found gates
 * every Task: nothing says which its checks spare.
 */
function gating(task: Task | undefined, protocol: ResolvedPlan | undefined, issues: DetectedIssue[]): string[] {
  const unresolved = issues.filter((i) => contraindicationState(i) === 'unresolved');
  const actionId = task && protocolActionOf(task);
  if (!unresolved.length || !actionId) return [];
  if (protocol && !hasContraindicationChecks(protocol.plan, actionId, protocol.definitions)) return [];
  return unresolved.map(contraindicationName);
}
