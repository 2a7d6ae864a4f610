import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Condition, DetectedIssue, Observation } from '@medplum/fhirtypes';
import { isResourceId } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { carePlanHoldsCare, carePlanReferenceOf } from '@kc/followups';
import { ContraindicationRecorder } from '@kc/nest-core';
import { hasContraindicationChecks, ProtocolCatalog, protocolActionOf } from '@kc/protocols';
import { patientIdOf } from '@kc/task-states';
import { WaitingTasksReader, type WaitingTasks } from './waiting-tasks';

/** A plan with Tasks awaiting approval: what the sweep needs to check it. */
interface WaitingPlan {
  carePlan: CarePlan;
  patientId: string;
  actionIds: Set<string>;
  issues: DetectedIssue[];
}

/**
 * The contraindication checks, asked again for every plan with Tasks awaiting approval (with the overdue sweep,
 * OVERDUE_SWEEP_CRON): a pregnancy or a blood pressure recorded since the Tasks were proposed is recorded as the
 * plan's DetectedIssue, so the clinician page shows it before anyone tries to approve (the approval itself checks
 * again, and refuses). One read of the waiting Tasks with their plans and issues, then one batch of patient data
 * per plan whose waiting Tasks a check gates; nothing is written for a plan that is clear.
 */
@Injectable()
export class ContraindicationSweep {
  private readonly logger = new Logger(ContraindicationSweep.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
    private readonly recorder: ContraindicationRecorder,
    private readonly reader: WaitingTasksReader,
  ) {}

  /** Every plan with Tasks awaiting approval (with the overdue sweep), or those of a read already made. */
  async sweep(now = new Date(), waiting?: WaitingTasks): Promise<{ plans: number; recorded: number }> {
    return this.check(waiting ?? (await this.reader.all()), now);
  }

  /**
   * The plans of one record's patient, when a notification says a Condition or an Observation changed (a pregnancy
   * recorded, a blood pressure taken): checked now rather than at the next sweep. A record that is gone, or names
   * no patient, checks nothing.
   */
  async recheckFor(reference: string, now = new Date()): Promise<{ plans: number; recorded: number }> {
    const [type, id] = reference.split('/');
    if ((type !== 'Condition' && type !== 'Observation') || !isResourceId(id)) return { plans: 0, recorded: 0 };
    const record = await this.fhir.readIfExists<Condition | Observation>(type, id);
    const patient = record?.subject?.reference;
    if (!patient || !/^Patient\/[^/]+$/.test(patient)) return { plans: 0, recorded: 0 };
    return this.check(await this.reader.read({ patient }), now);
  }

  private async check(waiting: WaitingTasks, now: Date): Promise<{ plans: number; recorded: number }> {
    let plans = 0;
    let recorded = 0;
    for (const { carePlan, patientId, actionIds, issues } of waitingPlans(waiting).values()) {
      const plan = this.catalog.planOf(carePlan);
      const gated = plan ? [...actionIds].filter((id) => hasContraindicationChecks(plan, id, this.catalog)) : [];
      if (!plan || !gated.length) continue;
      plans++;
      const found = await this.recorder.record(
        {
          plan,
          resolver: this.catalog,
          carePlan,
          patientId,
          actionIds: gated,
          issues,
          foundWhen: 'on the patient’s data while Tasks awaited approval',
        },
        now,
      );
      recorded += found.filter((f) => f.created).length;
    }
    if (recorded) this.logger.warn({ msg: 'contraindications found while Tasks awaited approval', recorded, plans });
    return { plans, recorded };
  }
}

/** The plans (still holding care) with Tasks awaiting approval, each with its patient, actions and issues. */
function waitingPlans({ tasks, carePlans, issues }: WaitingTasks): Map<string, WaitingPlan> {
  const waiting = new Map<string, WaitingPlan>();
  for (const task of tasks) {
    const ref = carePlanReferenceOf(task);
    const carePlan = ref ? carePlans.get(ref) : undefined;
    const actionId = protocolActionOf(task);
    const patientId = patientIdOf(task);
    if (!ref || !carePlan || !actionId || !patientId || !carePlanHoldsCare(carePlan).ok) continue;
    const entry = waiting.get(ref) ?? {
      carePlan,
      patientId,
      actionIds: new Set<string>(),
      issues: issues.get(ref) ?? [],
    };
    entry.actionIds.add(actionId);
    waiting.set(ref, entry);
  }
  return waiting;
}
