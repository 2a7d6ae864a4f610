import { Controller, Delete, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { Public } from '@kc/auth';
import { badRequest, isResourceId, operationOutcome, OutcomeException, parseBoundedJson } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { isCheckDoneElsewhere, isTaskChangedInEhr } from '@kc/followups';
import { ToDoIndex, WorklistIndex } from '@kc/worklist-index';
import { NotifiedJobs } from './notified-jobs';
import { deletedResourceOf, tasksIn } from './notified-resources';
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
    private readonly jobs: NotifiedJobs,
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
      'Rest-hook: a Procedure, an Observation, a Condition, a Task, a CarePlan, a QuestionnaireResponse, an Appointment, a MedicationRequest, a MedicationAdministration, a DetectedIssue or a Patient (Medplum), or an empty ping (HAPI without payload: triggers a poll)',
  })
  async notify(@Req() req: Request) {
    const raw = rawBodyOf(req);
    this.authenticate(req, raw);
    // Medplum tells of a deletion with the resource's reference in a header and `{}` as the body.
    const deleted = deletedResourceOf(req.header('x-medplum-deleted-resource'));
    if (deleted instanceof Error) throw badRequest(deleted.message);
    if (deleted) return this.heardDeleted(deleted.resourceType, deleted.id);
    if (raw.length === 0) {
      await this.pollTrigger.pollNow();
      return operationOutcome('information', 'informational', 'Empty notification: polling for changes');
    }
    const parsed = parseBoundedJson(raw.toString('utf8'));
    if ('error' in parsed) throw badRequest(parsed.error);
    // Each kind's jobs, then the Tasks brought up to date on the lists.
    const counts: string[] = [];
    let queued = 0;
    for (const kind of this.jobs.kinds) {
      const ids = kind.idsIn(parsed.value);
      for (const id of ids) await kind.enqueue(id);
      counts.push(`${ids.length} ${kind.counted}`);
      queued += ids.length;
    }
    const tasks = tasksIn(parsed.value);
    if (tasks.length) await this.refreshLists(tasks);
    return operationOutcome(
      'information',
      'informational',
      queued || tasks.length
        ? `Queued ${counts.join(', ')}; ${tasks.length} Task(s) brought up to date on the worklist and the to-do list`
        : `Nothing to do: no Task, nor ${this.jobs.kinds.map((k) => k.counted.replace('(s)', '')).join(', ')} in the notification`,
    );
  }

  /**
   * A Task an EHR approved, completed or cancelled joins or leaves the worklist and the to-do list; one an EHR
   * completed while this service still has it open (or an id alone: the jobs read it) goes to the worker, which
   * records a check the EHR did as done; an infusion session an EHR closed by its status has its orders closed and its
   * reminders revoked (since session 43; before, by the 15-minute reconciliation), and a Task it set to be done while it
   * awaited approval here is returned for approval (since session 43; before, it went on the to-do list unapproved). The service's own completions,
   * echoed back, are done already and not queued (a follow-up burst must not fill the maintenance queue with them).
   */
  private async refreshLists(tasks: Parameters<WorklistIndex['refresh']>[0]): Promise<void> {
    // The jobs first: a Task sent by id alone is read back for the lists, and a FHIR server that cannot be read just
    // now must not lose them. The read failing still answers 503 (the server sends it again; the jobs' ids keep one
    // each), so the lists are brought up to date then; before session 55 the jobs were not queued at all.
    for (const task of tasks) {
      const id = typeof task === 'string' ? task : task.id;
      if (!id) continue;
      if (typeof task === 'string' || isCheckDoneElsewhere(task)) await this.completedTasks.enqueue(id);
      if (typeof task === 'string') await this.completedTasks.enqueueTaskChangedInEhr(id);
      else if (isTaskChangedInEhr(task)) await this.completedTasks.enqueueTaskChangedInEhr(id, task.meta?.versionId);
    }
    await WorklistIndex.refreshAll([this.worklist, this.toDo], tasks);
  }

  @Put(':resourceType/:id')
  @HttpCode(202)
  @ApiOperation({
    summary:
      'Rest-hook, HAPI style: PUT {endpoint}/Procedure|Observation|Condition|Task|CarePlan|QuestionnaireResponse|Appointment|MedicationRequest|MedicationAdministration|DetectedIssue|Patient/{id}',
  })
  async notifyResource(@Req() req: Request, @Param('resourceType') resourceType: string, @Param('id') id: string) {
    this.authenticate(req, rawBodyOf(req));
    if (!isResourceId(id)) throw badRequest('Not a valid resource id');
    // By id alone, the status is not known here: each job of the type reads it (a Procedure's two, say).
    const kinds = this.jobs.of(resourceType);
    if (kinds.length) {
      for (const kind of kinds) await kind.enqueue(id);
      return operationOutcome('information', 'informational', `Queued 1 ${resourceType}`);
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
    return operationOutcome('information', 'informational', `Nothing to do for ${resourceType}`);
  }

  @Delete(':resourceType/:id')
  @HttpCode(202)
  @ApiOperation({
    summary:
      'Rest-hook, HAPI style, of a deletion (a Subscription with subscription-send-delete-messages): DELETE {endpoint}/Task|DetectedIssue|PlanDefinition|Appointment|CarePlan|Procedure/{id}',
  })
  async notifyDeleted(@Req() req: Request, @Param('resourceType') resourceType: string, @Param('id') id: string) {
    this.authenticate(req, rawBodyOf(req));
    if (!isResourceId(id)) throw badRequest('Not a valid resource id');
    return this.heardDeleted(resourceType, id);
  }

  /**
   * A resource deleted on the FHIR server: a Task leaves the lists now (not at the next reconciliation), and its job
   * withdraws its order and reminders; a contraindication, a protocol, an appointment, a plan or an infusion gets its
   * job (the worker reads what it was from its history). Other kinds wait for their sweeps, as before.
   */
  private async heardDeleted(resourceType: string, id: string) {
    if (resourceType === 'Task') {
      // What it authorised and has not happened (its order, its reminders) is withdrawn by the worker: queued first,
      // so a FHIR server that cannot be read just now (the lists read the Task back: 503, sent again) does not lose
      // it. Before session 55 it was queued after, and a notifier that gave up left the withdrawal to the sweep.
      await this.completedTasks.enqueueDeletedTask(id);
      await WorklistIndex.refreshAll([this.worklist, this.toDo], [id]);
      return operationOutcome(
        'information',
        'informational',
        'Deleted Task taken off the worklist and the to-do list; what it authorised is being withdrawn',
      );
    }
    const kinds = this.jobs.of(resourceType).filter((k) => k.whenDeleted);
    if (!kinds.length)
      return operationOutcome('information', 'informational', `Nothing to do for a deleted ${resourceType}`);
    for (const kind of kinds) await kind.enqueue(id);
    return operationOutcome('information', 'informational', `Queued the deleted ${resourceType}`);
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
