import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type {
  Communication,
  DetectedIssue,
  MedicationAdministration,
  MedicationRequest,
  Task,
} from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { batchResult, FhirClient, getEntry, includedOf, matchesOf } from '@kc/fhir';
import { rateNotedOn, standingNoticeRates, type NoticeRates } from '@kc/followups';
import { isOpenOrder, ORDER_KEY_SYSTEM, orderTaskIdOf, sessionBegunBy } from '@kc/task-states';
import {
  CLINIC_ALERT_KEY_SYSTEM,
  type ClinicAlertChannel,
  type ClinicAlertMessage,
  clinicAlertKey,
  clinicAlertKindOf,
  clinicAlertMessage,
  clinicAlertRecord,
  heldTasksOf,
  mayNeedResolvedNotice,
  needsClinicAlert,
  RATE_NOTICE_ALERT_WITHIN_MS,
  rateNoticeAlertKey,
  rateNoticeAlertMessage,
  rateNoticeAlertRecord,
  rateNoticeDealtWithKey,
  rateNoticeDealtWithMessage,
  rateNoticeEnding,
  type RateNoticeAlert,
  RESOLVED_NOTICE_WITHIN_MS,
  resolvedNoticeKey,
  resolvedNoticeMessage,
  wasAlertable,
} from '@kc/protocols';
import { AlertSendClaims } from './alert-send-claims';
import { CLINIC_ALERT_SENDER, type ClinicAlertSender } from './clinic-alert-sender';
import { ClinicAlertMetrics, type AlertKind } from './clinic-alert.metrics';

/** How many resolved issues one look at their notices takes (noticeLatelyResolved). */
const NOTICES_PER_LOOK = 25;

/**
 * Tells the clinic of each effect a patient reported that waits for a clinician's review, and of each contraindication
 * found after approval that holds approved orders (clinicAlertKindOf), once per channel: by email (the email first,
 * then its record, a Communication keyed by the issue) and in the EHR's inbox (a Communication to
 * CLINIC_ALERT_RECIPIENTS, which is the message). Each channel on its own: a mail server down does not hold back the
 * inbox. One sender at a time per alert (AlertSendClaims, in Redis). At least once: a worker dying between an email and
 * its record sends it again at the next look (the plan's hold job, or the 15-minute sweep), which is what finds one not
 * told yet.
 */
