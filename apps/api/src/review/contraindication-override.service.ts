import { Injectable, Logger } from '@nestjs/common';
import type { DetectedIssue, Task } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict } from '@kc/common';
import { OrderHolds } from '@kc/nest-core';
import { CompletedTaskEventsProducer, PatientRecordEventsProducer } from '@kc/queue';
import { PlanRegenerator } from '../protocols/plan-regenerator';
import { isUnresolved } from './contraindication-guard';
import { deciderOf } from './provenance';
import { TaskReminders } from './task-reminders';
import { DecisionWriter } from './task-review.service';

const OVERRIDE_ACTION = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OE', display: 'order entry' }],
};

/**
 * A clinician overrides a contraindication: the DetectedIssue gets a mitigation (who, when, why), written with
 * If-Match and a Provenance naming the clinician. The orders it held (approved before it was found) go back to
 * active unless another unresolved issue holds them, and the plan's held-back actions are proposed, each still
 * awaiting approval.
 */
@Injectable()
export class ContraindicationOverrideService {
  private readonly logger = new Logger(ContraindicationOverrideService.name);

  constructor(
    private readonly writer: DecisionWriter,
    private readonly regenerator: PlanRegenerator,
    private readonly holds: OrderHolds,
    private readonly reminders: TaskReminders,
    private readonly sessions: CompletedTaskEventsProducer,
    private readonly records: PatientRecordEventsProducer,
  ) {}

  async override(input: {
    issue: DetectedIssue;
    seenVersion: string;
    caller: Caller;
    reason: string;
    regenerate?: boolean;
  }): Promise<DetectedIssue> {
    // Changed since the version the clinician saw: the writer tells this same override retried (its Provenance is
    // there: answered as done, and the held-back actions proposed again in case a crash stopped that) from a conflict.
    if (!isUnresolved(input.issue) && input.issue.meta?.versionId === input.seenVersion)
      throw conflict(
        `This contraindication is already ${input.issue.mitigation?.length ? 'overridden' : input.issue.status}`,
        409,
        [`DetectedIssue/${input.issue.id}`],
      );
    const now = new Date().toISOString();
    const written = await this.writer.write<DetectedIssue>({
      current: input.issue,
      seenVersion: input.seenVersion,
      caller: input.caller,
      decision: 'override contraindication',
      reason: input.reason,
      // The same override sent again gives the same reason; another reason is a new decision on a stale version.
      asked: (issue) => !!issue.mitigation?.some((m) => m.action?.text === overrideText(input.reason)),
      // The issue was checked above; a concurrent change since is caught by If-Match.
      change: (issue) => {
        return {
          ...issue,
          status: 'final',
          mitigation: [
            ...(issue.mitigation ?? []),
            {
              action: { ...OVERRIDE_ACTION, text: overrideText(input.reason) },
              date: now,
              author: input.caller.fhirUser ? { reference: input.caller.fhirUser } : undefined,
            },
          ],
        };
      },
    });
    await this.afterResolution(written, input);
    return written;
  }

  /**
   * What follows an issue a clinician resolved ($override, or $replan of an infusion in error): the orders it held
   * released (unless another issue holds them) with their reminders, the plan's held-back actions proposed (unless
   * `regenerate` is false), sessions released booked from their appointments, and the worker told (the clinic, if it
   * was alerted, told it is dealt with). Also when this is the same decision sent again after a crash cut it short:
   * releasing twice writes nothing.
   */
  async afterResolution(
    written: DetectedIssue,
    input: { caller: Caller; reason: string; regenerate?: boolean },
  ): Promise<void> {
    const released = await this.holds.releaseAfterOverride({
      issue: written,
      who: deciderOf(input.caller),
      reason: input.reason,
    });
    const carePlanIds = (written.implicated ?? []).flatMap(
      (r) => /^CarePlan\/([^/]+)$/.exec(r.reference ?? '')?.[1] ?? [],
    );
    for (const carePlanId of carePlanIds) {
      await this.reminders.afterRelease(carePlanId, released, `released-${written.id}`);
      if (input.regenerate !== false) await this.regenerator.afterOverride(carePlanId);
    }
    await this.bookIfAppointed(released);
    await this.afterResolved(written);
  }

  /**
   * The worker's job for an issue resolved (PlanChanges.issueChanged): a plan resumed while this contraindication
   * kept its orders held for the pause has them released now (else the next sweep would), and the clinic, if it was
   * alerted to the issue, is told it is dealt with. The override stands if the queue is down.
   */
  private async afterResolved(issue: DetectedIssue): Promise<void> {
    try {
      await this.records.enqueue(`DetectedIssue/${issue.id}`);
    } catch (err) {
      this.logger.warn({ msg: 'resolved issue not queued for its plans and alerts', error: String(err) });
    }
  }

  /**
   * Sessions released: each is booked from an appointment in its window, which the scheduling system may have booked
   * while it was held. The override stands if the queue is down; a session is then booked when its appointment is
   * next written.
   */
  private async bookIfAppointed(released: Task[]): Promise<void> {
    try {
      await this.sessions.enqueueBookableSessions(released);
    } catch (err) {
      this.logger.warn({ msg: 'released sessions not queued for their appointments', error: String(err) });
    }
  }
}

function overrideText(reason: string): string {
  return `Clinician override: ${reason}`;
}
