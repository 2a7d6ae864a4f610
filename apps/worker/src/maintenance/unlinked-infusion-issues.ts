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
import { unresolvedNotLinkedIssue } from '../followups/unlinked-infusions';
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

  constructor(private readonly fhir: FhirClient) {}

  /**
   * The sweep's look: one search of the unresolved issues, then a read of each one's infusion (few: a clinician links
   * them). A failure is logged, and the next sweep looks again. The plans whose issue was resolved.
   */
  async lookAgain(now = new Date()): Promise<string[]> {
    try {
      const issues = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        code: `${INFUSION_NOT_LINKED.system}|${INFUSION_NOT_LINKED.code}`,
        status: 'preliminary',
        _count: 200,
      });
      const released: string[] = [];
      for (const issue of issues) released.push(...(await this.settle(issue, now)));
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

  private async settle(issue: DetectedIssue, now: Date): Promise<string[]> {
    const procedureId = infusionNotLinkedOf(issue);
    if (!procedureId || contraindicationState(issue) !== 'unresolved') return [];
    const found = await this.fhir.readEvenIfDeleted<Procedure>('Procedure', procedureId);
    const settled = notLinkedInfusionSettled(
      found && !found.deleted ? found.resource : undefined,
      plansImplicatedBy(issue),
    );
    if (!settled) return [];
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
}
