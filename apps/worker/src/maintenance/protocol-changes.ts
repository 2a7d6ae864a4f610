import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, PlanDefinition } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { PlanDefinitions } from '@kc/nest-core';
import { canonicalOf, ProtocolCatalog } from '@kc/protocols';
import { ContraindicationSweep } from './contraindication-sweep';

/**
 * A PlanDefinition the FHIR server notified as changed or deleted (an EHR's protocol): read again from now on, by
 * every process (ProtocolChangeBroadcast), and the plans following it checked against what the server has now rather
 * than at the next sweep. Deleted, with no other version of its url left, their approved orders are held
 * (`protocol-not-found`); posted again, released. The catalog's are left alone: their definitions are
 * fhir-profiles/'s, whatever a copy on the server says.
 */
@Injectable()
export class ProtocolChanges {
  private readonly logger = new Logger(ProtocolChanges.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    private readonly catalog: ProtocolCatalog,
    private readonly contraindications: ContraindicationSweep,
  ) {}

  async changed(
    id: string,
    now = new Date(),
  ): Promise<{ plans: number; recorded: number; held: number; released: number }> {
    const none = { plans: 0, recorded: 0, held: 0, released: 0 };
    // A deleted one no longer reads: its last version (the instance history) says which protocol it was.
    const definition = (await this.fhir.readEvenIfDeleted<PlanDefinition>('PlanDefinition', id))?.resource;
    // The process notified told every process already (ProtocolChangeBroadcast); forgotten here too, in case this job
    // runs before that message arrives.
    this.protocols.forgetServerPlans();
    const canonical = definition && canonicalOf(definition);
    if (!definition?.url || !canonical || this.catalog.findPlanDefinition(canonical)) return none;
    // Plans applied with this version, or with its url alone (the latest version), still open: a draft one is what
    // `$apply` writes, and its sessions are approved on it.
    const carePlans = await this.fhir.searchAll<CarePlan>('CarePlan', {
      'instantiates-canonical': [...new Set([canonical, definition.url])].join(','),
      status: 'draft,active,on-hold',
      _count: 100,
    });
    const outcome = { ...none, plans: carePlans.length };
    for (const carePlan of carePlans) {
      const { recorded, held, released } = await this.contraindications.recheckFor(`CarePlan/${carePlan.id}`, now);
      outcome.recorded += recorded;
      outcome.held += held;
      outcome.released += released;
    }
    if (outcome.plans) this.logger.log({ msg: 'plans of a protocol changed on the FHIR server checked', ...outcome });
    return outcome;
  }
}
