import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Reference, Task } from '@medplum/fhirtypes';
import { FhirClient, FhirVersionConflictError } from '@kc/fhir';
import { PlanDefinitions } from '@kc/nest-core';
import { carePlanKeyOf, withListedActivities } from '@kc/protocols';
import { ApplyService } from './apply.service';

/**
 * After a clinician overrides a contraindication, the actions it held back are proposed: $apply runs again for
 * the same plan, patient and start date with the overridden codes, and its conditional creates find what already
 * exists, so only the held-back Tasks and requests are new. The CarePlan then lists them (If-Match, retried once).
 */
@Injectable()
export class PlanRegenerator {
  private readonly logger = new Logger(PlanRegenerator.name);

  constructor(
    private readonly applyService: ApplyService,
    private readonly definitions: PlanDefinitions,
    private readonly fhir: FhirClient,
  ) {}

  async afterOverride(carePlanId: string): Promise<{ tasks: number }> {
    const carePlan = await this.fhir.read<CarePlan>('CarePlan', carePlanId);
    const canonical = carePlan.instantiatesCanonical?.[0];
    const patientId = /^Patient\/(.+)$/.exec(carePlan.subject?.reference ?? '')?.[1];
    if (
      !canonical ||
      !patientId ||
      !carePlan.period?.start ||
      carePlan.status === 'revoked' ||
      carePlan.status === 'completed'
    ) {
      return { tasks: 0 };
    }
    // Its protocol gone from the FHIR server: the override stands, and nothing held back can be proposed (nor approved).
    const resolved = await this.definitions.find(canonical);
    if (!resolved) {
      this.logger.warn({ msg: 'plan not regenerated: its protocol is not found', carePlan: carePlanId, canonical });
      return { tasks: 0 };
    }
    const overridden = await this.applyService.overriddenOn(carePlanId);
    const applied = await this.applyService.apply(resolved, {
      patientId,
      startDate: new Date(carePlan.period.start),
      persist: true,
      context: {},
      output: 'carePlan',
      overridden,
      // Under this plan, whatever its start says now (the EHR may have moved it since it was applied).
      carePlanKey: carePlanKeyOf(carePlan),
    });
    const tasks = applied.result.tasks
      .map((t) => applied.persisted?.get(t.fullUrl))
      .filter((t) => t?.id)
      .map((t): Reference<Task> => ({ reference: `Task/${t!.id}` }));
    await this.listActivities(carePlanId, tasks);
    this.logger.log({ msg: 'plan regenerated after override', carePlan: carePlanId, tasks: tasks.length });
    return { tasks: tasks.length };
  }

  private async listActivities(carePlanId: string, tasks: Reference<Task>[], attempt = 0): Promise<void> {
    const carePlan = await this.fhir.read<CarePlan>('CarePlan', carePlanId);
    const updated = withListedActivities(
      carePlan,
      tasks.map((t) => t.reference!),
    );
    if (!updated) return;
    try {
      await this.fhir.update(updated, { ifMatch: carePlan.meta?.versionId });
    } catch (err) {
      if (err instanceof FhirVersionConflictError && attempt === 0) return this.listActivities(carePlanId, tasks, 1);
      throw err;
    }
  }
}
