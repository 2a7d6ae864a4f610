import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { Communication } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import {
  CLINIC_ALERT_KEY_SYSTEM,
  type AlertSent,
  type ClinicAlertChannel,
  type ClinicAlertMessage,
} from '@kc/protocols';
import { AlertSendClaims } from './alert-send-claims';
import { CLINIC_ALERT_SENDER, type ClinicAlertSender } from './clinic-alert-sender';
import { ClinicAlertMetrics, type AlertKind } from './clinic-alert.metrics';

/**
 * How the clinic is told, whatever of (ClinicAlerts: issues; RateNoticeAlerts: orders): by email (the email first,
 * then its record, a Communication keyed by what it is about) and in the EHR's inbox (a Communication to
 * CLINIC_ALERT_RECIPIENTS, which is the message). Each channel on its own: a mail server down does not hold back the
 * inbox. One sender at a time per message (AlertSendClaims, in Redis). At least once: a worker dying between an email
 * and its record sends it again at the next look.
 */
@Injectable()
export class AlertDelivery {
  private readonly logger = new Logger(AlertDelivery.name);

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: ClinicAlertMetrics,
    private readonly claims: AlertSendClaims,
    @Optional() @Inject(CLINIC_ALERT_SENDER) private readonly sender?: ClinicAlertSender | null,
  ) {}

  /** Where the clinic reviews what it is told of (the page), when the service knows its public address. */
  worklistUrl(): string | undefined {
    return this.config.publicUrl ? `${this.config.publicUrl}/ui` : undefined;
  }

  /** The ways the clinic is told, with whom each reaches; none: the clinic is told nothing. */
  channels(): { channel: ClinicAlertChannel; to: string[] }[] {
    return [
      ...(this.sender ? [{ channel: 'email' as const, to: this.sender.to }] : []),
      ...(this.config.clinicAlertRecipients.length
        ? [{ channel: 'inbox' as const, to: this.config.clinicAlertRecipients }]
        : []),
    ];
  }

  /** The records of these messages already sent, by key: one search. */
  async recordsOf(keys: string[]): Promise<Map<string, Communication>> {
    const found = await this.fhir.searchAll<Communication>('Communication', {
      identifier: keys.map((key) => `${CLINIC_ALERT_KEY_SYSTEM}|${key}`).join(','),
    });
    return new Map(found.flatMap((c) => (c.identifier ?? []).flatMap((i) => (i.value ? [[i.value, c] as const] : []))));
  }

  /**
   * One alert by each channel with no record of it among `told` (its key there), each delivered in turn (deliver): a
   * channel that fails does not stop the others. Whether any sent it, the first failure, and whether any was left to
   * another sender (which may yet fail).
   */
  async deliverUntold(
    told: Map<string, Communication>,
    alert: {
      kind: AlertKind;
      key(channel: ClinicAlertChannel): string;
      message(channel: ClinicAlertChannel): ClinicAlertMessage;
      record(message: ClinicAlertMessage, sent: AlertSent): Communication;
      about: Record<string, string | undefined>;
      retriedBy: string;
      now: Date;
    },
  ): Promise<{ sent: boolean; failed?: Error; left?: boolean }> {
    let sent = false;
    let failed: Error | undefined;
    let left = false;
    for (const { channel, to } of this.channels()) {
      const key = alert.key(channel);
      if (told.has(key)) continue;
      const message = alert.message(channel);
      const outcome = await this.deliver({
        kind: alert.kind,
        channel,
        key,
        message,
        record: alert.record(message, { channel, to, now: alert.now }),
        about: alert.about,
        retriedBy: alert.retriedBy,
      });
      if (outcome === 'sent') sent = true;
      else if (outcome === 'left') left = true;
      else failed ??= outcome;
    }
    return { sent, failed, left };
  }

  /**
   * The notice that an alert is dealt with, by each channel the alert went (its record among `told`) and the notice has
   * not: the same way, in answer to it (`inResponseTo`), routine. A notice not sent is left to the next look (the
   * 15-minute sweep); the first failure is returned, for a caller that must keep it owed till then.
   */
  async noticeDealtWith(
    told: Map<string, Communication>,
    notice: {
      alertKey(channel: ClinicAlertChannel): string;
      key(channel: ClinicAlertChannel): string;
      message(channel: ClinicAlertChannel): ClinicAlertMessage;
      record(message: ClinicAlertMessage, sent: AlertSent): Communication;
      about: Record<string, string | undefined>;
      now: Date;
    },
  ): Promise<{ failed?: Error }> {
    let failed: Error | undefined;
    for (const { channel, to } of this.channels()) {
      const alert = told.get(notice.alertKey(channel));
      const key = notice.key(channel);
      if (!alert || told.has(key)) continue;
      const message = notice.message(channel);
      const resolved = { key, alert: alert.id ? `Communication/${alert.id}` : undefined };
      const outcome = await this.deliver({
        kind: 'resolved',
        channel,
        key,
        message,
        record: notice.record(message, { channel, to, now: notice.now, resolved }),
        about: notice.about,
        retriedBy: 'the sweep',
      });
      if (outcome instanceof Error) failed ??= outcome;
    }
    return { failed };
  }

  /**
   * One message by one channel: emailed (for `email`) and recorded, once (sendOnce), counted and logged by ids alone
   * (no patient data). `sent`; `left` to another sender, or recorded since the look; or why it was not sent (nothing
   * is recorded then, so `retriedBy` sends it again).
   */
  async deliver(d: {
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
}
