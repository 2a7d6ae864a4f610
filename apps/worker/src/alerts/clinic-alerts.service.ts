import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Communication, DetectedIssue, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { batchResult, FhirClient, getEntry } from '@kc/fhir';
import {
  clinicAlertKey,
  clinicAlertKindOf,
  clinicAlertMessage,
  clinicAlertRecord,
  heldTasksOf,
  mayNeedResolvedNotice,
  needsClinicAlert,
  RESOLVED_NOTICE_WITHIN_MS,
  resolvedNoticeKey,
  resolvedNoticeMessage,
  wasAlertable,
} from '@kc/protocols';
import { AlertDelivery } from './alert-delivery';

/** How many resolved issues one look at their notices takes (noticeLatelyResolved). */
const NOTICES_PER_LOOK = 25;

/**
 * Tells the clinic of each effect a patient reported that waits for a clinician's review, and of each contraindication
 * found after approval that holds approved orders (clinicAlertKindOf), once per channel (AlertDelivery: by email and in
 * the EHR's inbox, records keyed by the issue), and that it is dealt with once resolved. At least once: a worker dying
 * between an email and its record sends it again at the next look (the plan's hold job, or the 15-minute sweep), which
 * is what finds one not told yet.
 */
@Injectable()
export class ClinicAlerts {
  private readonly logger = new Logger(ClinicAlerts.name);

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly delivery: AlertDelivery,
  ) {}

  /**
   * The issues among these that the clinic has not been told of, told now; and those resolved lately whose alert went,
   * followed by a notice that they are dealt with (noticeResolved). How many alerts were sent (by any channel).
   */
  async tell(issues: DetectedIssue[], now = new Date()): Promise<number> {
    const channels = this.delivery.channels();
    if (!channels.length) return 0;
    const waiting = [...new Map(issues.filter(needsClinicAlert).map((i) => [i.id, i])).values()];
    const resolved = [...new Map(issues.filter((i) => mayNeedResolvedNotice(i, now)).map((i) => [i.id, i])).values()];
    if (!waiting.length && !resolved.length) return 0;
    // One search: the alerts' records (of those waiting, and of those resolved) and the resolved ones' notices.
    const keys = [
      ...[...waiting, ...resolved].flatMap((i) => channels.map((c) => clinicAlertKey(i, c.channel))),
      ...resolved.flatMap((i) => channels.map((c) => resolvedNoticeKey(i, c.channel))),
    ];
    const toldBy = await this.delivery.recordsOf(keys);
    await this.noticeResolved(resolved, toldBy, now);
    const worklistUrl = this.delivery.worklistUrl();
    let sent = 0;
    for (const issue of waiting) {
      if (channels.every((c) => toldBy.has(clinicAlertKey(issue, c.channel)))) continue;
      const kind = clinicAlertKindOf(issue)!;
      const heldDueFrom = kind === 'orders-held' ? await this.heldDueFrom(issue) : undefined;
      // The mail server (or the FHIR server) down must not stop the holds and sweeps this runs in, nor the other
      // channel: nothing is recorded as told by this one, so the next look (the sweep, every 15 minutes) tries again.
      const { sent: any } = await this.delivery.deliverUntold(toldBy, {
        kind,
        key: (channel) => clinicAlertKey(issue, channel),
        message: (channel) =>
          clinicAlertMessage(issue, { worklistUrl, heldDueFrom, channel, zone: this.config.clinicTimeZone }),
        record: (message, how) => clinicAlertRecord(issue, message, how),
        about: { issue: issue.id },
        retriedBy: 'the sweep',
        now,
      });
      if (any) sent++;
    }
    return sent;
  }

  /**
   * The sweep's look again at the notices that alerts are dealt with: every alertable issue resolved lately
   * (RESOLVED_NOTICE_WITHIN_MS), whatever its plan still holds, so a notice whose job was lost goes now. One search of
   * the DetectedIssues changed since, and only when the clinic is told anything.
   */
  async noticeLatelyResolved(now = new Date()): Promise<void> {
    if (!this.delivery.channels().length) return;
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

  /** Of issues resolved lately, the notice that each is dealt with where its alert went (AlertDelivery). */
  private async noticeResolved(
    resolved: (DetectedIssue & { id: string })[],
    told: Map<string, Communication>,
    now: Date,
  ): Promise<void> {
    const context = { worklistUrl: this.delivery.worklistUrl(), zone: this.config.clinicTimeZone };
    for (const issue of resolved)
      await this.delivery.noticeDealtWith(told, {
        alertKey: (channel) => clinicAlertKey(issue, channel),
        key: (channel) => resolvedNoticeKey(issue, channel),
        message: (channel) => resolvedNoticeMessage(issue, { ...context, channel }),
        record: (message, sent) => clinicAlertRecord(issue, message, sent),
        about: { issue: issue.id },
        now,
      });
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
