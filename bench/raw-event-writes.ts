import { randomUUID } from 'node:crypto';
import type { BundleEntry, CarePlan, MedicationRequest, Task } from '@medplum/fhirtypes';
import { updateEntry, type FhirClient } from '@kc/fhir';
import { ANSWERED_BY_AN_INFUSION, changeProvenance, THIS_SERVICE } from '@kc/task-states';
import { enrolForBench } from './bench-clinic';

/** One raw transaction's targets: a CarePlan and one of its open Tasks, each at its current version. */
interface Target {
  carePlan: CarePlan;
  task: Task;
}

/**
 * The writes of one follow-up event, sent raw (no service): a proposal MedicationRequest and two Tasks created, an
 * open Task updated to completed and its CarePlan's activity list grown by the two new Tasks (both If-Match), with
 * the shapes the service writes (copied from a plan `$apply` wrote). A like-for-like baseline beside issue 10's
 * (2 conditional Task creates): what the store spends on an event's writes alone, so what an event costs beyond them
 * is the service's (its reads, its rules, BullMQ, HTTP).
 */
export class RawEventWrites {
  private constructor(
    private readonly fhir: FhirClient,
    private readonly shapes: { carePlan: CarePlan; order: MedicationRequest; tasks: [Task, Task] },
  ) {}

  /** Enrols one patient through `$apply` and keeps its plan's resources as the shapes to copy. */
  static async prepare(apiUrl: string, fhir: FhirClient, token: string): Promise<RawEventWrites> {
    const [{ carePlanId }] = await enrolForBench(apiUrl, fhir, token, 1);
    const carePlan = await fhir.read<CarePlan>('CarePlan', carePlanId);
    const tasks = await fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const withOrder = tasks.find((t) => t.focus?.reference?.startsWith('MedicationRequest/'));
    const other = tasks.find((t) => t !== withOrder);
    if (!withOrder || !other) throw new Error('the enrolled plan has no Task with an order and one without');
    const order = await fhir.read<MedicationRequest>('MedicationRequest', withOrder.focus!.reference!.split('/')[1]);
    return new RawEventWrites(fhir, { carePlan, order, tasks: [withOrder, other] });
  }

  /** `count` CarePlans with an open Task each, written before the clock starts (50 plans per transaction). */
  async targets(count: number): Promise<Target[]> {
    const targets: Target[] = [];
    for (let start = 0; start < count; start += 50) {
      const entries: BundleEntry[] = [];
      for (let i = start; i < Math.min(count, start + 50); i++) {
        const carePlanUrl = `urn:uuid:${randomUUID()}`;
        entries.push(
          { fullUrl: carePlanUrl, resource: fresh(this.shapes.carePlan), request: { method: 'POST', url: 'CarePlan' } },
          {
            resource: { ...fresh(this.shapes.tasks[1]), basedOn: [{ reference: carePlanUrl }] },
            request: { method: 'POST', url: 'Task' },
          },
        );
      }
      const written = (await this.fhir.transaction(entries)).entry ?? [];
      for (let k = 0; k < written.length; k += 2)
        targets.push({ carePlan: written[k].resource as CarePlan, task: written[k + 1].resource as Task });
    }
    return targets;
  }

  /** One event's writes against `target`, as one transaction. */
  write({ carePlan, task }: Target): Promise<unknown> {
    const plan = `CarePlan/${carePlan.id}`;
    const orderUrl = `urn:uuid:${randomUUID()}`;
    const newTasks = [`urn:uuid:${randomUUID()}`, `urn:uuid:${randomUUID()}`];
    const [withOrder, other] = this.shapes.tasks;
    const entries: BundleEntry[] = [
      {
        fullUrl: orderUrl,
        resource: { ...fresh(this.shapes.order), basedOn: [{ reference: plan }] },
        request: { method: 'POST', url: 'MedicationRequest' },
      },
      {
        fullUrl: newTasks[0],
        resource: { ...fresh(withOrder), basedOn: [{ reference: plan }], focus: { reference: orderUrl } },
        request: { method: 'POST', url: 'Task' },
      },
      {
        fullUrl: newTasks[1],
        resource: { ...fresh(other), basedOn: [{ reference: plan }] },
        request: { method: 'POST', url: 'Task' },
      },
      updateEntry({ ...task, status: 'completed' }, task.meta!.versionId),
      // What the infusion answered, named (since session 60).
      {
        resource: changeProvenance({
          targets: [{ reference: `Task/${task.id}` }],
          who: THIS_SERVICE,
          activity: ANSWERED_BY_AN_INFUSION,
          now: new Date(),
          reason: 'The infusion charted gave or made moot what it answered',
        }),
        request: { method: 'POST', url: 'Provenance' },
      },
      updateEntry(
        {
          ...carePlan,
          activity: [...(carePlan.activity ?? []), ...newTasks.map((reference) => ({ reference: { reference } }))],
        },
        carePlan.meta!.versionId,
      ),
    ];
    return this.fhir.transaction(entries);
  }
}

/** A copy to create again: no id or version, and identifiers of its own (they are the service's keys). */
function fresh<T extends CarePlan | MedicationRequest | Task>(resource: T): T {
  const copy: T = { ...resource };
  delete copy.id;
  delete copy.meta;
  if (copy.identifier) copy.identifier = copy.identifier.map((i) => ({ ...i, value: `${i.value}:${randomUUID()}` }));
  return copy;
}
