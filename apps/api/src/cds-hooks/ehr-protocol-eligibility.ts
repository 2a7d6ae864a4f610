import { Injectable } from '@nestjs/common';
import type { Bundle, CarePlan, MedicationRequest, Resource } from '@medplum/fhirtypes';
import { FhirOutOfTimeError } from '@kc/fhir';
import { PlanDefinitions, type ResolvedPlan } from '@kc/nest-core';
import { flattenActions, patientDataQueries, ProtocolCatalog } from '@kc/protocols';
import type { CdsRequest } from './cds-types';
import { readFailure } from './ehr-fhir-server';
import type { ProtocolInput, UncheckedCondition } from './eligibility';
import { PATIENT_TOKEN, PrefetchResolver, resourcesIn, type PrefetchQuery } from './prefetch';

/** The EHR's protocols an order-sign call judges, with the patient's data each one's inputs declare. */
export interface EhrProtocolInputs {
  inputs: ProtocolInput[];
  /** The protocols whose data could not be read: their conditions did not run (a warning card says so). */
  unchecked: UncheckedCondition[];
  fetched: number;
}

const NONE: EhrProtocolInputs = { inputs: [], unchecked: [], fetched: 0 };

/**
 * order-sign's eligibility for orders of an EHR's own protocol (an ActivityDefinition the catalog does not define):
 * the protocols of the patient's care plans that use it, read through PlanDefinitions (the FHIR server, kept 30 s),
 * each with the patient's data its inputs declare (read where the catalog's is, in the call's budget). Their
 * eligibility conditions are judged with the catalog's, so a contraindication only the EHR's protocol names gets its
 * critical card too. The prefetch templates stay the catalog's: an EHR's protocol is not known at discovery.
 */
@Injectable()
export class EhrProtocolEligibility {
  constructor(
    private readonly catalog: ProtocolCatalog,
    private readonly protocols: PlanDefinitions,
    private readonly prefetch: PrefetchResolver,
  ) {}

  async inputsFor(
    orders: MedicationRequest[],
    carePlans: Resource | Bundle | undefined,
    request: CdsRequest,
    patientId: string,
    budget: AbortSignal,
    /** The person's other records the patient's links (read with the catalog's queries): their data counts too. */
    linked: string[] = [],
  ): Promise<EhrProtocolInputs> {
    const named = new Set(orders.flatMap((o) => o.instantiatesCanonical ?? []).filter((c) => !this.catalog.resolve(c)));
    if (!named.size) return NONE;
    let plans: ResolvedPlan[];
    try {
      // Read through the service's cache, so within the call's budget here: a slow server gets the warning card.
      plans = await withinBudget(this.protocolsUsing(named, resourcesIn<CarePlan>(carePlans, 'CarePlan')), budget);
    } catch (err) {
      const failure = readFailure(err);
      if (!failure) throw err;
      return {
        ...NONE,
        unchecked: [{ code: 'ehr-protocols', description: `The conditions of the EHR’s protocols (${failure.why})` }],
      };
    }
    const found: EhrProtocolInputs = { inputs: [], unchecked: [], fetched: 0 };
    for (const { plan } of plans) {
      const queries = patientDataQueries(plan, PATIENT_TOKEN);
      const keyed: PrefetchQuery[] = queries.map((q) => ({
        key: `${plan.url}|${plan.version}#${q.name}`,
        resourceType: q.resourceType,
        params: q.params,
        everyMatch: q.everyMatch,
        fromEhr: true,
      }));
      try {
        // Not prefetched (the EHR could not know these keys): read.
        const read = await this.prefetch.resolve(keyed, { ...request, prefetch: undefined }, patientId, budget, {
          linked,
        });
        found.fetched += read.fetched;
        found.inputs.push({
          plan,
          variables: Object.fromEntries(queries.map((q, i) => [q.name, read.data[keyed[i].key] as Bundle])),
        });
      } catch (err) {
        const failure = readFailure(err);
        if (!failure) throw err;
        found.unchecked.push({
          code: `ehr-protocol:${plan.url}`,
          description: `The conditions of ${plan.title ?? plan.name ?? 'the EHR’s protocol'} (${failure.why})`,
        });
      }
    }
    return found;
  }

  /** The patient's plans' protocols (an EHR's) whose actions name one of these definitions. */
  private async protocolsUsing(named: Set<string>, carePlans: CarePlan[]): Promise<ResolvedPlan[]> {
    const bare = new Set([...named].map((c) => c.split('|')[0]));
    const uses = ({ plan }: ResolvedPlan) =>
      bare.has(plan.url ?? '') ||
      flattenActions(plan.action ?? []).some(
        (a) => a.definitionCanonical && bare.has(a.definitionCanonical.split('|')[0]),
      );
    const resolved = await Promise.all(carePlans.map((cp) => this.protocols.ofCarePlan(cp)));
    const byCanonical = new Map<string, ResolvedPlan>();
    for (const protocol of resolved)
      if (protocol && !this.catalog.resolve(`${protocol.plan.url}|${protocol.plan.version}`) && uses(protocol))
        byCanonical.set(`${protocol.plan.url}|${protocol.plan.version}`, protocol);
    return [...byCanonical.values()];
  }
}

/** The work, or FhirOutOfTimeError once the call's budget is spent (the work goes on: what it reads is kept). */
function withinBudget<T>(work: Promise<T>, budget: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(new FhirOutOfTimeError('the protocols were not read within the call’s time budget'));
    if (budget.aborted) stop();
    else budget.addEventListener('abort', stop, { once: true });
    // Handled either way: a read failing after the budget is spent is not an unhandled rejection.
    work.then(resolve, reject).finally(() => budget.removeEventListener('abort', stop));
  });
}