@Injectable()
export class ClinicAlerts {
  private readonly logger = new Logger(ClinicAlerts.name);

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: ClinicAlertMetrics,
    private readonly claims: AlertSendClaims,
    @Optional() @Inject(CLINIC_ALERT_SENDER) private readonly sender?: ClinicAlertSender | null,
  ) {}

  /** Where the clinic reviews what it is told of (the page), when the service knows its public address. */
  private worklistUrl(): string | undefined {
    return this.config.publicUrl ? `${this.config.publicUrl}/ui` : undefined;
  }

  /** The ways the clinic is told, with whom each reaches. */
  private channels(): { channel: ClinicAlertChannel; to: string[] }[] {
    return [
      ...(this.sender ? [{ channel: 'email' as const, to: this.sender.to }] : []),
      ...(this.config.clinicAlertRecipients.length
        ? [{ channel: 'inbox' as const, to: this.config.clinicAlertRecipients }]
        : []),
    ];
  }

  /**
   * The issues among these that the clinic has not been told of, told now; and those resolved lately whose alert went,
   * followed by a notice that they are dealt with (noticeResolved). How many alerts were sent (by any channel).
   */
  async tell(issues: DetectedIssue[], now = new Date()): Promise<number> {
    const channels = this.channels();
    if (!channels.length) return 0;
    const waiting = [...new Map(issues.filter(needsClinicAlert).map((i) => [i.id, i])).values()];
    const resolved = [...new Map(issues.filter((i) => mayNeedResolvedNotice(i, now)).map((i) => [i.id, i])).values()];
    if (!waiting.length && !resolved.length) return 0;
    // One search: the alerts' records (of those waiting, and of those resolved) and the resolved ones' notices.
    const keys = [
      ...[...waiting, ...resolved].flatMap((i) => channels.map((c) => clinicAlertKey(i, c.channel))),
      ...resolved.flatMap((i) => channels.map((c) => resolvedNoticeKey(i, c.channel))),
    ];
    const told = await this.fhir.searchAll<Communication>('Communication', {
      identifier: keys.map((key) => `${CLINIC_ALERT_KEY_SYSTEM}|${key}`).join(','),
    });
    const toldBy = new Map(
      told.flatMap((c) => (c.identifier ?? []).flatMap((i) => (i.value ? [[i.value, c] as const] : []))),
    );
    await this.noticeResolved(resolved, channels, toldBy, now);
    const worklistUrl = this.worklistUrl();
    let sent = 0;
    for (const issue of waiting) {
      const untold = channels.filter((c) => !toldBy.has(clinicAlertKey(issue, c.channel)));
      if (!untold.length) continue;
      const kind = clinicAlertKindOf(issue)!;
      const heldDueFrom = kind === 'orders-held' ? await this.heldDueFrom(issue) : undefined;
      let any = false;
      for (const { channel, to } of untold) {
        const message = clinicAlertMessage(issue, {
          worklistUrl,
          heldDueFrom,
          channel,
          zone: this.config.clinicTimeZone,
        });
        // The mail server (or the FHIR server) down must not stop the holds and sweeps this runs in, nor the other
        // channel: nothing is recorded as told by this one, so the next look (the sweep, every 15 minutes) tries again.
        const outcome = await this.deliver({
          kind,
          channel,
          key: clinicAlertKey(issue, channel),
          message,
          record: clinicAlertRecord(issue, message, { channel, to, now }),
          about: { issue: issue.id },
          retriedBy: 'the sweep',
        });
        if (outcome === 'sent') any = true;
      }
      if (any) sent++;
    }
    return sent;
  }

  /**
   * Tells the clinic of approved sessions' orders whose rate differs from what their protocol proposes since the pump's
   * late record (their rate notice; LateAdministrations), once per order, rate and channel. One search of the records
   * first. A channel that fails is thrown once the others are tried, so that the job which found the notice runs again
   * (and the sweep, for a day: tellRateNoticesLately). How many orders the clinic was told of, by any channel.
   */
  async tellRateNotices(alerts: RateNoticeAlert[], now = new Date()): Promise<number> {
    const channels = this.channels();
    if (!channels.length || !alerts.length) return 0;
    const keys = alerts.flatMap((a) => channels.map((c) => rateNoticeAlertKey(a, c.channel)));
    const told = await this.fhir.searchAll<Communication>('Communication', {
      identifier: keys.map((key) => `${CLINIC_ALERT_KEY_SYSTEM}|${key}`).join(','),
    });
    const toldKeys = new Set(told.flatMap((c) => (c.identifier ?? []).flatMap((i) => i.value ?? [])));
    const worklistUrl = this.worklistUrl();
    let sent = 0;
    let failed: Error | undefined;
    for (const alert of alerts) {
      let any = false;
      for (const { channel, to } of channels) {
        const key = rateNoticeAlertKey(alert, channel);
        if (toldKeys.has(key)) continue;
        const message = rateNoticeAlertMessage(alert, { worklistUrl, channel, zone: this.config.clinicTimeZone });
        const outcome = await this.deliver({
          kind: 'rate-since-approval',
          channel,
          key,
          message,
          record: rateNoticeAlertRecord(alert, message, { channel, to, now }),
          about: { order: alert.order.id },
          retriedBy: 'its job or the sweep',
        });
        if (outcome === 'sent') any = true;
        else if (outcome instanceof Error) failed ??= outcome;
      }
      if (any) sent++;
    }
    if (failed) throw failed;
    return sent;
  }

  /**
   * The sweep's look again at rate notices, for a day after their orders last changed (RATE_NOTICE_ALERT_WITHIN_MS):
   * an alert its job could not send (a mail server down longer than the job's retries), for an open order whose notice
   * stands and which the pump has not begun, told as the job would have (tellRateNotices keeps it to once); and, for an
   * order whose notice no longer applies (its dose changed, the session given, the order closed), a notice to whoever
   * was told that it is dealt with. One search of the orders written here changed since, with the pump's records of
   * them; then one batch of the Tasks of those whose notice stands, and one search of the alerts' records of those
   * whose notice ended. A failure is logged, and the next sweep looks again. Only when the clinic is told anything.
   * How many orders the clinic was told of (the notices that alerts are dealt with aside, as for issues).
   */
  async lookAgainAtRateNotices(now = new Date()): Promise<number> {
    if (!this.channels().length) return 0;
    const since = new Date(now.getTime() - RATE_NOTICE_ALERT_WITHIN_MS).toISOString();
    try {
      const pages = this.fhir.searchPages<MedicationRequest>('MedicationRequest', {
        identifier: `${ORDER_KEY_SYSTEM}|`,
        _lastUpdated: `ge${since}`,
        _revinclude: 'MedicationAdministration:request',
        _count: 200,
      });
      const standing: { order: MedicationRequest; task: string; rates: NoticeRates }[] = [];
      const ended: { order: MedicationRequest; proposed: number; unit?: string; ending: string }[] = [];
      for await (const page of pages) {
        const given = includedOf<MedicationAdministration>(page, 'MedicationAdministration');
        for (const order of matchesOf<MedicationRequest>(page)) {
          const noted = rateNotedOn(order);
          const task = orderTaskIdOf(order);
          if (!noted || !task) continue;
          const begun = Boolean(
            sessionBegunBy(given.filter((a) => a.request?.reference === `MedicationRequest/${order.id}`)),
          );
          const rates = isOpenOrder(order) && !begun ? standingNoticeRates(order) : undefined;
          const ending = rateNoticeEnding(order, { proposed: noted.value }, { standing: Boolean(rates), begun });
          if (rates) standing.push({ order, task, rates });
          else if (ending) ended.push({ order, proposed: noted.value, unit: noted.unit, ending });
        }
      }
      const told = await this.tellStanding(standing, now);
      await this.noticeEnded(ended, now);
      return told;
    } catch (err) {
      this.logger.warn({ msg: 'rate notices not looked at again; the next sweep tries', error: String(err) });
      return 0;
    }
  }

  /** The alerts of notices that stand, with their sessions' Tasks (when they are due): one batch read. */
  private async tellStanding(
    standing: { order: MedicationRequest; task: string; rates: NoticeRates }[],
    now: Date,
  ): Promise<number> {
    if (!standing.length) return 0;
    const refs = standing.map((s) => `Task/${s.task}`);
    const read = await this.fhir.batch(refs.map((r) => getEntry(r)));
    const tasks = (read.entry ?? []).map((e, i) => batchResult<Task>(e, refs[i]));
    return this.tellRateNotices(
      standing.map((s, i) => ({ order: s.order, ...s.rates, task: tasks[i] })),
      now,
    );
  }

  /**
   * Of rate notices that no longer apply, those whose alert went by a channel and whose notice has not: the notice,
   * that way, as an answer to the alert (`inResponseTo`). One search of the records.
   */
  private async noticeEnded(
    ended: { order: MedicationRequest; proposed: number; unit?: string; ending: string }[],
    now: Date,
  ): Promise<void> {
    const channels = this.channels();
    if (!ended.length) return;
    const keys = ended.flatMap((e) =>
      channels.flatMap((c) => [rateNoticeAlertKey(e, c.channel), rateNoticeDealtWithKey(e, c.channel)]),
    );
    const records = await this.fhir.searchAll<Communication>('Communication', {
      identifier: keys.map((key) => `${CLINIC_ALERT_KEY_SYSTEM}|${key}`).join(','),
    });
    const told = new Map(
      records.flatMap((c) => (c.identifier ?? []).flatMap((i) => (i.value ? [[i.value, c] as const] : []))),
    );
    const worklistUrl = this.worklistUrl();
    for (const e of ended)
      for (const { channel, to } of channels) {
        const alert = told.get(rateNoticeAlertKey(e, channel));
        const key = rateNoticeDealtWithKey(e, channel);
        if (!alert || told.has(key)) continue;
        const message = rateNoticeDealtWithMessage(e, e.ending, { worklistUrl, channel });
        const answered = { key, alert: alert.id ? `Communication/${alert.id}` : undefined };
        await this.deliver({
          kind: 'resolved',
          channel,
          key,
          message,
          record: rateNoticeAlertRecord(e, message, { channel, to, now, resolved: answered }),
          about: { order: e.order.id },
          retriedBy: 'the sweep',
        });
      }
  }

  /**
   * One message by one channel: emailed (for `email`) and recorded, once (sendOnce), counted and logged by ids alone
   * (no patient data). `sent`; `left` to another sender, or recorded since the look; or why it was not sent (nothing
   * is recorded then, so `retriedBy` sends it again).
   */
  private async deliver(d: {
    kind: AlertKind;
    channel: ClinicAlertChannel;
    key: string;
    message: ClinicAlertMessage;
    record: Communication;
    about: Record<string, string | undefined>;
    retriedBy: string;
  }): Promise<'sent' | 'left' | Error> {
    const { kind, channel, key } = d;
    try {
      const sent = await this.sendOnce(key, async () => {
        if (channel === 'email') await this.sender!.send(d.message);
        await this.fhir.create(d.record, { ifNoneExist: { identifier: `${CLINIC_ALERT_KEY_SYSTEM}|${key}` } });
      });
      if (!sent) return 'left';
    } catch (err) {
      this.metrics.record(kind, 'not-sent', channel);
      this.logger.warn({
        msg: `clinic not told; ${d.retriedBy} tries again`,
        kind,
        channel,
        ...d.about,
        error: String(err),
      });
      return err instanceof Error ? err : new Error(String(err));
    }
    this.metrics.record(kind, 'sent', channel);
    this.logger.log({ msg: 'clinic told', kind, channel, ...d.about });
    return 'sent';
  }

  /**
   * Sends an alert or a notice and records it, unless another sender has it in hand (the sweep and a job looking at
   * once both found it untold, and both emailed it) or it was recorded since this look read the records. False when
   * left to the other; a failure is thrown, and the next look tries again.
   */
  private async sendOnce(key: string, sendAndRecord: () => Promise<void>): Promise<boolean> {
    const release = await this.claims.claim(key);
    if (!release) return false;
    try {
      if (await this.recorded(key)) return false;
      await sendAndRecord();
      return true;
    } finally {
      await release();
    }
  }

  /** An alert's record is on the FHIR server (read again once claimed: the look before may be out of date). */
  private async recorded(key: string): Promise<boolean> {
    const found = await this.fhir.search<Communication>('Communication', {
      identifier: `${CLINIC_ALERT_KEY_SYSTEM}|${key}`,
      _count: 1,
    });
    return (found.entry?.length ?? 0) > 0;
  }

  /**
   * The sweep's look again at the notices that alerts are dealt with: every alertable issue resolved lately
   * (RESOLVED_NOTICE_WITHIN_MS), whatever its plan still holds, so a notice whose job was lost goes now. One search of
   * the DetectedIssues changed since, and only when the clinic is told anything.
   */
  async noticeLatelyResolved(now = new Date()): Promise<void> {
    if (!this.channels().length) return;
    const changed = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      _lastUpdated: `ge${new Date(now.getTime() - RESOLVED_NOTICE_WITHIN_MS).toISOString()}`,
      _sort: '_lastUpdated',
      _count: 100,
    });
    const resolved = changed.filter((i) => wasAlertable(i) && mayNeedResolvedNotice(i, now));
    // A few at a time: each look searches the records of their alerts and notices by identifier, in one URL.
    for (let i = 0; i < resolved.length; i += NOTICES_PER_LOOK)
      await this.tell(resolved.slice(i, i + NOTICES_PER_LOOK), now);
  }

  /**
   * Of issues resolved lately, those whose alert went by a channel and whose notice has not: the notice, that way, in
   * the inbox as an answer to the alert (`inResponseTo`). A notice not sent is tried again by the next look (the
   * 15-minute sweep) for a day.
   */
  private async noticeResolved(
    resolved: (DetectedIssue & { id: string })[],
    channels: { channel: ClinicAlertChannel; to: string[] }[],
    told: Map<string, Communication>,
    now: Date,
  ): Promise<void> {
    const worklistUrl = this.worklistUrl();
    for (const issue of resolved)
      for (const { channel, to } of channels) {
        const alert = told.get(clinicAlertKey(issue, channel));
        const key = resolvedNoticeKey(issue, channel);
        if (!alert || told.has(key)) continue;
        const message = resolvedNoticeMessage(issue, { channel, worklistUrl, zone: this.config.clinicTimeZone });
        const answered = { key, alert: alert.id ? `Communication/${alert.id}` : undefined };
        await this.deliver({
          kind: 'resolved',
          channel,
          key,
          message,
          record: clinicAlertRecord(issue, message, { channel, to, now, resolved: answered }),
          about: { issue: issue.id },
          retriedBy: 'the sweep',
        });
      }
  }

  /**
   * When the first session an issue holds is due (its Tasks' `restriction.period.start`): what tells the clinic how
   * soon to look. One batch read, for an alert about to be sent only; a read that fails leaves the date out.
   */
  private async heldDueFrom(issue: DetectedIssue): Promise<string | undefined> {
    const refs = heldTasksOf(issue);
    if (!refs.length) return undefined;
    try {
      const read = await this.fhir.batch(refs.map((r) => getEntry(r)));
      const starts = (read.entry ?? [])
        .flatMap((e, i) => batchResult<Task>(e, refs[i]) ?? [])
        .flatMap((t) => t.restriction?.period?.start ?? []);
      return starts.sort((a, b) => Date.parse(a) - Date.parse(b))[0];
    } catch (err) {
      // The date helps, the alert matters: it goes without one.
      this.logger.warn({ msg: 'held sessions not read for the clinic alert', issue: issue.id, error: String(err) });
      return undefined;
    }
  }
}
