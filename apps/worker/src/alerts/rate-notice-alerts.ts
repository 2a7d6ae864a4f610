import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Bundle, MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { batchResult, FhirClient, getEntry, includedOf, matchesOf } from '@kc/fhir';
import { rateNoticeNow, type RateNoticeNow } from '@kc/followups';
import {
  RATE_NOTICE_ALERT_WITHIN_MS,
  rateNoticeAlertKey,
  rateNoticeAlertMessage,
  rateNoticeAlertRecord,
  rateNoticeDealtWithKey,
  rateNoticeDealtWithMessage,
  type RateNoticeAlert,
} from '@kc/protocols';
import { ORDER_KEY_SYSTEM } from '@kc/task-states';
import { AlertDelivery } from './alert-delivery';

/**
 * Tells the clinic of approved orders that a late pump record put at odds with their protocol (their rate notice,
 * session 39; told since session 40), and that such an alert is dealt with once the notice stops applying: by the
 * channels of the clinic's other alerts (AlertDelivery), once per order, rate and channel.
 */
@Injectable()
export class RateNoticeAlerts {
  private readonly logger = new Logger(RateNoticeAlerts.name);

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly delivery: AlertDelivery,
  ) {}

  /**
   * Tells the clinic of approved sessions' orders whose rate differs from what their protocol proposes since the pump's
   * late record (their rate notice; LateAdministrations), once per order, rate and channel. One search of the records
   * first. A channel that fails is thrown once the others are tried, so that the job which found the notice runs again
   * (and the sweep, for a day: lookAgainAtRateNotices). How many orders the clinic was told of, by any channel.
   */
  async tell(alerts: RateNoticeAlert[], now = new Date()): Promise<number> {
    const channels = this.delivery.channels();
    if (!channels.length || !alerts.length) return 0;
    const keys = alerts.flatMap((a) => channels.map((c) => rateNoticeAlertKey(a, c.channel)));
    const told = await this.delivery.recordsOf(keys);
    const worklistUrl = this.delivery.worklistUrl();
    let sent = 0;
    let failed: Error | undefined;
    for (const alert of alerts) {
      const outcome = await this.delivery.deliverUntold(told, {
        kind: 'rate-since-approval',
        key: (channel) => rateNoticeAlertKey(alert, channel),
        message: (channel) => rateNoticeAlertMessage(alert, { worklistUrl, channel, zone: this.config.clinicTimeZone }),
        record: (message, how) => rateNoticeAlertRecord(alert, message, how),
        about: { order: alert.order.id },
        retriedBy: 'its job or the sweep',
        now,
      });
      if (outcome.sent) sent++;
      failed ??= outcome.failed;
    }
    if (failed) throw failed;
    return sent;
  }

  /**
   * The sweep's look again at rate notices, for a day after their orders last changed (RATE_NOTICE_ALERT_WITHIN_MS):
   * an alert its job could not send (a mail server down longer than the job's retries), for an open order whose notice
   * stands and which the pump has not begun, told as the job would have (tell keeps it to once); and, for an
   * order whose notice no longer applies (its dose changed, the session given, the order closed), a notice to whoever
   * was told that it is dealt with. One search of the orders written here changed since, with the pump's records of
   * them; then one batch of the Tasks of those whose notice stands, and one search of the alerts' records of those
   * whose notice ended. A failure is logged, and the next sweep looks again. Only when the clinic is told anything.
   * How many orders the clinic was told of (the notices that alerts are dealt with aside, as for issues).
   */
  async lookAgainAtRateNotices(now = new Date()): Promise<number> {
    if (!this.delivery.channels().length) return 0;
    const since = new Date(now.getTime() - RATE_NOTICE_ALERT_WITHIN_MS).toISOString();
    try {
      const pages = this.fhir.searchPages<MedicationRequest>('MedicationRequest', {
        identifier: `${ORDER_KEY_SYSTEM}|`,
        _lastUpdated: `ge${since}`,
        _revinclude: 'MedicationAdministration:request',
        _count: 200,
      });
      const judged: RateNoticeNow[] = [];
      for await (const page of pages) {
        const given = includedOf<MedicationAdministration>(page, 'MedicationAdministration');
        judged.push(...matchesOf<MedicationRequest>(page).flatMap((order) => rateNoticeNow(order, given) ?? []));
      }
      const { standing, ended } = split(judged);
      const told = await this.tellStanding(standing, now);
      await this.noticeEnded(ended, now);
      return told;
    } catch (err) {
      this.logger.warn({ msg: 'rate notices not looked at again; the next sweep tries', error: String(err) });
      return 0;
    }
  }

  /**
   * An order heard of (closed, or its session begun at the pump: OrderChanged, AdministrationRecorded), as searched
   * there with the pump's records of it: when its rate notice no longer applies, whoever was told of it is told now
   * that it is dealt with, not at the sweep up to 15 minutes later. Nothing is asked of the FHIR server for an order
   * with no notice. A failure is logged and left to the sweep (the job's own work is done).
   */
  async heardOfOrder(found: Bundle, now = new Date()): Promise<void> {
    if (!this.delivery.channels().length) return;
    const given = includedOf<MedicationAdministration>(found, 'MedicationAdministration');
    const { ended } = split(matchesOf<MedicationRequest>(found).flatMap((order) => rateNoticeNow(order, given) ?? []));
    try {
      await this.noticeEnded(ended, now);
    } catch (err) {
      this.logger.warn({ msg: 'rate notice not told dealt with; the sweep tries', error: String(err) });
    }
  }

  /** The alerts of notices that stand, with their sessions' Tasks (when they are due): one batch read. */
  private async tellStanding(standing: StandingNotice[], now: Date): Promise<number> {
    if (!standing.length) return 0;
    const refs = standing.map((s) => `Task/${s.task}`);
    const read = await this.fhir.batch(refs.map((r) => getEntry(r)));
    const tasks = (read.entry ?? []).map((e, i) => batchResult<Task>(e, refs[i]));
    return this.tell(
      standing.map((s, i) => ({ order: s.order, ...s.standing, task: tasks[i] })),
      now,
    );
  }

  /** Of rate notices that no longer apply, the notice that each is dealt with where its alert went (AlertDelivery). */
  private async noticeEnded(ended: EndedNotice[], now: Date): Promise<void> {
    if (!ended.length) return;
    const channels = this.delivery.channels();
    const alerts = ended.map((e) => ({ order: e.order, ...e.ended }));
    const keys = alerts.flatMap((e) =>
      channels.flatMap((c) => [rateNoticeAlertKey(e, c.channel), rateNoticeDealtWithKey(e, c.channel)]),
    );
    const told = await this.delivery.recordsOf(keys);
    const worklistUrl = this.delivery.worklistUrl();
    for (const e of alerts)
      await this.delivery.noticeDealtWith(told, {
        alertKey: (channel) => rateNoticeAlertKey(e, channel),
        key: (channel) => rateNoticeDealtWithKey(e, channel),
        message: (channel) => rateNoticeDealtWithMessage(e, e.ending, { worklistUrl, channel }),
        record: (message, sent) => rateNoticeAlertRecord(e, message, sent),
        about: { order: e.order.id },
        now,
      });
  }
}

type StandingNotice = Extract<RateNoticeNow, { standing: unknown }>;
type EndedNotice = Extract<RateNoticeNow, { ended: unknown }>;

function split(judged: RateNoticeNow[]): { standing: StandingNotice[]; ended: EndedNotice[] } {
  return {
    standing: judged.filter((j): j is StandingNotice => 'standing' in j),
    ended: judged.filter((j): j is EndedNotice => 'ended' in j),
  };
}
