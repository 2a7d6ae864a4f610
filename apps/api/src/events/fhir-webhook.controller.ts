import { Controller, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { Public } from '@kc/auth';
import { badRequest, isResourceId, operationOutcome, OutcomeException, parseBoundedJson } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import {
  CompletedTaskEventsProducer,
  InfusionEventsProducer,
  PatientRecordEventsProducer,
  ScoreEventsProducer,
  StoppedPlanEventsProducer,
} from '@kc/queue';
import { isCheckDoneElsewhere } from '@kc/followups';
import { ToDoIndex, WorklistIndex } from '@kc/worklist-index';
import {
  administrationIdsIn,
  carePlanIdsIn,
  clearedIssueIdsIn,
  closedOrderIdsIn,
  conditionIdsIn,
  observationIdsIn,
  procedureIdsIn,
  appointmentIdsIn,
  responseIdsIn,
  tasksIn,
} from './notified-resources';
import { PollTrigger } from './poll-trigger';
import { safeEqual, validSignature } from './webhook-signature';

/** Where notifications arrive; create-api-app keeps their bodies as bytes so the signature is checked first. */
export const WEBHOOK_PATH = '/webhooks/fhir';

/**
 * FHIR Subscription rest-hook receiver: completed Procedures and scores become jobs; Tasks someone else wrote (an
 * EHR) go to the worklist index at once instead of at its next reconciliation. FHIR servers cannot mint our JWTs, so
 * a notification authenticates
 * with the shared WEBHOOK_SECRET: as Medplum's X-Signature (HMAC-SHA256 of the raw body) or, for HAPI, whose
 * Subscription.channel.header can only add a fixed header, as `X-Webhook-Token: <secret>`.
 */
@ApiTags('events')
@Public()
@Controller(WEBHOOK_PATH.slice(1))
export class FhirWebhookController {
  constructor(
    private readonly producer: InfusionEventsProducer,
    private readonly scores: ScoreEventsProducer,
    private readonly plans: StoppedPlanEventsProducer,
    private readonly records: PatientRecordEventsProducer,
    private readonly pollTrigger: PollTrigger,
    private readonly worklist: WorklistIndex,
    private readonly toDo: ToDoIndex,
    private readonly completedTasks: CompletedTaskEventsProducer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary:
      'Rest-hook: a Procedure, an Observation, a Condition, a Task, a CarePlan, a QuestionnaireResponse, an Appointment, a MedicationRequest, a MedicationAdministration or a DetectedIssue (Medplum), or an empty ping (HAPI without payload: triggers a poll)',
  })
  async notify(@Req() req: Request) {
    const raw = rawBodyOf(req);
    this.authenticate(req, raw);
    if (raw.length === 0) {
      await this.pollTrigger.pollNow();
      return operationOutcome('information', 'informational', 'Empty notification: polling for changes');
    }
    const parsed = parseBoundedJson(raw.toString('utf8'));
    if ('error' in parsed) throw badRequest(parsed.error);
    const ids = procedureIdsIn(parsed.value);
    for (const id of ids) await this.producer.enqueue(id, 'webhook');
    const scoreIds = observationIdsIn(parsed.value);
    for (const id of scoreIds) await this.scores.enqueue(id, 'webhook');
    // A Condition or an Observation (a blood pressure, a pregnancy status) may contraindicate what awaits approval.
    const conditionIds = conditionIdsIn(parsed.value);
    for (const id of conditionIds) await this.records.enqueue(`Condition/${id}`);
    for (const id of scoreIds) await this.records.enqueue(`Observation/${id}`);
    const tasks = tasksIn(parsed.value);
    if (tasks.length) await this.refreshLists(tasks);
    const planIds = carePlanIdsIn(parsed.value);
    for (const id of planIds) await this.plans.enqueue(id);
    // Answers a portal wrote without the Task: the worker matches them to the patient's open check.
    const responseIds = responseIdsIn(parsed.value);
    for (const id of responseIds) await this.completedTasks.enqueueAnswers(id);
    // Appointments the clinic's scheduling system booked: the worker times the approved sessions from them.
    const appointmentIds = appointmentIdsIn(parsed.value);
    for (const id of appointmentIds) await this.completedTasks.enqueueAppointment(id);
    // An approved session's order closed in the EHR: the worker returns the session to a clinician if nothing replaced it.
    const orderIds = closedOrderIdsIn(parsed.value);
    for (const id of orderIds) await this.completedTasks.enqueueOrderChange(id);
    // A rate recorded at the pump after the follow-ups: the sessions proposed since are proposed again at it.
    const administrationIds = administrationIdsIn(parsed.value);
    for (const id of administrationIds) await this.completedTasks.enqueueAdministration(id);
    // A contraindication resolved in the EHR (overridden there, or withdrawn): what it held is released now.
    const issueIds = clearedIssueIdsIn(parsed.value);
    for (const id of issueIds) await this.records.enqueue(`DetectedIssue/${id}`);
    const queued =
      ids.length ||
      scoreIds.length ||
      tasks.length ||
      planIds.length ||
      conditionIds.length ||
      responseIds.length ||
      appointmentIds.length ||
      orderIds.length ||
      administrationIds.length ||
      issueIds.length;
    return operationOutcome(
      'information',
      'informational',
      queued
        ? `Queued ${ids.length} infusion event(s), ${scoreIds.length} Observation(s), ${conditionIds.length} Condition(s), ${planIds.length} CarePlan(s), ${responseIds.length} QuestionnaireResponse(s), ${appointmentIds.length} Appointment(s), ${orderIds.length} closed order(s), ${administrationIds.length} MedicationAdministration(s) and ${issueIds.length} resolved DetectedIssue(s); ${tasks.length} Task(s) brought up to date on the worklist and the to-do list`
        : 'Nothing to do: no Procedure, Observation, Condition, Task, CarePlan, QuestionnaireResponse, Appointment, MedicationAdministration, closed MedicationRequest or resolved DetectedIssue in the notification',
    );
  }

  /**
   * A Task an EHR approved, completed or cancelled joins or leaves the worklist and the to-do list; one an EHR
   * completed while this service still has it open (or an id alone: the job reads it) goes to the worker, which
   * records a check the EHR did as done. The service's own completions, echoed back, are done already and not queued
   * (a follow-up burst must not fill the maintenance queue with them).
   */
  private async refreshLists(tasks: Parameters<WorklistIndex['refresh']>[0]): Promise<void> {
    await WorklistIndex.refreshAll([this.worklist, this.toDo], tasks);
    for (const task of tasks)
      if (typeof task === 'string') await this.completedTasks.enqueue(task);
      else if (task.id && isCheckDoneElsewhere(task)) await this.completedTasks.enqueue(task.id);
  }

  @Put(':resourceType/:id')
  @HttpCode(202)
  @ApiOperation({
    summary:
      'Rest-hook, HAPI style: PUT {endpoint}/Procedure|Observation|Condition|Task|CarePlan|QuestionnaireResponse|Appointment|MedicationRequest|MedicationAdministration|DetectedIssue/{id}',
  })
  async notifyResource(@Req() req: Request, @Param('resourceType') resourceType: string, @Param('id') id: string) {
    this.authenticate(req, rawBodyOf(req));
    if (!isResourceId(id)) throw badRequest('Not a valid resource id');
    if (resourceType === 'Observation') {
      await this.scores.enqueue(id, 'webhook');
      await this.records.enqueue(`Observation/${id}`);
      return operationOutcome('information', 'informational', 'Queued 1 Observation');
    }
    if (resourceType === 'Condition') {
      await this.records.enqueue(`Condition/${id}`);
      return operationOutcome('information', 'informational', 'Queued 1 Condition');
    }
    if (resourceType === 'CarePlan') {
      await this.plans.enqueue(id);
      return operationOutcome('information', 'informational', 'Queued 1 CarePlan');
    }
    if (resourceType === 'QuestionnaireResponse') {
      await this.completedTasks.enqueueAnswers(id);
      return operationOutcome('information', 'informational', 'Queued 1 QuestionnaireResponse');
    }
    if (resourceType === 'Appointment') {
      await this.completedTasks.enqueueAppointment(id);
      return operationOutcome('information', 'informational', 'Queued 1 Appointment');
    }
    if (resourceType === 'MedicationAdministration') {
      await this.completedTasks.enqueueAdministration(id);
      return operationOutcome('information', 'informational', 'Queued 1 MedicationAdministration');
    }
    if (resourceType === 'DetectedIssue') {
      // With or without a body: the job reads the issue and releases its plans' holds when it no longer holds them back.
      await this.records.enqueue(`DetectedIssue/${id}`);
      return operationOutcome('information', 'informational', 'Queued 1 DetectedIssue');
    }
    if (resourceType === 'MedicationRequest') {
      // With or without a body: the job reads the order and the Tasks naming it, and decides (an open order, or one of no
      // session, changes nothing).
      await this.completedTasks.enqueueOrderChange(id);
      return operationOutcome('information', 'informational', 'Queued 1 MedicationRequest');
    }
    if (resourceType === 'Task') {
      // HAPI sends the Task as the body when the Subscription has a payload; without one it is read back.
      const body = parseBoundedJson(rawBodyOf(req).toString('utf8') || 'null');
      const sent = 'value' in body ? tasksIn(body.value).find((t) => t.id === id) : undefined;
      await this.refreshLists([sent ?? id]);
      return operationOutcome(
        'information',
        'informational',
        'Task brought up to date on the worklist and the to-do list',
      );
    }
    if (resourceType !== 'Procedure')
      return operationOutcome('information', 'informational', `Nothing to do for ${resourceType}`);
    await this.producer.enqueue(id, 'webhook');
    return operationOutcome('information', 'informational', 'Queued 1 infusion event');
  }

  private authenticate(req: Request, raw: Buffer): void {
    const secret = this.config.webhookSecret;
    if (!secret)
      throw new OutcomeException(503, 'not-supported', 'Webhooks are disabled: WEBHOOK_SECRET is not configured');
    const token = req.header('x-webhook-token');
    if (token && safeEqual(token, secret)) return;
    if (raw.length > 0 && validSignature(raw, req.header('x-signature'), secret)) return;
    throw new OutcomeException(401, 'security', 'Webhook signature or token missing or invalid');
  }
}

/** The body as the raw parser left it (bytes); empty when there was none. */
function rawBodyOf(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}
