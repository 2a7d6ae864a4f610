import { Injectable, Logger } from '@nestjs/common';
import type { DetectedIssue, Procedure } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import {
  contraindicationState,
  INFUSION_NOT_LINKED,
  infusionNotLinkedOf,
  notLinkedInfusionSettled,
  plansImplicatedBy,
  resolvedInfusionNotLinked,
} from '@kc/protocols';
import { PlanDefinitions } from '@kc/nest-core';
import { InfusionEventsProducer } from '@kc/queue';
import { planTiedToUnlinkedInfusion, unresolvedNotLinkedIssue } from '../followups/unlinked-infusions';
import { serviceChangeEntries } from './withdrawal-writes';

/**
 * The `infusion-not-linked` issues (an infusion charted naming no plan, that may be a session of the patient's plans:
 * linkUnlinkedInfusion) that settled without a clinician: the infusion taken back in the EHR (entered in error,
 * deleted), or linked there (it names its plan now; its own event follows it up). Each resolved so (If-Match, with a
 * Provenance naming the service and the infusion), and the plans it held are checked again: by the sweep's
 * contraindication step after this one, or by the caller. Since session 47.
 */
@Injectable()
export class UnlinkedInfusionIssues {
  private readonly logger = new Logger(UnlinkedInfusionIssues.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    private readonly infusions: InfusionEventsProducer,
  ) {}

  /**
   * The sweep's look: one search of the unresolved issues, then a read of each one's infusion (few: a clinician links
   * them), and for one still charted naming no plan, the evidence that ties it to one now (tiedSince). A failure is
   * logged, and the next sweep looks again. The plans whose issue was resolved here.
   */
  async lookAgain(now = new Date()): Promise<string[]> {
    try {
      const issues = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        code: `${INFUSION_NOT_LINKED.system}|${INFUSION_NOT_LINKED.code}`,
        status: 'preliminary',
        _count: 200,
      });
      const released: string[] = [];
      for (const issue of issues) released.push(...(await this.settle(issue, now, { lookingAgain: true })));
      return released;
    } catch (err) {
      this.logger.warn({ msg: 'infusions not linked not looked at again; the next sweep tries', error: String(err) });
      return [];
    }
  }

  /** One infusion's issue, if any (it was taken back: its record job), settled if it has. The plans it held. */
  async heard(procedureId: string, now = new Date()): Promise<string[]> {
    const issue = await unresolvedNotLinkedIssue(this.fhir, procedureId);
    return issue ? this.settle(issue, now) : [];
  }

  private async settle(issue: DetectedIssue, now: Date, { lookingAgain = false } = {}): Promise<string[]> {
    const procedureId = infusionNotLinkedOf(issue);
    if (!procedureId || contraindicationState(issue) !== 'unresolved') return [];
    const found = await this.fhir.readEvenIfDeleted<Procedure>('Procedure', procedureId);
    const procedure = found && !found.deleted ? { ...found.resource, id: procedureId } : undefined;
    const settled = notLinkedInfusionSettled(procedure, plansImplicatedBy(issue));
    if (!settled) {
      if (lookingAgain && procedure) await this.tiedSince(procedure);
      return [];
    }
    await this.fhir.transaction(
      serviceChangeEntries(
        [{ resource: resolvedInfusionNotLinked(issue, settled.how, settled.text, now.toISOString()), read: issue }],
        issue,
        {
          activity: 'resolve the infusion charted naming no care plan',
          reason: settled.text,
          sources: [`Procedure/${procedureId}`],
        },
        now,
      ),
    );
    this.logger.log({
      msg: 'infusion charted naming no plan settled in the EHR',
      issue: issue.id,
      how: settled.how.code,
    });
    return plansImplicatedBy(issue);
  }

  /**
   * An infusion still charted naming no plan that evidence ties to one plan now: the pump's record of that plan's
   * order charted since, whose own job did not follow it up because the order was closed or deleted in the EHR by
   * then (it follows up again only an infusion that left its order's session open; clinic day seed 2842). Followed
   * up again: the follow-up links it and resolves its issue in one transaction, and releases what the issue held
   * (linkUnlinkedInfusion). Before session 48 such an issue waited for a clinician. Reads: the patient's plans and the
   * pump's records around it (planTiedToUnlinkedInfusion); a follow-up running now is looked at by the next sweep.
   */
  private async tiedSince(procedure: Procedure & { id: string }): Promise<void> {
    if (procedure.status !== 'completed') return;
    const found = await planTiedToUnlinkedInfusion(this.fhir, this.protocols, procedure);
    if (!('carePlan' in found)) return;
    const { running } = await this.infusions.followUpAgain(procedure.id);
    if (!running)
      this.logger.log({
        msg: 'infusion charted naming no plan tied to one since: followed up',
        procedure: procedure.id,
      });
  }
}
