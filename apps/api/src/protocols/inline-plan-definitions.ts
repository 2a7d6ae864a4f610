import { Injectable, Logger } from '@nestjs/common';
import { deepEquals } from '@medplum/core';
import type { PlanDefinition } from '@medplum/fhirtypes';
import { badRequest, conflict } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { PlanDefinitions } from '@kc/nest-core';
import { canonicalOf, ProtocolCatalog } from '@kc/protocols';
import { PlanWriteLock } from './plan-write-lock';

/**
 * A PlanDefinition sent inline to a persisted $apply, kept on the FHIR server under its canonical: the CarePlan
 * instantiates it there, so an approval, the contraindication sweep and an override's regeneration check the
 * patient again against the rules it was applied with, and an EHR reading `instantiatesCanonical` finds them.
 * The same definition sent again is stored once; a different one under the same canonical is refused, since the
 * checks of the plans applied before would then read rules they were not applied with.
 */
@Injectable()
export class InlinePlanDefinitions {
  private readonly logger = new Logger(InlinePlanDefinitions.name);

  constructor(
    private readonly catalog: ProtocolCatalog,
    private readonly definitions: PlanDefinitions,
    private readonly fhir: FhirClient,
    private readonly lock: PlanWriteLock,
  ) {}

  async keep(plan: PlanDefinition): Promise<void> {
    const canonical = canonicalOf(plan);
    if (!canonical)
      throw badRequest(
        'A PlanDefinition sent inline to a persisted $apply needs a url: its CarePlan instantiates it by that canonical, and the service checks the patient again against it before each approval',
        ['Parameters.parameter[planDefinition].resource.url'],
      );
    const ours = this.catalog.findPlanDefinition(canonical);
    if (ours) return this.assertSame(plan, ours, canonical, 'is one of this service’s protocols');
    // One writer per canonical: two $apply calls sending a new definition at once store it once.
    await this.lock.around(`plan-definition|${canonical}`, async () => {
      const stored = await this.definitions.byCanonical<PlanDefinition>('PlanDefinition', canonical);
      if (stored) return this.assertSame(plan, stored, canonical, 'is on the FHIR server');
      const { resource } = await this.fhir.create<PlanDefinition>(asSent(plan));
      this.definitions.forget(canonical);
      this.logger.log({ msg: 'inline PlanDefinition stored', canonical, id: resource.id });
    });
  }

  private assertSame(sent: PlanDefinition, kept: PlanDefinition, canonical: string, where: string): void {
    if (deepEquals(rulesOf(sent), rulesOf(kept))) return;
    throw conflict(
      `A different PlanDefinition ${canonical} ${where}: plans applied from it are checked against it. Give this one its own version (or url), or apply the one kept by its canonical.`,
      409,
      ['Parameters.parameter[planDefinition].resource'],
    );
  }
}

/** A definition as the request sent it, without what a server gives one (its id, its meta): what is stored. */
export function asSent(plan: PlanDefinition): PlanDefinition {
  const { id: _id, meta: _meta, ...definition } = plan;
  return definition;
}

/** What a definition says, to compare two: also without its narrative, which a server may write its own of. */
function rulesOf(plan: PlanDefinition): PlanDefinition {
  const { text: _text, ...rules } = asSent(plan);
  return rules;
}
