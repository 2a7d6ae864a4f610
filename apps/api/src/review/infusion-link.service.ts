import { Injectable, Logger } from '@nestjs/common';
import type { DetectedIssue, Procedure } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, unprocessable } from '@kc/common';
import { FhirClient, updateEntry } from '@kc/fhir';
import { linkedToPlan } from '@kc/followups';
import {
  INFUSION_LINKED_BY_CLINICIAN,
  infusionNotLinkedOf,
  isInfusionNotLinked,
  linkedPlansOf,
  plansImplicatedBy,
  resolvedInfusionNotLinked,
} from '@kc/protocols';
import { InfusionEventsProducer } from '@kc/queue';
import { isUnresolved } from './contraindication-guard';
import { ContraindicationOverrideService } from './contraindication-override.service';
import { DecisionWriter } from './task-review.service';

/**
 * `$link-infusion` of an `infusion-not-linked` issue: the clinician says which of the patient's plans the infusion
 * charted naming none was a session of. One transaction links it (`Procedure.basedOn`, If-Match on the version read)
 * and resolves the issue (its mitigation names the plan and the clinician), with the clinician's Provenance; then, as
 * an override does, the orders the issue held are released and the clinic told it is dealt with, and the infusion is
 * followed up (its event queued again: the post-infusion check, the next session, the session it gave answered). An
 * infusion that was not a session of any plan is the issue's `$override`, with that reason. Since session 47.
 */
@Injectable()
export class InfusionLinkService {
  private readonly logger = new Logger(InfusionLinkService.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly writer: DecisionWriter,
    private readonly overrides: ContraindicationOverrideService,
    private readonly infusions: InfusionEventsProducer,
  ) {}

  async link(input: {
    issue: DetectedIssue;
    carePlan: string;
    seenVersion: string;
    caller: Caller;
    reason?: string;
  }): Promise<DetectedIssue> {
    const { issue, carePlan } = input;
    const ref = `DetectedIssue/${issue.id}`;
    if (!isInfusionNotLinked(issue))
      throw unprocessable(
        'Only an infusion charted naming no care plan is linked to one; override this issue instead',
        [ref],
      );
    const procedureId = infusionNotLinkedOf(issue);
    if (!procedureId) throw unprocessable('This issue names no infusion to link', [ref]);
    if (!plansImplicatedBy(issue).includes(carePlan))
      throw unprocessable(
        `${carePlan} is not one of the plans this infusion may be a session of: ${plansImplicatedBy(issue).join(', ')}`,
        [ref, carePlan],
      );
    // Resolved since the version the clinician saw: the writer tells this same decision retried from a conflict.
    if (!isUnresolved(issue) && issue.meta?.versionId === input.seenVersion)
      throw conflict(`This issue is already ${issue.mitigation?.length ? 'resolved' : issue.status}`, 409, [ref]);
    const procedure = await this.infusion(procedureId, carePlan, plansImplicatedBy(issue));
    const reason = input.reason ?? `The clinician linked the infusion to ${carePlan}`;
    const written = await this.writer.write<DetectedIssue>({
      current: issue,
      seenVersion: input.seenVersion,
      caller: input.caller,
      decision: 'link the infusion to its care plan',
      reason,
      asked: (now) =>
        !!now.mitigation?.some((m) => m.action?.coding?.some((c) => c.code === INFUSION_LINKED_BY_CLINICIAN.code)),
      change: (current) =>
        resolvedInfusionNotLinked(
          current,
          INFUSION_LINKED_BY_CLINICIAN,
          `Linked to ${carePlan}: ${reason}`,
          new Date().toISOString(),
          input.caller.fhirUser,
        ),
      // Linked in the EHR meanwhile, to this plan: nothing more to write on the infusion.
      consequences: [
        () => (procedure.linked ? undefined : updateEntry(procedure.linkedTo, procedure.read.meta?.versionId)),
      ],
    });
    this.logger.log({ msg: 'infusion linked to its care plan by a clinician', issue: issue.id, carePlan });
    await this.overrides.afterResolution(written, { caller: input.caller, reason, regenerate: false });
    await this.followUp(procedureId);
    return written;
  }

  /**
   * The infusion as it is now, and as linked to the plan: refused (409) when it was taken back in the EHR (deleted, no
   * longer completed) or linked there to another of the issue's plans (`plans`); `linked` when the EHR linked it to
   * this one already. A plan of the EHR's own it names (a care episode) is kept, and no link.
   */
  private async infusion(
    procedureId: string,
    carePlan: string,
    plans: string[],
  ): Promise<{ read: Procedure; linkedTo: Procedure; linked: boolean }> {
    const found = await this.fhir.readEvenIfDeleted<Procedure>('Procedure', procedureId);
    const reference = `Procedure/${procedureId}`;
    if (!found || found.deleted || found.resource.status !== 'completed')
      throw conflict(
        `The infusion was ${found && !found.deleted ? `set ${found.resource.status}` : 'deleted'} in the EHR: there is nothing to follow up; override this issue instead`,
        409,
        [reference],
      );
    const read = found.resource;
    const linked = linkedPlansOf(read, plans);
    if (linked.length && !linked.includes(carePlan))
      throw conflict(`The infusion was linked in the EHR to ${linked.join(', ')} meanwhile`, 409, [reference]);
    return {
      read,
      linkedTo: linkedToPlan(read, { id: carePlan.slice('CarePlan/'.length) }),
      linked: linked.length > 0,
    };
  }

  /**
   * The infusion's event queued again (its earlier job, which ignored it, does not hold the new one back). The link
   * stands if the queue is down: the poll of completed infusions finds it changed and follows it up then.
   */
  private async followUp(procedureId: string): Promise<void> {
    try {
      await this.infusions.enqueue(procedureId, 'api');
    } catch (err) {
      this.logger.warn({ msg: 'linked infusion not queued; the poll follows it up', error: String(err) });
    }
  }
}
