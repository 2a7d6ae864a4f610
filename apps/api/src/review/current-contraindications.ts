import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, DetectedIssue, Task } from '@medplum/fhirtypes';
import { ContraindicationRecorder, OrderHolds } from '@kc/nest-core';
import { hasContraindicationChecks, protocolActionOf } from '@kc/protocols';
import { patientIdOf } from '@kc/task-states';
import { ApplyService } from '../protocols/apply.service';
import { implicating } from './contraindication-guard';

/**
 * The contraindication checks, asked again when a clinician authorises care: the Task was proposed when the patient
 * was eligible, and a pregnancy or a blood pressure recorded since (before any infusion event made the follow-up
 * worker look) must stop the order. One more FHIR request (the patient's data, in one batch), only for a Task whose
 * protocol action a contraindication check gates.
 */
@Injectable()
export class CurrentContraindications {
  private readonly logger = new Logger(CurrentContraindications.name);

  constructor(
    private readonly plans: ApplyService,
    private readonly recorder: ContraindicationRecorder,
    private readonly holds: OrderHolds,
  ) {}

  /**
   * The contraindications found now that gate the Task, that no clinician overrode and that are not on record for
   * the plan yet, each recorded as the plan's DetectedIssue (the one $apply and the follow-ups write for that code):
   * what the approval guard then refuses on, and what the clinician can override. Those already on record were
   * judged by the guard before this. A new one also holds the orders approved under the plan before (OrderHolds),
   * as the worker's sweep would.
   */
  async found(task: Task, carePlan: CarePlan | undefined, issues: DetectedIssue[]): Promise<DetectedIssue[]> {
    const actionId = protocolActionOf(task);
    const patientId = patientIdOf(task);
    const canonical = carePlan?.instantiatesCanonical?.[0];
    if (!carePlan || !actionId || !patientId || !canonical) return [];
    // A plan applied inline has its definition nowhere to read again: its checks ran at $apply, and cannot now.
    const known = await this.plans.knownPlan(canonical);
    if (!known || !hasContraindicationChecks(known.plan, actionId, known.definitions)) return [];
    const { plan, definitions } = known;
    const recorded = await this.recorder.record({
      plan,
      resolver: definitions,
      carePlan,
      patientId,
      actionIds: [actionId],
      issues: implicating(issues, `CarePlan/${carePlan.id}`),
      foundWhen: `when a clinician was to approve “${task.description ?? task.code?.coding?.[0]?.display ?? 'a task'}”`,
    });
    for (const { issue, created } of recorded)
      if (created) this.logger.warn({ msg: 'contraindication found at approval', task: task.id, issue: issue.id });
    if (recorded.length)
      await this.holds.hold({
        carePlanId: carePlan.id!,
        plan,
        resolver: definitions,
        issues: [...issues, ...recorded.map((r) => r.issue)],
      });
    return recorded.map((r) => r.issue);
  }
}
