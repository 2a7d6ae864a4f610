import { Injectable, Logger } from '@nestjs/common';
import type { BundleEntry, DetectedIssue, PlanDefinition, ProvenanceAgent, Resource, Task } from '@medplum/fhirtypes';
import { batchResult, FhirClient, FhirVersionConflictError, getEntry, updateEntry } from '@kc/fhir';
import {
  contraindicationState,
  hasContraindicationChecks,
  protocolActionOf,
  type DefinitionResolver,
} from '@kc/protocols';
import {
  changeProvenance,
  implicatingOrders,
  isAuthorisable,
  ORDER_KEY_SYSTEM,
  ordersToHold,
  ordersToRelease,
  THIS_SERVICE,
  type AuthorisableRequest,
  type OrderHold,
} from '@kc/task-states';

/** Order keys per search: a URL of a few KB, far under any server's limit. */
const KEYS_PER_SEARCH = 50;

/** A plan with unresolved contraindications, and what is needed to find the orders they hold. */
export interface HoldCheck {
  carePlanId: string;
  plan: PlanDefinition;
  resolver: DefinitionResolver;
  /** The DetectedIssues implicating the plan (any state: the unresolved ones hold). */
  issues: DetectedIssue[];
  /** The plan's approved Tasks (status ready) when already read; read here otherwise. */
  approvedTasks?: Task[];
}

/**
 * A contraindication found after an order was approved (a pregnancy recorded the week before the third session)
 * puts the plan's active orders that a contraindication check gates on hold, in one transaction with the issue
 * now implicating them and a Provenance naming this service; a clinician's override of the issue releases them
 * again, with a Provenance naming the clinician. Orders somebody else stopped or held are never touched. So an
 * EHR, a pharmacy or a pump integration reading only MedicationRequest.status sees that nothing is to be given.
 */
@Injectable()
export class OrderHolds {
  private readonly logger = new Logger(OrderHolds.name);

  constructor(private readonly fhir: FhirClient) {}

  /** The plan's active gated orders, held while any contraindication implicating the plan is unresolved. */
  async hold(check: HoldCheck, now = new Date()): Promise<number> {
    const carePlan = `CarePlan/${check.carePlanId}`;
    const unresolved = check.issues.filter(
      (i) => contraindicationState(i) === 'unresolved' && i.implicated?.some((r) => r.reference === carePlan),
    );
    if (!unresolved.length) return 0;
    const approved =
      check.approvedTasks ?? (await this.fhir.searchAll<Task>('Task', { 'based-on': carePlan, status: 'ready' }));
    const gated = approved.filter((t) => {
      const action = protocolActionOf(t);
      return action !== undefined && hasContraindicationChecks(check.plan, action, check.resolver);
    });
    const holds = ordersToHold(await this.activeOrdersOf(gated), unresolved);
    if (!holds.length) return 0;
    const orders = holds.map(({ held }) => ({ reference: `${held.resourceType}/${held.id}` }));
    const issueUpdates = unresolved.flatMap((issue) => {
      const updated = implicatingOrders(issue, orders);
      return updated ? [updateEntry(updated, issue.meta?.versionId)] : [];
    });
    const provenance = changeProvenance({
      targets: orders,
      who: THIS_SERVICE,
      activity: 'hold for contraindication',
      now,
      reason: `Contraindication found after approval: ${unresolved.map((i) => `DetectedIssue/${i.id}`).join(', ')}`,
    });
    const written = await this.writeOrSkip([...updatesOf(holds), ...issueUpdates, create(provenance)]);
    if (written)
      this.logger.warn({ msg: 'orders held for a contraindication', carePlan: check.carePlanId, held: holds.length });
    return written ? holds.length : 0;
  }

  /**
   * After a clinician overrode `issue`: the orders it held go back to active, unless another unresolved issue on the
   * plan holds them too. `who` is the clinician, named in the release's Provenance with the override's reason.
   */
  async releaseAfterOverride(input: {
    issue: DetectedIssue;
    who: ProvenanceAgent['who'];
    reason: string;
    now?: Date;
  }): Promise<number> {
    const { issue, who, reason, now = new Date() } = input;
    const carePlan = issue.implicated?.find((r) => r.reference?.startsWith('CarePlan/'))?.reference;
    const orderRefs = (issue.implicated ?? [])
      .map((r) => r.reference ?? '')
      .filter((r) => /^(MedicationRequest|ServiceRequest|CommunicationRequest)\/[^/]+$/.test(r));
    if (!carePlan || !orderRefs.length) return 0;
    const [read, planIssues] = await Promise.all([
      this.fhir.batch(orderRefs.map((r) => getEntry(r))),
      this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: carePlan }),
    ]);
    const orders = (read.entry ?? [])
      .map((e, i) => batchResult<Resource>(e, orderRefs[i]))
      .filter((r): r is AuthorisableRequest => isAuthorisable(r));
    const stillUnresolved = planIssues.filter((i) => i.id !== issue.id && contraindicationState(i) === 'unresolved');
    const releases = ordersToRelease({ orders, stillUnresolved });
    if (!releases.length) return 0;
    const provenance = changeProvenance({
      targets: releases.map(({ held }) => ({ reference: `${held.resourceType}/${held.id}` })),
      revisionOf: { reference: `DetectedIssue/${issue.id}/_history/${issue.meta?.versionId}` },
      who,
      activity: 'release hold after override',
      now,
      reason,
    });
    const written = await this.writeOrSkip([...updatesOf(releases), create(provenance)]);
    return written ? releases.length : 0;
  }

  /** The active orders the approvals of these Tasks wrote (each keyed `Task/<id>`), by the type each authorises. */
  private async activeOrdersOf(tasks: Task[]): Promise<AuthorisableRequest[]> {
    const byType = new Map<AuthorisableRequest['resourceType'], string[]>();
    for (const task of tasks) {
      const type = task.focus?.reference?.split('/')[0] as AuthorisableRequest['resourceType'] | undefined;
      if (!type || !isAuthorisable({ resourceType: type } as Resource)) continue;
      byType.set(type, [...(byType.get(type) ?? []), `${ORDER_KEY_SYSTEM}|Task/${task.id}`]);
    }
    const orders: AuthorisableRequest[] = [];
    for (const [type, keys] of byType)
      for (let i = 0; i < keys.length; i += KEYS_PER_SEARCH)
        orders.push(
          ...(await this.fhir.searchAll<AuthorisableRequest>(type, {
            identifier: keys.slice(i, i + KEYS_PER_SEARCH).join(','),
            status: 'active',
          })),
        );
    return orders;
  }

  /** A change made meanwhile (a clinician, an EHR) wins: nothing is written, and the next sweep looks again. */
  private async writeOrSkip(entries: BundleEntry[]): Promise<boolean> {
    try {
      await this.fhir.transaction(entries);
      return true;
    } catch (err) {
      if (err instanceof FhirVersionConflictError) return false;
      throw err;
    }
  }
}

function updatesOf(changes: OrderHold[]): BundleEntry[] {
  return changes.map(({ read, held }) => updateEntry(held, read.meta?.versionId));
}

function create(resource: Resource): BundleEntry {
  return { resource, request: { method: 'POST', url: resource.resourceType } };
}
