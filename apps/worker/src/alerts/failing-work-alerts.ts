import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Communication } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import type { ClinicAlertChannel } from '@kc/protocols';
import { DeadLetters, type FailingJob } from '@kc/queue';
import { AlertDelivery } from './alert-delivery';
import { AlertsOwed, type AlertOwed } from './alerts-owed';
import { FAILING_WORK, type FailingWorkKind, type WorkAbout } from './failing-work-kinds';

/** Past this since first owed, an alert is let go: its job was given up (a week) and the clinic long told. */
const OWED_FOR_MS = 8 * 86_400_000;

/** What the sweep's look did, by kind: the clinic told of work failing now, and told that such work has run. */
export type FailingWorkLook = Record<FailingWorkKind['kind'], { told: number; noticed: number }>;

/**
 * Tells the clinic of work whose jobs keep failing (a dead letter for FOLLOW_UP_FAILING_ALERT_MS: the FHIR server
 * refusing what they write, or down that long) when nothing else would show a clinician the gap (FAILING_WORK: an
 * infusion's post-infusion check not planned, a patient's check answers not recorded), and tells them again once the
 * job has run. Looked at by the 15-minute sweep; each alert owed (AlertsOwed) from the look that finds it due until its
 * notice is sent. Reads per kind, only while any is failing or owed: its failed jobs, one request for what they are
 * about, one search of the alerts' records. A failure is logged and left to the next look (a FHIR server that cannot be
 * read is told of once it can). Nothing when the clinic has no channel. Since session 61; before, only the operator's
 * dead-letter view said so, for the week a job is tried again.
 */
@Injectable()
export class FailingWorkAlerts {
  private readonly logger = new Logger(FailingWorkAlerts.name);

  constructor(
    private readonly deadLetters: DeadLetters,
    private readonly delivery: AlertDelivery,
    private readonly owed: AlertsOwed,
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone' | 'followUpFailingAlertMs'>,
  ) {}

  async look(now = new Date()): Promise<FailingWorkLook> {
    const looked = Object.fromEntries(FAILING_WORK.map((k) => [k.kind, { told: 0, noticed: 0 }])) as FailingWorkLook;
    if (!this.delivery.channels().length) return looked;
    for (const kind of FAILING_WORK) {
      try {
        looked[kind.kind] = await this.lookAt(kind, now);
      } catch (err) {
        this.logger.warn({ msg: 'failing work not told; the next sweep tries', kind: kind.kind, error: String(err) });
      }
    }
    return looked;
  }

  private async lookAt(kind: FailingWorkKind, now: Date): Promise<{ told: number; noticed: number }> {
    const failing = new Map(
      (await this.deadLetters.failing(kind.queue, kind.jobNames)).map((job) => [job.about, job] as const),
    );
    const due = [...failing.values()].filter(
      (f) => now.getTime() - f.failingSince >= this.config.followUpFailingAlertMs,
    );
    await this.owed.owe(
      kind.kind,
      due.map((f) => ({ about: f.about })),
      now,
    );
    const { standing, ran } = await this.judge(kind, await this.owed.all(kind.kind), failing, now);
    if (!standing.length && !ran.length) return { told: 0, noticed: 0 };
    return this.tell(kind, standing, ran, now);
  }

  /**
   * Of the alerts owed: those whose job still fails (to tell), those whose job has run (to notice, with what it
   * returned), the rest left (being tried again now) or let go (its job gone, or owed past OWED_FOR_MS).
   */
  private async judge(
    kind: FailingWorkKind,
    owed: AlertOwed[],
    failing: Map<string, FailingJob>,
    now: Date,
  ): Promise<{ standing: FailingJob[]; ran: { about: string; returned: unknown }[] }> {
    const standing: FailingJob[] = [];
    const ran: { about: string; returned: unknown }[] = [];
    const letGo: string[] = [];
    for (const { about, since } of owed) {
      if (now.getTime() - Date.parse(since) > OWED_FOR_MS) letGo.push(about);
      else if (failing.has(about)) standing.push(failing.get(about)!);
      else {
        const job = await this.deadLetters.standing(kind.queue, kind.jobIdOf(about));
        if (job.state === 'ran') ran.push({ about, returned: job.returned });
        // Its completed jobs not kept: gone is run (what it did is read from the FHIR server).
        else if (job.state === 'gone' && !kind.completedJobsKept) ran.push({ about, returned: undefined });
        else if (job.state === 'gone') letGo.push(about);
      }
    }
    if (letGo.length) {
      this.logger.warn({
        msg: 'failing work alerts let go (job gone, or owed past 8 days)',
        kind: kind.kind,
        about: letGo,
      });
      await this.owed.settle(kind.kind, letGo);
    }
    return { standing, ran };
  }

  private async tell(
    kind: FailingWorkKind,
    standing: FailingJob[],
    ran: { about: string; returned: unknown }[],
    now: Date,
  ): Promise<{ told: number; noticed: number }> {
    const abouts = [...standing.map((s) => s.about), ...ran.map((r) => r.about)];
    const read = await kind.read(this.fhir, abouts, new Set(ran.map((r) => r.about)));
    const channels = this.delivery.channels().map((c) => c.channel);
    const told = await this.delivery.recordsOf(
      abouts.flatMap((about) => channels.flatMap((c) => [kind.alertKey(about, c), kind.noticeKey(about, c)])),
    );
    const context = { worklistUrl: this.delivery.worklistUrl(), zone: this.config.clinicTimeZone };
    let toldNow = 0;
    for (const { about, failingSince } of standing) {
      const found = read.get(about);
      // Gone from the server: its job has nothing left to do, and is let go once it has run.
      if (!found?.resource) continue;
      const outcome = await this.delivery.deliverUntold(told, {
        kind: kind.kind,
        key: (channel) => kind.alertKey(about, channel),
        message: (channel) => kind.alertMessage(about, found, failingSince, { ...context, channel }),
        record: (message, sent) => kind.record(about, found, message, sent),
        about: { about, carePlan: found.carePlan?.id },
        retriedBy: 'the sweep',
        now,
      });
      if (outcome.sent) toldNow++;
    }
    let noticed = 0;
    const settled: string[] = [];
    for (const { about, returned } of ran) {
      const found: WorkAbout = read.get(about) ?? {};
      const { failed } = await this.delivery.noticeDealtWith(told, {
        alertKey: (channel) => kind.alertKey(about, channel),
        key: (channel) => kind.noticeKey(about, channel),
        message: (channel) => kind.noticeMessage(about, found, returned, { ...context, channel }),
        record: (message, sent) => kind.record(about, found, message, sent),
        about: { about },
        now,
      });
      if (failed) continue; // Owed still: the next look sends the notice.
      if (wasTold(told, kind, about, channels)) noticed++;
      settled.push(about);
    }
    await this.owed.settle(kind.kind, settled);
    return { told: toldNow, noticed };
  }
}

function wasTold(
  told: Map<string, Communication>,
  kind: FailingWorkKind,
  about: string,
  channels: ClinicAlertChannel[],
): boolean {
  return channels.some((c) => told.has(kind.alertKey(about, c)));
}
