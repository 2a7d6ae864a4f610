import { Injectable, Logger } from '@nestjs/common';
import type { Procedure, Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { INFUSION_IN_ERROR_KEY_SYSTEM, infusionInErrorIssue, tasksOfInfusion } from '@kc/protocols';
import { ContraindicationSweep } from './contraindication-sweep';

/**
 * An infusion the EHR marked entered-in-error, or deleted, after its follow-ups were written: recorded once as an
 * `infusion-recorded-in-error` issue on its plan (infusion-in-error.ts), then the plan is checked now, so its approved
 * orders are held, nothing under it is approved and the clinic is told, until a clinician puts it right and overrides
 * the issue. A completed infusion, or one that left nothing behind, changes nothing.
 */
@Injectable()
export class InfusionsInError {
  private readonly logger = new Logger(InfusionsInError.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly contraindications: ContraindicationSweep,
  ) {}

  async heard(procedureId: string, now = new Date()): Promise<{ recorded: number; held: number }> {
    const none = { recorded: 0, held: 0 };
    const found = await this.fhir.readEvenIfDeleted<Procedure>('Procedure', procedureId);
    if (!found || (!found.deleted && found.resource.status !== 'entered-in-error')) return none;
    const procedure = found.resource;
    const carePlan = procedure.basedOn?.find((r) => /^CarePlan\/[^/]+$/.test(r.reference ?? ''))?.reference;
    const patient = procedure.subject?.reference;
    if (!carePlan || !patient) return none;
    const tasks = await this.fhir.searchAll<Task>('Task', { 'based-on': carePlan, _count: 200 });
    const issue = infusionInErrorIssue({
      procedure: { ...procedure, id: procedureId },
      carePlan,
      patient: { reference: patient },
      ...tasksOfInfusion(procedureId, tasks),
      identified: now.toISOString(),
    });
    if (!issue) return none;
    const { created } = await this.fhir.create(issue, {
      ifNoneExist: { identifier: `${INFUSION_IN_ERROR_KEY_SYSTEM}|Procedure/${procedureId}` },
    });
    if (created) this.logger.warn({ msg: 'infusion recorded in error after its follow-ups: plan held', carePlan });
    const { held } = await this.contraindications.recheckFor(carePlan, now);
    return { recorded: created ? 1 : 0, held };
  }
}
