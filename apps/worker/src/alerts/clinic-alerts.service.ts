import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { Communication, DetectedIssue, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { batchResult, FhirClient, getEntry } from '@kc/fhir';
import {
  CLINIC_ALERT_KEY_SYSTEM,
  clinicAlertKey,
  clinicAlertKindOf,
  clinicAlertMessage,
  clinicAlertRecord,
  heldTasksOf,
  needsClinicAlert,
} from '@kc/protocols';
import { CLINIC_ALERT_SENDER, type ClinicAlertSender } from './clinic-alert-sender';
import { ClinicAlertMetrics } from './clinic-alert.metrics';

/**
 * Tells the clinic, by email, of each effect a patient reported that waits for a clinician's review, and of each
 * contraindication found after approval that holds approved orders (clinicAlertKindOf), once: the email
 * first, then its record (a Communication keyed by the issue). At least once: a worker dying between the two sends
 * it again at the next look (the plan's hold job, or the 15-minute sweep), which is what finds one not told yet.
 */
@Injectable()
export class ClinicAlerts {
  private readonly logger = new Logger(ClinicAlerts.name);

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: ClinicAlertMetrics,
    @Optional() @Inject(CLINIC_ALERT_SENDER) private readonly sender?: ClinicAlertSender | null,
  ) {}

  /** The issues among these that the clinic has not been told of, told now; how many were (an email refused: not). */
  async tell(issues: DetectedIssue[], now = new Date()): Promise<number> {
    if (!this.sender) return 0;
    const waiting = [...new Map(issues.filter(needsClinicAlert).map((i) => [i.id, i])).values()];
    if (!waiting.length) return 0;
    const told = await this.fhir.searchAll<Communication>('Communication', {
      identifier: waiting.map((i) => `${CLINIC_ALERT_KEY_SYSTEM}|${clinicAlertKey(i)}`).join(','),
    });
    const toldKeys = new Set(told.flatMap((c) => c.identifier?.map((i) => i.value) ?? []));
    const worklistUrl = this.config.publicUrl ? `${this.config.publicUrl}/ui` : undefined;
    let sent = 0;
    for (const issue of waiting.filter((i) => !toldKeys.has(clinicAlertKey(i)))) {
      const kind = clinicAlertKindOf(issue)!;
      const heldDueFrom = kind === 'orders-held' ? await this.heldDueFrom(issue) : undefined;
      const message = clinicAlertMessage(issue, { worklistUrl, heldDueFrom });
      try {
        await this.sender.send(message);
      } catch (err) {
        this.metrics.record(kind, 'not-sent');
        // The mail server down must not stop the holds and sweeps this runs in: nothing is recorded as sent, so the
        // next look (the sweep, every 15 minutes) tries again.
        this.logger.warn({ msg: 'clinic alert not sent; the sweep tries again', issue: issue.id, error: String(err) });
        continue;
      }
      await this.fhir.create(clinicAlertRecord(issue, message, { to: this.sender.to, now }), {
        ifNoneExist: { identifier: `${CLINIC_ALERT_KEY_SYSTEM}|${clinicAlertKey(issue)}` },
      });
      sent++;
      this.metrics.record(kind, 'sent');
      // No patient data: the issue's id only.
      this.logger.log({ msg: 'clinic told', kind, issue: issue.id });
    }
    return sent;
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
