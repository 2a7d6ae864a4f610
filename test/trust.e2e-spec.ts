import request from 'supertest';
import { ContraindicationOverrideService } from '../apps/api/src/review/contraindication-override.service';
import { AnsweredOrdersSweep } from '../apps/worker/src/maintenance/answered-orders-sweep';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { DeletedTasks } from '../apps/worker/src/maintenance/deleted-tasks';
import { ClearedIssuesPoller } from '../apps/worker/src/maintenance/cleared-issues-poller';
import { PlanChanges } from '../apps/worker/src/maintenance/plan-changes';
import { StoppedPlanSweep } from '../apps/worker/src/maintenance/stopped-plan-sweep';
import { administrationRecordedJobId, recheckContraindicationsJobId, withdrawStoppedPlanJobId } from '@kc/queue';
import { orderKeySearch, transition } from '@kc/task-states';
import { WorklistIndex } from '@kc/worklist-index';
import { OrderHolds } from '@kc/nest-core';
import { FhirClient } from '@kc/fhir';
import type {
  ActivityDefinition,
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  MedicationRequest,
  OperationOutcome,
  Parameters,
  Patient,
  PlanDefinition,
  Procedure,
  Provenance,
  Resource,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import { administrationOf, ehrReplacementOf } from './fixtures/orders';
import { activeCondition, bloodPressure, bodyWeight, PREGNANCY, PSYCHOSIS } from './fixtures/patient-data';
import {
  actionOf,
  completeInfusion,
  followUpTasks,
  maintenanceJobDone,
  overrideIssue,
  postWebhook,
  reportInfusion,
  reviewedInEhr,
  waitFor,
} from './support/clinic';
import { expectEverythingValid } from './support/fhir-validation';
import { startTestService, type TestService } from './support/test-service';

/**
 * Clinic scenarios for the trust issue: a contraindicated patient never gets an order or an approvable Task,
 * approval reaches the order, every decision leaves a Provenance, and any R4 PlanDefinition applies.
 */
describe('trustworthy plans', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(async () => {
    // Everything the scenarios wrote is valid R4.
    expect(await expectEverythingValid(service)).toBeGreaterThan(0);
    await service.stop();
  });

  const clinician = () => service.as('clinician');

  async function patient(history: {
    weightKg?: number;
    bp?: [number, number];
    conditions?: (readonly [string, string])[];
  }) {
    const { resource } = await service.fhir.create<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Trust', given: ['Pat'] }],
      birthDate: '1975-06-01',
    });
    const ref = `Patient/${resource.id}`;
    if (history.weightKg !== undefined)
      await service.fhir.create(bodyWeight(history.weightKg, '2026-11-01T09:00:00Z', ref));
    if (history.bp) await service.fhir.create(bloodPressure(history.bp[0], history.bp[1], '2026-11-10T09:00:00Z', ref));
    for (const [code, display] of history.conditions ?? [])
      await service.fhir.create(activeCondition(code, display, ref));
    return ref;
  }

  async function apply(subject: string, plan = 'ketamine-low-dose-series', persist = true) {
    const res = await request(service.url)
      .post(`/fhir/PlanDefinition/${plan}/$apply`)
      .set(clinician())
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'subject', valueReference: { reference: subject } },
          { name: 'startDate', valueDate: '2027-01-01' },
          { name: 'persist', valueBoolean: persist },
        ],
      })
      .expect(200);
    // The R4 answer: the CarePlan itself, with the engine's warnings as a contained OperationOutcome.
    const carePlan = res.body as CarePlan;
    const outcome = carePlan.contained!.find((r) => r.resourceType === 'OperationOutcome') as OperationOutcome;
    return { carePlan, outcome };
  }

  /** An eligible 80 kg patient's persisted plan, and its first-session Task (awaiting approval). */
  async function eligibleWithInfusionTask() {
    const subject = await patient({ weightKg: 80, bp: [124, 78] });
    const { carePlan } = await apply(subject);
    const task = (await onPlan<Task>('Task', carePlan.id!)).find((t) => actionOf(t) === 'infusion-session')!;
    return { subject, carePlan, task };
  }

  /** Resources based on a CarePlan (R4 MedicationRequest has no based-on search parameter: filtered here). */
  async function onPlan<T extends Resource>(type: 'Task' | 'MedicationRequest', carePlanId: string): Promise<T[]> {
    if (type === 'Task') return service.fhir.searchAll<T>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    const all = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      subject: carePlan.subject.reference!,
    });
    return all.filter((m) => m.basedOn?.some((b) => b.reference === `CarePlan/${carePlanId}`)) as unknown as T[];
  }

  /**
   * Every decision that would authorise the Task's care ($approve, $reschedule in its window, $bulk-approve) is
   * refused with 422; the OperationOutcome of the first two matches `why` (its words for the clinician, then its
   * references for the integrator).
   */
  async function expectAuthorisingRefused(task: Task, why: RegExp) {
    const window = { start: task.restriction!.period!.start, end: task.restriction!.period!.end };
    for (const [path, body] of [
      [`/tasks/${task.id}/$approve`, { versionId: task.meta!.versionId }],
      [`/tasks/${task.id}/$reschedule`, { versionId: task.meta!.versionId, ...window }],
    ] as const) {
      const refused = await request(service.url).post(path).set(clinician()).send(body).expect(422);
      const [issue] = (refused.body as OperationOutcome).issue;
      expect([issue.details?.text, issue.diagnostics, ...(issue.expression ?? [])].join(' ')).toMatch(why);
    }
    const bulk = await request(service.url)
      .post('/tasks/$bulk-approve')
      .set(clinician())
      .send({ tasks: [{ id: task.id, versionId: task.meta!.versionId }] })
      .expect(200);
    expect(bulk.body.results[0]).toMatchObject({ result: 'refused', status: 422 });
  }

  describe.each([
    [
      'pregnant',
      { weightKg: 64, bp: [112, 70] as [number, number], conditions: [PREGNANCY] },
      'pregnancy',
      'Condition',
    ],
    ['BP 195/115', { weightKg: 82, bp: [195, 115] as [number, number] }, 'uncontrolled-hypertension', 'Observation'],
    [
      'psychosis history',
      { weightKg: 75, bp: [120, 80] as [number, number], conditions: [PSYCHOSIS] },
      'psychosis',
      'Condition',
    ],
  ])('a %s patient', (_name, history, code, evidenceType) => {
    it('gets a DetectedIssue naming the contraindication and its evidence, and no order, no Task, no CommunicationRequest', async () => {
      const subject = await patient(history);
      const { carePlan, outcome } = await apply(subject);
      const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        implicated: `CarePlan/${carePlan.id}`,
      });
      expect(issues.map((i) => i.code?.coding?.[0].code)).toEqual([code]);
      expect(issues[0].evidence?.[0].detail?.[0].reference).toMatch(new RegExp(`^${evidenceType}/`));
      expect(await onPlan('MedicationRequest', carePlan.id!)).toHaveLength(0);
      expect(await onPlan('Task', carePlan.id!)).toHaveLength(0);
      expect(await service.fhir.searchAll('CommunicationRequest', { subject })).toHaveLength(0);
      expect(await service.fhir.searchAll('MedicationRequest', { subject })).toHaveLength(0);
      expect(outcome.issue.find((i) => i.code === 'business-rule')?.details?.coding?.[0].code).toBe(code);
      // The CarePlan cannot be activated without an override.
      const blocked = await request(service.url)
        .post(`/careplans/${carePlan.id}/$activate`)
        .set(clinician())
        .send({ versionId: carePlan.meta!.versionId })
        .expect(422);
      expect(blocked.body.issue[0].expression).toEqual([`DetectedIssue/${issues[0].id}`]);
      expect(blocked.body.issue[0].diagnostics).toContain(`DetectedIssue/${issues[0].id}`);
    });
  });

  it('missing weight: the infusion is proposed without a dose and the answer asks for one', async () => {
    const subject = await patient({ bp: [120, 80] });
    const { carePlan, outcome } = await apply(subject, 'ketamine-low-dose-series', false);
    const proposal = carePlan.contained!.find((r) => r.resourceType === 'MedicationRequest') as MedicationRequest;
    expect(proposal.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value).toBeUndefined();
    expect(outcome.issue.some((i) => i.severity === 'warning' && /body weight/.test(i.details?.text ?? ''))).toBe(true);
  });

  it('contraindicated, then overridden with a reason: mitigation with If-Match, a Provenance, and the held-back Tasks proposed', async () => {
    const subject = await patient({ weightKg: 70, conditions: [PREGNANCY] });
    const { carePlan } = await apply(subject);
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    await request(service.url)
      .post(`/detected-issues/${issue.id}/$override`)
      .set(clinician())
      .send({ reason: 'Negative test today' })
      .expect(428);
    await request(service.url)
      .post(`/detected-issues/${issue.id}/$override`)
      .set(clinician())
      .set('If-Match', 'W/"999"')
      .send({ reason: 'Negative test today' })
      .expect(412);
    await request(service.url)
      .post(`/detected-issues/${issue.id}/$override`)
      .set(clinician())
      .set('If-Match', `W/"${issue.meta!.versionId}"`)
      .send({})
      .expect(400);
    const overridden = await request(service.url)
      .post(`/detected-issues/${issue.id}/$override`)
      .set(clinician())
      .set('If-Match', `W/"${issue.meta!.versionId}"`)
      .send({ reason: 'Pregnancy test negative today; condition recorded in error' })
      .expect(200);
    expect(overridden.body.mitigation[0]).toMatchObject({
      author: { reference: 'Practitioner/dr-test' },
      action: { text: expect.stringContaining('negative today') },
    });
    const provenance = await service.fhir.searchAll<Provenance>('Provenance', {
      target: `DetectedIssue/${issue.id}`,
    });
    expect(provenance.map((p) => p.agent[0].who?.reference)).toEqual(['Practitioner/dr-test']);
    const tasks = await onPlan<Task>('Task', carePlan.id!);
    expect(tasks.map(actionOf).sort()).toEqual(['infusion-session', 'patient-instructions']);
    expect(tasks.every((t) => t.status === 'draft')).toBe(true);
    // Overriding twice is a conflict, not a second mitigation.
    await request(service.url)
      .post(`/detected-issues/${issue.id}/$override`)
      .set(clinician())
      .send({ versionId: overridden.body.meta.versionId, reason: 'again' })
      .expect(409);
  });

  // Since session 50; before, the plan was applied again under a key from its start date, so a start the EHR had moved
  // wrote a second plan with the Tasks under it (clinic day seeds 3196, 3201, 3203).
  it('an override on a plan whose start the EHR moved proposes the held-back Tasks under that plan, not a second one', async () => {
    const subject = await patient({ weightKg: 70, conditions: [PREGNANCY] });
    const { carePlan } = await apply(subject);
    const read = await service.fhir.read<CarePlan>('CarePlan', carePlan.id!);
    await service.fhir.update<CarePlan>({ ...read, period: { start: '2027-02-01T09:00:00.000Z' } });
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    await overrideIssue(service, issue, 'Pregnancy test negative today').expect(200);
    expect((await service.fhir.searchAll<CarePlan>('CarePlan', { subject })).map((c) => c.id)).toEqual([carePlan.id]);
    const tasks = await onPlan<Task>('Task', carePlan.id!);
    expect(tasks.map(actionOf).sort()).toEqual(['infusion-session', 'patient-instructions']);
    // Timed from the start as it is now: the first session from the day after.
    expect(tasks.find((t) => actionOf(t) === 'infusion-session')?.restriction?.period?.start).toBe(
      '2027-02-02T09:00:00.000Z',
    );
  });

  it('an override cut short after it was recorded (crash before the held-back actions were proposed) is finished by sending it again', async () => {
    const subject = await patient({ weightKg: 70, conditions: [PREGNANCY] });
    const { carePlan } = await apply(subject);
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    const caller = {
      id: 'dr-test',
      roles: ['clinician' as const],
      fhirUser: 'Practitioner/dr-test',
      display: 'Dr Test',
    };
    // The override's transaction landed; the process died before proposing the held-back actions.
    await service.app.get(ContraindicationOverrideService).override({
      issue,
      seenVersion: issue.meta!.versionId!,
      caller,
      reason: 'Pregnancy test negative today',
      regenerate: false,
    });
    expect(await onPlan<Task>('Task', carePlan.id!)).toEqual([]);
    // Another reason on the version already overridden is not that retry: a new override on a stale version.
    const other = await request(service.url)
      .post(`/detected-issues/${issue.id}/$override`)
      .set(clinician())
      .set('If-Match', `W/"${issue.meta!.versionId}"`)
      .send({ reason: 'Not pregnant' })
      .expect(412);
    expect(other.body.issue[0].details.text).toBe(
      'This contraindication has changed since you loaded it; reload it and decide again',
    );
    expect(await onPlan<Task>('Task', carePlan.id!)).toEqual([]);
    // The clinician's client never saw the answer and sends the same override again.
    await request(service.url)
      .post(`/detected-issues/${issue.id}/$override`)
      .set(clinician())
      .set('If-Match', `W/"${issue.meta!.versionId}"`)
      .send({ reason: 'Pregnancy test negative today' })
      .expect(200);
    const tasks = await onPlan<Task>('Task', carePlan.id!);
    expect(tasks.map(actionOf).sort()).toEqual(['infusion-session', 'patient-instructions']);
    expect(await service.fhir.searchAll('Provenance', { target: `DetectedIssue/${issue.id}` })).toHaveLength(1);
  });

  it('approve -> an active order signed by the approving practitioner, based on the CarePlan and the proposal, with its Provenance', async () => {
    const { subject, carePlan, task: infusionTask } = await eligibleWithInfusionTask();
    const proposalRef = infusionTask.focus!.reference!;
    expect(proposalRef).toMatch(/^MedicationRequest\//);
    // An EHR reading only status and intent sees nothing actionable before approval.
    expect(infusionTask.status).toBe('draft');
    const proposal = await service.fhir.read<MedicationRequest>('MedicationRequest', proposalRef.split('/')[1]);
    expect([proposal.status, proposal.intent]).toEqual(['draft', 'proposal']);
    expect(proposal.basedOn?.[0].reference).toBe(`CarePlan/${carePlan.id}`);

    const approved = await request(service.url)
      .post(`/tasks/${infusionTask.id}/$approve`)
      .set(clinician())
      .set('If-Match', `W/"${infusionTask.meta!.versionId}"`)
      .send({})
      .expect(200);
    expect(approved.body.status).toBe('ready');
    const orders = (await onPlan<MedicationRequest>('MedicationRequest', carePlan.id!)).filter(
      (m) => m.intent === 'order',
    );
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({
      status: 'active',
      intent: 'order',
      requester: { reference: 'Practitioner/dr-test' },
      basedOn: [{ reference: `CarePlan/${carePlan.id}` }, { reference: proposalRef }],
    });
    expect(orders[0].authoredOn).toBeDefined();
    expect(orders[0].dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value).toBe(40);
    const provenance = await service.fhir.searchAll<Provenance>('Provenance', {
      target: `Task/${infusionTask.id}`,
    });
    expect(provenance[0].target.map((t) => t.reference)).toContain(`MedicationRequest/${orders[0].id}`);
    // The EHR read API returns the order.
    const ehr = await request(service.url)
      .get('/fhir/MedicationRequest')
      .query({ subject, intent: 'order' })
      .set(service.as('integration'))
      .expect(200);
    expect(ehr.body.entry.map((e: { resource: MedicationRequest }) => e.resource.id)).toEqual([orders[0].id]);
    // Approving again is an invalid transition, and writes no second order.
    await request(service.url)
      .post(`/tasks/${infusionTask.id}/$approve`)
      .set(clinician())
      .send({ versionId: approved.body.meta.versionId })
      .expect(409);
    expect(
      (await onPlan<MedicationRequest>('MedicationRequest', carePlan.id!)).filter((m) => m.intent === 'order'),
    ).toHaveLength(1);
  });

  it('approving an infusion needs a prescriber: a token without fhirUser is refused and nothing is written', async () => {
    const { task } = await eligibleWithInfusionTask();
    const { mintToken } = await import('@kc/auth');
    const { TEST_JWT_SECRET } = await import('./support/test-service');
    const anonymous = await mintToken({ sub: 'kiosk', roles: ['clinician'] }, { secret: TEST_JWT_SECRET });
    const res = await request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set('Authorization', `Bearer ${anonymous}`)
      .send({ versionId: task.meta!.versionId })
      .expect(422);
    expect(res.body.issue[0].details.text).toMatch(/prescriber/);
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('draft');
  });

  it('reject -> the proposal is cancelled with the reason', async () => {
    const { carePlan, task } = await eligibleWithInfusionTask();
    await request(service.url)
      .post(`/tasks/${task.id}/$reject`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId, reason: 'Patient declined' })
      .expect(200);
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      task.focus!.reference!.split('/')[1],
    );
    expect(proposal).toMatchObject({ status: 'cancelled', statusReason: { text: 'Patient declined' } });
    expect(
      (await onPlan<MedicationRequest>('MedicationRequest', carePlan.id!)).filter((m) => m.status === 'active'),
    ).toHaveLength(0);
  });

  it('rejecting an approved session withdraws its order: cancelled with the reason, named by the decision', async () => {
    const { subject, task, order } = await approvedInfusion();
    await request(service.url)
      .post(`/tasks/${task.id}/$reject`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId, reason: 'Patient moved away' })
      .expect(200);
    const withdrawn = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(withdrawn).toMatchObject({ status: 'cancelled', statusReason: { text: 'Patient moved away' } });
    expect(await activeOrdersOf(subject)).toEqual([]);
    const provenance = (await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${task.id}` })).find(
      (p) => p.activity?.text === 'reject',
    )!;
    expect(provenance.target.map((t) => t.reference)).toContain(`MedicationRequest/${order.id}`);
  });

  it('an approved session the pump has begun is not rejected (409): its order stays, the infusion under way', async () => {
    const { task, order } = await approvedInfusion();
    await service.fhir.create(administrationOf(order, 'in-progress', { start: '2027-01-02T09:00:00Z' }));
    // Before, the order was cancelled mid-infusion, and the infusion's record could not complete a rejected Task.
    const refused = await request(service.url)
      .post(`/tasks/${task.id}/$reject`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId, reason: 'Patient unwell' })
      .expect(409);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(
      /^This session has begun \(the pump recorded it at 2027-01-02T09:00:00Z\): stop it at the pump/,
    );
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
  });

  it('a rejection cancels every open order of its session (two, as a build before session 36 could write)', async () => {
    const { subject, task, order } = await approvedInfusion();
    const { id: _id, meta: _meta, ...copy } = order;
    const { resource: second } = await service.fhir.create<MedicationRequest>(copy);
    await request(service.url)
      .post(`/tasks/${task.id}/$reject`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId, reason: 'Patient moved away' })
      .expect(200);
    for (const o of [order, second])
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', o.id!)).status).toBe('cancelled');
    expect(await activeOrdersOf(subject)).toEqual([]);
  });

  it('each infusion fulfils the Task that planned it; a completed Task can be neither approved nor rejected', async () => {
    const subject = await patient({ weightKg: 80, bp: [124, 78] });
    const { carePlan } = await apply(subject);
    const enrolment = { patient: subject, carePlanId: carePlan.id! };
    const first = (await onPlan<Task>('Task', carePlan.id!)).find((t) => actionOf(t) === 'infusion-session')!;
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    const done = await waitFor(async () => {
      const task = await service.fhir.read<Task>('Task', first.id!);
      return task.status === 'completed' && task;
    }, 'the first-session Task to be fulfilled');
    expect(done.businessStatus?.coding?.[0].code).toBe('done');
    expect(done.output?.[0].valueReference?.reference).toBe(`Procedure/${procedureId}`);
    await request(service.url)
      .post(`/tasks/${first.id}/$approve`)
      .set(clinician())
      .send({ versionId: done.meta!.versionId })
      .expect(409);

    // The next infusion fulfils the next-session Task the first one planned.
    const followUps = await waitFor(async () => {
      const found = await followUpTasks(service, procedureId);
      return found.length === 2 && found;
    }, 'follow-ups');
    // Every generated Task is reachable from its CarePlan, each listed once.
    const listed = (await service.fhir.read<CarePlan>('CarePlan', carePlan.id!)).activity!.map(
      (a) => a.reference!.reference,
    );
    expect(listed.filter((r) => followUps.some((t) => `Task/${t.id}` === r))).toHaveLength(2);
    expect(new Set(listed).size).toBe(listed.length);
    const next = followUps.find((t) => actionOf(t) === 'next-induction-session')!;
    const second = await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z');
    await reportInfusion(service, second);
    const closed = await waitFor(async () => {
      const task = await service.fhir.read<Task>('Task', next.id!);
      return task.status === 'completed' && task;
    }, 'the next-session Task to be fulfilled');
    await request(service.url)
      .post(`/tasks/${next.id}/$reject`)
      .set(clinician())
      .send({ versionId: closed.meta!.versionId, reason: 'too late' })
      .expect(409);
  });

  it('the reconciliation closes orders left open by Tasks closed before session 17 (or behind the service’s back)', async () => {
    const given = await approvedInfusion();
    const declined = await approvedInfusion();
    const open = await approvedInfusion();
    // As builds before session 17 left them: the Task closed, its order still active.
    const now = new Date();
    await service.fhir.update(
      transition(given.task, { event: 'complete', now, output: { reference: 'Procedure/earlier' } }),
      { ifMatch: given.task.meta!.versionId },
    );
    await service.fhir.update(transition(declined.task, { event: 'reject', now, reason: 'Patient declined' }), {
      ifMatch: declined.task.meta!.versionId,
    });
    const sweep = service.app.get(AnsweredOrdersSweep);
    expect((await sweep.sweep()).closed).toBeGreaterThanOrEqual(2);
    const read = (o: MedicationRequest) => service.fhir.read<MedicationRequest>('MedicationRequest', o.id!);
    expect((await read(given.order)).status).toBe('completed');
    expect(await read(declined.order)).toMatchObject({
      status: 'cancelled',
      statusReason: { text: 'Patient declined' },
    });
    expect((await read(open.order)).status).toBe('active');
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${given.order.id}` })
    ).filter((p) => p.activity?.text === 'close the order of a closed Task');
    expect(provenance.agent[0].who?.identifier?.value).toBe('ketamine-careplans');
    // Once: the next run finds them closed.
    const version = (await read(given.order)).meta?.versionId;
    await sweep.sweep();
    expect((await read(given.order)).meta?.versionId).toBe(version);
  });

  it('an infusion closes the orders it answers: the given session completed, the one it made moot cancelled', async () => {
    // High-dose: each infusion offers a next session and a booster; the next infusion fulfils one, supersedes the other.
    const subject = await patient({ weightKg: 80, bp: [124, 78] });
    const { carePlan } = await apply(subject, 'ketamine-high-dose-as-needed');
    const enrolment = { patient: subject, carePlanId: carePlan.id! };
    const approve = async (task: Task) =>
      request(service.url)
        .post(`/tasks/${task.id}/$approve`)
        .set(clinician())
        .send({ versionId: task.meta!.versionId })
        .expect(200);
    const orderOf = async (task: Task) => {
      const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
        identifier: `https://ketamine-careplans.example/fhir/NamingSystem/order-key|Task/${task.id}`,
      });
      return order;
    };
    const session = (await onPlan<Task>('Task', carePlan.id!)).find((t) => actionOf(t) === 'infusion-session')!;
    await approve(session);
    expect((await orderOf(session)).status).toBe('active');

    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    expect(await reportInfusion(service, first)).toMatchObject({ fulfilled: 1, ordersClosed: 1 });
    expect((await orderOf(session)).status).toBe('completed');
    // What an EHR asking for the orders still to be given finds: none, until the next ones are approved.
    expect(await activeOrdersOf(subject)).toEqual([]);

    const offered = (await followUpTasks(service, first)).filter((t) => actionOf(t) !== 'post-infusion-check');
    expect(offered.map(actionOf).sort()).toEqual(['maintenance-booster', 'next-induction-session']);
    for (const task of offered) await approve(task);
    expect((await activeOrdersOf(subject)).length).toBe(2);
    const second = await completeInfusion(service, enrolment, '2027-01-20T10:00:00.000Z');
    expect(await reportInfusion(service, second)).toMatchObject({ fulfilled: 1, superseded: 1, ordersClosed: 2 });
    const answered = await Promise.all(
      offered.map(
        async (task) => [(await service.fhir.read<Task>('Task', task.id!)).status, await orderOf(task)] as const,
      ),
    );
    expect(answered.map(([task, order]) => [task, order.status]).sort()).toEqual([
      ['cancelled', 'cancelled'],
      ['completed', 'completed'],
    ]);
    const moot = answered.find(([task]) => task === 'cancelled')![1];
    expect(moot.statusReason?.text).toBe(`Superseded: a later infusion was completed (Procedure/${second})`);
    expect(await activeOrdersOf(subject)).toEqual([]);
    // Who closed them, and why, in standard fields (since session 60): the service, from the infusion, for each.
    for (const [, order] of answered) {
      const named = await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${order.id}` });
      const byInfusion = named.filter((p) => p.activity?.text === 'answer what an infusion gave');
      expect(
        byInfusion.map((p) => [p.agent?.[0]?.who?.display, p.entity?.map((e) => [e.role, e.what.reference])]),
      ).toEqual([['ketamine-careplans (automatic)', [['source', `Procedure/${second}`]]]]);
    }
  });

  /**
   * High-dose, after its first infusion: the next session and the booster both approved, each with its order (the
   * booster due later). The next infusion answers both: it fulfils one and supersedes the other.
   */
  async function nextSessionAndBoosterApproved() {
    const subject = await patient({ weightKg: 80, bp: [124, 78] });
    const { carePlan } = await apply(subject, 'ketamine-high-dose-as-needed');
    const enrolment = { patient: subject, carePlanId: carePlan.id! };
    const approve = (task: Task) =>
      request(service.url)
        .post(`/tasks/${task.id}/$approve`)
        .set(clinician())
        .send({ versionId: task.meta!.versionId })
        .expect(200);
    const session = (await onPlan<Task>('Task', carePlan.id!)).find((t) => actionOf(t) === 'infusion-session')!;
    await approve(session);
    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, first);
    const offered = (await followUpTasks(service, first)).filter((t) => actionOf(t) !== 'post-infusion-check');
    for (const task of offered) await approve(task);
    const booster = offered.find((t) => actionOf(t) === 'maintenance-booster')!;
    const next = offered.find((t) => actionOf(t) === 'next-induction-session')!;
    expect(Date.parse(booster.restriction!.period!.start!)).toBeGreaterThan(
      Date.parse(next.restriction!.period!.start!),
    );
    const [boosterOrder] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(booster.id!),
    });
    return { enrolment, next, booster, boosterOrder };
  }

  it('the infusion fulfils the session whose order the pump gave, not the one due soonest', async () => {
    const { enrolment, next, booster, boosterOrder } = await nextSessionAndBoosterApproved();
    // The pump records giving the booster's order, the session due later.
    await service.fhir.create(
      administrationOf(boosterOrder, 'completed', { start: '2027-01-20T09:05:00Z', end: '2027-01-20T09:55:00Z' }),
    );
    const second = await completeInfusion(service, enrolment, '2027-01-20T10:00:00.000Z');
    await reportInfusion(service, second);
    // Before, the next session (due soonest) was done and the booster the pump gave superseded, its order cancelled.
    expect((await service.fhir.read<Task>('Task', booster.id!)).status).toBe('completed');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', boosterOrder.id!)).status).toBe(
      'completed',
    );
    expect((await service.fhir.read<Task>('Task', next.id!)).status).toBe('cancelled');
  });

  it('a session the pump has begun is answered by its own infusion only, not superseded by another', async () => {
    const { enrolment, next, booster, boosterOrder } = await nextSessionAndBoosterApproved();
    // The pump records the booster under way in its own window; an infusion is recorded at another time meanwhile.
    const boosterStart = Date.parse(booster.restriction!.period!.start!) + 3600_000;
    await service.fhir.create(
      administrationOf(boosterOrder, 'in-progress', { start: new Date(boosterStart).toISOString() }),
    );
    const other = await completeInfusion(service, enrolment, next.restriction!.period!.end!);
    await reportInfusion(service, other);
    // Before, the booster was superseded by that infusion and its order cancelled under the running pump.
    expect((await service.fhir.read<Task>('Task', next.id!)).status).toBe('completed');
    expect((await service.fhir.read<Task>('Task', booster.id!)).status).toBe('ready');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', boosterOrder.id!)).status).toBe('active');
  });

  it('a session the pump gave is done by its infusion even when the infusion that planned it was entered in error', async () => {
    const { enrolment, next, booster, boosterOrder } = await nextSessionAndBoosterApproved();
    const planner = next.reasonReference!.reference!.split('/')[1];
    const given = { start: '2027-01-20T09:05:00Z', end: '2027-01-20T09:55:00Z' };
    await service.fhir.create(administrationOf(boosterOrder, 'completed', given));
    const infusion = await service.fhir.read<Procedure>('Procedure', planner);
    await service.fhir.update<Procedure>({ ...infusion, status: 'entered-in-error' });
    const second = await completeInfusion(service, enrolment, '2027-01-20T10:00:00.000Z');
    await reportInfusion(service, second);
    // Before, a session planned by an infusion no longer on record was left open: approved, its order active to be
    // given again after the pump gave it.
    expect((await service.fhir.read<Task>('Task', booster.id!)).status).toBe('completed');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', boosterOrder.id!)).status).toBe(
      'completed',
    );
  });

  it.each([
    ['cancelling it', true],
    ['leaving it open too (its cancel not written)', false],
  ])(
    'a session whose order the EHR replaced (a dose changed there), %s: its infusion completes the replacement, not only the order written here',
    async (_, cancelled) => {
      const { subject, carePlan, task, order } = await approvedInfusion();
      const { resource: replacement } = await service.fhir.create(ehrReplacementOf(order));
      if (cancelled) await service.fhir.update<MedicationRequest>({ ...order, status: 'cancelled' });
      await infusionRecorded(subject, carePlan.id!);
      expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('completed');
      // Before (session 37 with the order cancelled, 38 with it left open), the EHR's replacement stayed active after
      // the session was given: to be given again.
      const status = async (id: string) => (await service.fhir.read<MedicationRequest>('MedicationRequest', id)).status;
      expect(await status(replacement.id!)).toBe('completed');
      expect(await status(order.id!)).toBe(cancelled ? 'cancelled' : 'completed');
      expect(await activeOrdersOf(subject)).toEqual([]);
    },
  );

  it('a session whose order the EHR replaced but left open too, rejected: both cancelled; 409 once the pump began the replacement', async () => {
    const { subject, task, order } = await approvedInfusion();
    const { resource: replacement } = await service.fhir.create(ehrReplacementOf(order));
    expect((await rejectNow(task.id!)).status).toBe(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
    // Before, the EHR's replacement stayed active under the rejected session.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', replacement.id!)).status).toBe('cancelled');
    expect(await activeOrdersOf(subject)).toEqual([]);

    const begun = await approvedInfusion();
    const { resource: running } = await service.fhir.create(ehrReplacementOf(begun.order));
    await service.fhir.create(administrationOf(running, 'in-progress', { start: '2027-01-02T09:05:00Z' }));
    expect((await rejectNow(begun.task.id!)).status).toBe(409);
  });

  it('a session whose order the EHR replaced, rejected: the replacement is cancelled with it', async () => {
    const { subject, task, order } = await approvedInfusion();
    const { resource: replacement } = await service.fhir.create(ehrReplacementOf(order));
    await service.fhir.update<MedicationRequest>({ ...order, status: 'cancelled' });
    expect((await rejectNow(task.id!)).status).toBe(200);
    // Before, the EHR's replacement stayed active under a rejected session.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', replacement.id!)).status).toBe('cancelled');
    expect(await activeOrdersOf(subject)).toEqual([]);
  });

  it('a session the pump gave whose Task the EHR then deleted: its infusion completes the order (never left to give again)', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    await service.fhir.create(
      administrationOf(order, 'completed', { start: '2027-01-02T09:05:00Z', end: '2027-01-02T09:55:00Z' }),
    );
    // Deleted once the pump began: the deletion leaves the order to its infusion.
    expect((await fetch(`${service.config.fhirBaseUrl}/Task/${task.id}`, { method: 'DELETE' })).status).toBe(200);
    await infusionRecorded(subject, carePlan.id!);
    // Before, it stayed active with no Task to answer it: to be given again.
    const given = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(given.status).toBe('completed');
    expect(await activeOrdersOf(subject)).toEqual([]);
  });

  it('a session the pump gave under a plan stopped meanwhile: its infusion still completes it and its order, and has its check alone', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    await service.fhir.create(
      administrationOf(order, 'completed', { start: '2027-01-02T09:05:00Z', end: '2027-01-02T09:55:00Z' }),
    );
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlan.id!);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    // The withdrawal leaves the session to its infusion (the pump began it).
    await service.app.get(StoppedPlanSweep).sweep();
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
    const infusion = await completeInfusion(
      service,
      { patient: subject, carePlanId: carePlan.id! },
      '2027-01-02T10:00:00Z',
    );
    // Before, an infusion under a stopped plan was ignored: the session stayed open and its order active. Since session
    // 52 it has its post-infusion check too (from 41 to 51, nothing new), and no next session.
    expect(await reportInfusion(service, infusion)).toMatchObject({
      fulfilled: 1,
      ordersClosed: 1,
      tasks: [expect.any(String)],
    });
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('completed');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    expect((await followUpTasks(service, infusion)).map((t) => [actionOf(t), t.status])).toEqual([
      ['post-infusion-check', 'draft'],
    ]);
  });

  /**
   * An approved session under a plan stopped since, whose infusion was recorded and followed up before the eMAR charted
   * the pump's record of it: the follow-up, finding nothing given under a stopped plan, answered nothing.
   */
  async function givenUnderStoppedPlanChartedLate() {
    const { subject, carePlan, task, order } = await approvedInfusion();
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlan.id!);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    const infusion = await completeInfusion(
      service,
      { patient: subject, carePlanId: carePlan.id! },
      '2027-01-02T10:00:00Z',
    );
    // Its check alone (since session 52; ignored before): the pump's record not on record yet, nothing answered.
    expect(await reportInfusion(service, infusion)).toMatchObject({
      status: 'created',
      fulfilled: 0,
      tasks: [expect.any(String)],
    });
    const { resource: given } = await service.fhir.create(
      administrationOf(order, 'completed', { start: '2027-01-02T09:05:00Z', end: '2027-01-02T09:55:00Z' }),
    );
    return { subject, carePlan, task, order, infusion, given };
  }

  it('a session the pump gave under a stopped plan, charted after its infusion was followed up: the withdrawal answers it', async () => {
    const { subject, task, order, infusion, given } = await givenUnderStoppedPlanChartedLate();
    // The plan's withdrawal (its notification's job, or the sweep) runs after the pump's record: the session is begun.
    await service.app.get(StoppedPlanSweep).sweep();
    // Before session 41 it was left to its infusion, which had been followed up already: the session stayed approved
    // and its order active after the drug went in (clinic day, seed 1618).
    const done = await service.fhir.read<Task>('Task', task.id!);
    expect([done.status, done.output?.[0]?.valueReference?.reference]).toEqual(['completed', `Procedure/${infusion}`]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    expect(await activeOrdersOf(subject)).toEqual([]);
    const [provenance] = await service.fhir
      .searchAll<Provenance>('Provenance', { target: `Task/${task.id}` })
      .then((all) => all.filter((p) => p.activity?.text === 'given at the pump'));
    expect(provenance).toMatchObject({
      agent: [{ who: { display: expect.stringContaining('ketamine-careplans') } }],
      entity: expect.arrayContaining([
        { role: 'source', what: { reference: `MedicationAdministration/${given.id}` } },
        { role: 'source', what: { reference: `Procedure/${infusion}` } },
      ]),
    });
    // Its check, from its follow-up (session 52), and nothing else.
    expect((await followUpTasks(service, infusion)).map(actionOf)).toEqual(['post-infusion-check']);
    // Looked at again: nothing more to write.
    expect(await service.app.get(StoppedPlanSweep).sweep()).toMatchObject({ withdrawn: 0, answered: 0 });
  });

  it('the same, the plan’s own notification never heard: the pump’s record, heard, has the plan looked at now', async () => {
    const { subject, carePlan, task, given } = await givenUnderStoppedPlanChartedLate();
    await postWebhook(service, JSON.stringify(given)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(given.id!), 'the pump’s record heard');
    await maintenanceJobDone(service, withdrawStoppedPlanJobId(carePlan.id!), 'the stopped plan looked at');
    // Before, the session waited for the 15-minute sweep, its order active after the drug went in.
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('completed');
    expect(await activeOrdersOf(subject)).toEqual([]);
  });

  it('a contraindication recorded after enrolment: the follow-up flags it, no next session is proposed, and approvals on the plan wait for an override', async () => {
    const subject = await patient({ weightKg: 80, bp: [124, 78] });
    const { carePlan } = await apply(subject);
    const instructions = (await onPlan<Task>('Task', carePlan.id!)).find(
      (t) => actionOf(t) === 'patient-instructions',
    )!;
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const procedureId = await completeInfusion(
      service,
      { patient: subject, carePlanId: carePlan.id! },
      '2027-01-04T10:00:00.000Z',
    );
    await reportInfusion(service, procedureId);
    const [check] = await waitFor(async () => {
      const found = await followUpTasks(service, procedureId);
      return found.length >= 1 && found;
    }, 'the post-infusion check');
    expect(actionOf(check)).toBe('post-infusion-check');
    const [issue] = await waitFor(async () => {
      const found = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        implicated: `CarePlan/${carePlan.id}`,
      });
      return found.length > 0 && found;
    }, 'the DetectedIssue');
    expect(issue.code?.coding?.[0].code).toBe('pregnancy');
    expect(await followUpTasks(service, procedureId)).toHaveLength(1);
    await expectAuthorisingRefused(instructions, new RegExp(`DetectedIssue/${issue.id}`));
    await overrideIssue(service, issue, 'Discussed with obstetrics; proceed').expect(200);
    await request(service.url)
      .post(`/tasks/${instructions.id}/$approve`)
      .set(clinician())
      .send({ versionId: instructions.meta!.versionId })
      .expect(200);
  });

  it('a contraindication found by the infusion and by another finder at the same moment is recorded once', async () => {
    const subject = await patient({ weightKg: 80, bp: [124, 78] });
    const { carePlan } = await apply(subject);
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const procedureId = await completeInfusion(
      service,
      { patient: subject, carePlanId: carePlan.id! },
      '2027-01-04T10:00:00.000Z',
    );
    // The sweep (as a notified Condition's job would) records the pregnancy after the infusion's job has read the
    // plan's issues and before its transaction lands: the moment two finders meet.
    const fhir = service.app.get(FhirClient);
    const send = fhir.transaction.bind(fhir);
    let raced = false;
    const spy = jest.spyOn(fhir, 'transaction').mockImplementation(async (entries) => {
      if (!raced && entries.some((e) => e.resource?.resourceType === 'DetectedIssue')) {
        raced = true;
        expect((await service.app.get(ContraindicationSweep).sweep()).recorded).toBeGreaterThanOrEqual(1);
      }
      return send(entries);
    });
    try {
      expect(await reportInfusion(service, procedureId)).toMatchObject({ contraindications: 1 });
    } finally {
      spy.mockRestore();
    }
    expect(raced).toBe(true);
    const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    expect(issues.map((i) => i.code?.coding?.[0].code)).toEqual(['pregnancy']);
  });

  it('an infusion event that finds a contraindication has the orders approved under the plan held at once', async () => {
    const subject = await patient({ weightKg: 80, bp: [124, 78] });
    const { carePlan } = await apply(subject);
    const instructions = (await onPlan<Task>('Task', carePlan.id!)).find(
      (t) => actionOf(t) === 'patient-instructions',
    )!;
    await request(service.url)
      .post(`/tasks/${instructions.id}/$approve`)
      .set(clinician())
      .send({ versionId: instructions.meta!.versionId })
      .expect(200);
    const [order] = await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      identifier: `https://ketamine-careplans.example/fhir/NamingSystem/order-key|Task/${instructions.id}`,
    });
    expect(order.status).toBe('active');
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const procedureId = await completeInfusion(
      service,
      { patient: subject, carePlanId: carePlan.id! },
      '2027-01-04T10:00:00.000Z',
    );
    expect(await reportInfusion(service, procedureId)).toMatchObject({ contraindications: 1 });
    // No sweep runs here: the follow-up's own job holds it.
    const held = await waitFor(async () => {
      const now = await service.fhir.read<CommunicationRequest>('CommunicationRequest', order.id!);
      return now.status === 'on-hold' && now;
    }, 'the approved instructions order to be held');
    expect(held.statusReason?.coding?.[0].code).toBe('held-for-contraindication');
    expect((await service.fhir.read<Task>('Task', instructions.id!)).status).toBe('on-hold');
  });

  describe.each([
    ['a pregnancy', (subject: string) => activeCondition(PREGNANCY[0], PREGNANCY[1], subject), 'pregnancy'],
    [
      'a blood pressure of 195/115',
      (subject: string) => bloodPressure(195, 115, '2026-12-20T09:00:00Z', subject),
      'uncontrolled-hypertension',
    ],
  ])('%s recorded after enrolment, before any infusion', (_, record, code) => {
    it('approving the first session is refused and the contraindication recorded on the plan: no order, no Provenance', async () => {
      const { subject, carePlan, task } = await eligibleWithInfusionTask();
      await service.fhir.create(record(subject));
      await expectAuthorisingRefused(task, /contraindicat.*DetectedIssue\/[\w-]+/i);
      // Recorded once, on the plan, as $apply and the follow-ups record it (so the page shows it, and it can be overridden).
      const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        implicated: `CarePlan/${carePlan.id}`,
      });
      expect(issues.map((i) => i.code?.coding?.[0].code)).toEqual([code]);
      expect(issues[0].evidence?.[0].detail?.length).toBeGreaterThan(0);
      // Its detail names the task in words (clinicians read it); integrators have the plan in implicated.
      expect(issues[0].detail).toContain(`when a clinician was to approve “${task.description}”`);
      expect(issues[0].detail).not.toMatch(/Task\//);
      // Nothing authorised.
      expect((await service.fhir.read<Task>('Task', task.id!)).meta?.versionId).toBe(task.meta!.versionId);
      const orders = (await onPlan<MedicationRequest>('MedicationRequest', carePlan.id!)).filter(
        (m) => m.intent === 'order',
      );
      expect(orders).toEqual([]);
      expect(await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${task.id}` })).toEqual([]);
      // The override path then lets the clinician proceed, with a reason.
      await overrideIssue(service, issues[0], 'Reviewed; proceed').expect(200);
      await request(service.url)
        .post(`/tasks/${task.id}/$approve`)
        .set(clinician())
        .send({ versionId: task.meta!.versionId })
        .expect(200);
    });
  });

  it('the sweep records a contraindication found while Tasks awaited approval, once, and leaves clear plans alone', async () => {
    const { subject, carePlan, task } = await eligibleWithInfusionTask();
    const clear = await eligibleWithInfusionTask();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const sweep = service.app.get(ContraindicationSweep);
    expect((await sweep.sweep()).recorded).toBeGreaterThanOrEqual(1);
    const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    expect(issues.map((i) => [i.code?.coding?.[0].code, i.status, i.mitigation])).toEqual([
      ['pregnancy', 'preliminary', undefined],
    ]);
    expect(issues[0].detail).toMatch(/while Tasks awaited approval/);
    expect(
      await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${clear.carePlan.id}` }),
    ).toEqual([]);
    // The page shows it before anyone tries to approve, and the approval is refused naming it.
    const view = await request(service.url)
      .get('/worklist/view')
      .query({ patient: subject })
      .set(clinician())
      .expect(200);
    const row = (
      view.body.items as { id: string; view: { contraindications: { id: string; state: string }[] } }[]
    ).find((i) => i.id === task.id)!;
    expect(row.view.contraindications).toEqual([expect.objectContaining({ id: issues[0].id, state: 'unresolved' })]);
    const refused = await request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId })
      .expect(422);
    // In words for the clinician, by reference for the integrator.
    expect(refused.body.issue[0].details.text).toMatch(
      /^Blocked by an unresolved contraindication on this care plan: Pregnancy on record .*override it with a reason\.$/,
    );
    expect(refused.body.issue[0].details.text).not.toMatch(/DetectedIssue\/|CarePlan\//);
    expect(refused.body.issue[0].expression).toEqual([`DetectedIssue/${issues[0].id}`]);
    expect(refused.body.issue[0].diagnostics).toContain(`DetectedIssue/${issues[0].id}`);
    // Once: a second sweep finds it on record.
    await sweep.sweep();
    expect(
      await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${carePlan.id}` }),
    ).toHaveLength(1);
  });

  /** The plan's active order after approving its first session. */
  async function approvedInfusion() {
    const { subject, carePlan, task } = await eligibleWithInfusionTask();
    const approved = await request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId })
      .expect(200);
    const [order] = (await onPlan<MedicationRequest>('MedicationRequest', carePlan.id!)).filter(
      (m) => m.intent === 'order',
    );
    expect(order.status).toBe('active');
    return { subject, carePlan, task: approved.body as Task, order };
  }

  /** The session's infusion recorded (ending 2027-01-02 10:00Z, after the pump's record) and its follow-up done. */
  async function infusionRecorded(subject: string, carePlanId: string): Promise<string> {
    const infusion = await completeInfusion(service, { patient: subject, carePlanId }, '2027-01-02T10:00:00Z');
    await reportInfusion(service, infusion);
    return infusion;
  }

  /** A clinician rejects the Task as it is now (its current version, read first): the API's answer. */
  async function rejectNow(taskId: string, reason = 'Not now') {
    const current = await service.fhir.read<Task>('Task', taskId);
    return request(service.url)
      .post(`/tasks/${taskId}/$reject`)
      .set(clinician())
      .send({ versionId: current.meta!.versionId, reason });
  }

  /** What an EHR asking for the patient's ketamine orders to give finds. */
  async function activeOrdersOf(subject: string): Promise<MedicationRequest[]> {
    const res = await request(service.url)
      .get('/fhir/MedicationRequest')
      .query({ subject, intent: 'order', status: 'active' })
      .set(service.as('integration'))
      .expect(200);
    return (res.body.entry ?? []).map((e: { resource: MedicationRequest }) => e.resource);
  }

  it('a contraindication found after approval holds the active order (the sweep) until a clinician overrides it', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    const untouched = await approvedInfusion();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const sweep = service.app.get(ContraindicationSweep);
    expect((await sweep.sweep()).held).toBeGreaterThanOrEqual(1);

    // An EHR reading MedicationRequest.status alone finds nothing to give, and why it is held.
    expect(await activeOrdersOf(subject)).toEqual([]);
    const held = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(held.status).toBe('on-hold');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `MedicationRequest/${order.id}`,
    });
    expect(issue.code?.coding?.[0].code).toBe('pregnancy');
    expect(issue.implicated?.map((r) => r.reference)).toEqual([
      `CarePlan/${carePlan.id}`,
      `MedicationRequest/${order.id}`,
      `Task/${task.id}`,
    ]);
    // The approved Task too: `Task?status=ready` is what an EHR acts on.
    const heldTask = await service.fhir.read<Task>('Task', task.id!);
    expect([heldTask.status, heldTask.businessStatus?.coding?.[0].code]).toEqual(['on-hold', 'approved']);
    expect(heldTask.statusReason?.text).toMatch(/^Held: found after approval: Pregnancy on record/);
    expect(issue.detail).toMatch(/after orders under it were approved/);
    // Why, in words, and the issue by reference in the order's standard field (what a pharmacy or a pump reads).
    expect(held.statusReason?.text).toMatch(/^Held: found after approval: Pregnancy on record/);
    expect(held.statusReason?.text).not.toMatch(/DetectedIssue\//);
    expect(held.detectedIssue?.map((r) => r.reference)).toEqual([`DetectedIssue/${issue.id}`]);
    // Who held it: the service, not a clinician.
    const holdProvenance = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${order.id}` })
    ).filter((p) => p.activity?.text === 'hold for contraindication');
    expect(holdProvenance.map((p) => p.agent[0].who?.identifier?.value)).toEqual(['ketamine-careplans']);
    // Back on the worklist (it needs a clinician again), saying why; also after a reconciliation of the read model.
    const onWorklist = async () =>
      (
        await request(service.url).get('/worklist').query({ patient: subject }).set(clinician()).expect(200)
      ).body.items.find((i: { id: string }) => i.id === task.id) as { onHold?: string } | undefined;
    expect((await onWorklist())?.onHold).toMatch(/^Held: found after approval: Pregnancy on record/);
    await service.app.get(WorklistIndex).rebuild();
    expect((await onWorklist())?.onHold).toMatch(/^Held: found after approval: Pregnancy on record/);
    // Another patient's order is not touched, and a second sweep writes nothing more.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', untouched.order.id!)).status).toBe(
      'active',
    );
    await sweep.sweep();
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).meta?.versionId).toBe(
      held.meta?.versionId,
    );

    // The clinician overrides with a reason: the order is active again, and the release names the clinician.
    await overrideIssue(service, issue, 'Test negative today; condition entered in error').expect(200);
    const released = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(released.status).toBe('active');
    expect(released.statusReason).toBeUndefined();
    // Given with the issue overridden: the order still names it.
    expect(released.detectedIssue?.map((r) => r.reference)).toEqual([`DetectedIssue/${issue.id}`]);
    const readyAgain = await service.fhir.read<Task>('Task', task.id!);
    expect([readyAgain.status, readyAgain.statusReason]).toEqual(['ready', undefined]);
    expect(await onWorklist()).toBeUndefined();
    expect((await activeOrdersOf(subject)).map((o) => o.id)).toEqual([order.id]);
    const provenance = await service.fhir.searchAll<Provenance>('Provenance', {
      target: `MedicationRequest/${order.id}`,
    });
    const release = provenance.find((p) => p.activity?.text === 'release hold after override')!;
    expect(release.agent[0].who?.reference).toBe('Practitioner/dr-test');
    expect(release.reason?.[0].text).toMatch(/entered in error/);
    // Overridden: the next sweep holds nothing again.
    expect((await sweep.sweep()).held).toBe(0);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
  });

  it('a contraindication found after the EHR replaced the order holds the EHR’s order, and the override releases it', async () => {
    const { subject, task, order } = await approvedInfusion();
    // The prescriber changed the dose in the EHR: the order approved here cancelled, the EHR's own replacing it.
    await service.fhir.update<MedicationRequest>({ ...order, status: 'cancelled', statusReason: { text: 'Replaced' } });
    const { resource: ehrOrder } = await service.fhir.create(ehrReplacementOf(order));
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    expect((await service.app.get(ContraindicationSweep).sweep()).held).toBeGreaterThanOrEqual(1);

    // Nothing to give: the EHR's order is held with why, and the session's Task with it.
    expect(await activeOrdersOf(subject)).toEqual([]);
    const held = await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!);
    expect(held.status).toBe('on-hold');
    expect(held.statusReason?.text).toMatch(/^Held: found after approval: Pregnancy on record/);
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('on-hold');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `MedicationRequest/${ehrOrder.id}`,
    });
    await overrideIssue(service, issue, 'Test negative today').expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!)).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
  });

  it('a hold whose issue was resolved on the FHIR server itself (or whose release was cut short) is lifted by the sweep', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const sweep = service.app.get(ContraindicationSweep);
    await sweep.sweep();
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('on-hold');
    // An EHR records the mitigation itself, not through $override: nothing released the hold.
    await reviewedInEhr(service, carePlan.id!, 'Reviewed in the EHR: test negative');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    expect((await sweep.sweep()).released).toBeGreaterThanOrEqual(1);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
    const release = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${order.id}` })
    ).find((p) => p.activity?.text === 'release hold: no contraindication unresolved')!;
    expect(release.agent[0].who?.identifier?.value).toBe('ketamine-careplans');
  });

  // Since session 57 a hold also holds an order active under a session held already; it read that session before an
  // override released it (clinic day seeds 5912, 5913: the order held again under a ready Task, nothing to release it).
  it('a hold that read the session held before an override released it holds nothing again', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    await service.app.get(ContraindicationSweep).sweep();
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    // What a recheck read, just before the clinician's override landed.
    const held = await service.fhir.read<Task>('Task', task.id!);
    expect(held.status).toBe('on-hold');
    await overrideIssue(service, issue, 'Test negative today').expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    const outcome = await service.app
      .get(OrderHolds)
      .hold({ carePlanId: carePlan.id!, issues: [issue], approvedTasks: [], heldTasks: [held] });
    expect(outcome.held).toBe(0);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
  });

  it('a held session rescheduled after its issue was resolved, before the release: no second order, one to give after it', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const sweep = service.app.get(ContraindicationSweep);
    await sweep.sweep();
    const held = await service.fhir.read<Task>('Task', task.id!);
    expect(held.status).toBe('on-hold');
    // Resolved in the EHR; nothing has released the hold yet (the sweep's next run, or a notification, will).
    await reviewedInEhr(service, carePlan.id!, 'Reviewed in the EHR: test negative');
    const window = held.restriction!.period!;
    await request(service.url)
      .post(`/tasks/${task.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: held.meta!.versionId, start: window.start, end: window.end })
      .expect(200);
    // Its order is the one approved, still held: the reschedule wrote no second order (before, a second active one:
    // after the release two orders for one session, and a rejection cancelled only one of them).
    const orders = () =>
      service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(task.id!) });
    expect((await orders()).map((o) => [o.id, o.status])).toEqual([[order.id, 'on-hold']]);
    // Still held with its order until the release (which the sweep still finds), then ready in its new window.
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('on-hold');
    await sweep.sweep();
    expect((await orders()).map((o) => [o.id, o.status])).toEqual([[order.id, 'active']]);
    expect((await activeOrdersOf(subject)).map((o) => o.id)).toEqual([order.id]);
    const released = await service.fhir.read<Task>('Task', task.id!);
    expect([released.status, released.businessStatus?.coding?.[0].code]).toEqual(['ready', 'rescheduled']);
  });

  it('a contraindication resolved in the EHR lifts its holds at its notification, or at the poll', async () => {
    const sweep = service.app.get(ContraindicationSweep);
    const heldOnPregnancy = async () => {
      const held = await approvedInfusion();
      await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], held.subject));
      await sweep.sweep();
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', held.order.id!)).status).toBe('on-hold');
      const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        implicated: `CarePlan/${held.carePlan.id}`,
      });
      return { ...held, issue };
    };
    const given = async (order: MedicationRequest, task: Task) => {
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
      expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
    };

    // Overridden in the EHR (a mitigation recorded there), and notified: released at once, naming the service.
    const notified = await heldOnPregnancy();
    const mitigated = await service.fhir.update<DetectedIssue>(
      {
        ...notified.issue,
        mitigation: [{ action: { text: 'Reviewed in the EHR: test negative' }, date: new Date().toISOString() }],
      },
      { ifMatch: notified.issue.meta!.versionId },
    );
    await postWebhook(service, JSON.stringify(mitigated)).expect(202);
    await maintenanceJobDone(
      service,
      recheckContraindicationsJobId(`DetectedIssue/${mitigated.id}`),
      'the worker to lift the holds',
    );
    await given(notified.order, notified.task);
    const release = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${notified.order.id}` })
    ).find((p) => p.activity?.text === 'release hold: no contraindication unresolved')!;
    expect(release.agent[0].who?.identifier?.value).toBe('ketamine-careplans');

    // Entered in error in the EHR, on a server that cannot notify: the poll finds it.
    const polled = await heldOnPregnancy();
    await service.fhir.update<DetectedIssue>({ ...polled.issue, status: 'entered-in-error' });
    expect((await service.app.get(ClearedIssuesPoller).poll()).queued).toBeGreaterThanOrEqual(1);
    await maintenanceJobDone(
      service,
      recheckContraindicationsJobId(`DetectedIssue/${polled.issue.id}`),
      'the worker to lift the holds',
    );
    await given(polled.order, polled.task);

    // Still unresolved: a notification of it releases nothing.
    const unresolved = await heldOnPregnancy();
    await postWebhook(service, JSON.stringify(unresolved.issue)).expect(202);
    expect(await service.app.get(PlanChanges).issueChanged(unresolved.issue.id!)).toEqual({
      plans: 0,
      holdsReleased: 0,
      pausedReleased: 0,
    });
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', unresolved.order.id!)).status).toBe(
      'on-hold',
    );
  });

  it('a paused plan resumed while a contraindication was found keeps its orders held until the EHR resolves it', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    const setPlan = async (status: CarePlan['status']) => {
      const plan = await service.fhir.read<CarePlan>('CarePlan', carePlan.id!);
      await service.fhir.update<CarePlan>({ ...plan, status });
    };
    const orderNow = () => service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    const changes = service.app.get(PlanChanges);
    await setPlan('on-hold');
    expect((await changes.planChanged(carePlan.id!)).pausedHeld).toBe(1);
    // A pregnancy recorded during the pause is found when the plan resumes: the order stays held.
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    await setPlan('active');
    expect((await changes.planChanged(carePlan.id!)).pausedReleased).toBe(0);
    expect((await orderNow()).status).toBe('on-hold');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    // Overridden in the EHR: the pause's hold is released as well as the contraindication's.
    const mitigated = await service.fhir.update<DetectedIssue>({
      ...issue,
      mitigation: [{ action: { text: 'Reviewed in the EHR' }, date: new Date().toISOString() }],
    });
    await postWebhook(service, JSON.stringify(mitigated)).expect(202);
    await maintenanceJobDone(
      service,
      recheckContraindicationsJobId(`DetectedIssue/${mitigated.id}`),
      'the worker to lift the holds',
    );
    expect((await orderNow()).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
  });

  describe('the EHR’s replacement of an order left open beside it (its cancel not written)', () => {
    /** The order written here and the EHR's replacements of it, oldest first. */
    const orderChainOf = async (order: MedicationRequest) => [
      order,
      ...(await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { subject: order.subject.reference }))
        .filter((o) => o.priorPrescription?.reference === `MedicationRequest/${order.id}`)
        .sort((a, b) => a.meta!.lastUpdated!.localeCompare(b.meta!.lastUpdated!)),
    ];
    async function replacedButLeftOpen() {
      const approved = await approvedInfusion();
      const { resource: replacement } = await service.fhir.create(ehrReplacementOf(approved.order));
      // The order written here, then the EHR's replacement.
      const statuses = () =>
        Promise.all(
          [approved.order.id!, replacement.id!].map(
            async (id) => (await service.fhir.read<MedicationRequest>('MedicationRequest', id)).status,
          ),
        );
      return { ...approved, statuses };
    }
    const setPlan = async (carePlanId: string, status: CarePlan['status']) => {
      const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      await service.fhir.update<CarePlan>({ ...plan, status });
      return service.app.get(PlanChanges).planChanged(carePlanId);
    };

    // Before session 38 each of these acted on the order written here only: the replacement stayed active under a
    // contraindication, a paused plan or a stopped one, to be given.
    it('a contraindication holds both', async () => {
      const { subject, statuses } = await replacedButLeftOpen();
      await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
      await service.app.get(ContraindicationSweep).sweep();
      expect(await statuses()).toEqual(['on-hold', 'on-hold']);
    });

    it('a paused plan holds both, and its resumption releases both', async () => {
      const { carePlan, statuses } = await replacedButLeftOpen();
      expect((await setPlan(carePlan.id!, 'on-hold')).pausedHeld).toBe(2);
      expect(await statuses()).toEqual(['on-hold', 'on-hold']);
      expect((await setPlan(carePlan.id!, 'active')).pausedReleased).toBe(2);
      expect(await statuses()).toEqual(['active', 'active']);
    });

    it('a Task deleted in the EHR has both withdrawn', async () => {
      const { task, statuses } = await replacedButLeftOpen();
      expect((await fetch(`${service.config.fhirBaseUrl}/Task/${task.id}`, { method: 'DELETE' })).status).toBe(200);
      await service.app.get(DeletedTasks).heard(task.id!);
      expect(await statuses()).toEqual(['cancelled', 'cancelled']);
    });

    it('a Task deleted in the EHR after the pump gave its session (under the replacement), its plan stopped: both completed', async () => {
      const { task, carePlan, order, statuses } = await replacedButLeftOpen();
      const [, replacement] = await orderChainOf(order);
      await service.fhir.create(
        administrationOf(replacement, 'completed', { start: '2027-01-02T09:05:00Z', end: '2027-01-02T09:55:00Z' }),
      );
      await setPlan(carePlan.id!, 'revoked');
      expect((await fetch(`${service.config.fhirBaseUrl}/Task/${task.id}`, { method: 'DELETE' })).status).toBe(200);
      expect(await service.app.get(DeletedTasks).heard(task.id!)).toMatchObject({ given: 1 });
      // Before, both were left to the infusion, whose follow-up reaches an order through its Task and does not run
      // under a stopped plan: active after the drug went in (clinic day, seed 2123).
      expect(await statuses()).toEqual(['completed', 'completed']);
    });

    /** Replaced twice: the first replacement left open, the second written with the order's cancel. */
    async function replacedTwiceFirstLeftOpen() {
      const approved = await approvedInfusion();
      const { resource: first } = await service.fhir.create(ehrReplacementOf(approved.order));
      const { resource: second } = await service.fhir.create(ehrReplacementOf(approved.order));
      await service.fhir.update<MedicationRequest>({ ...approved.order, status: 'cancelled' });
      const statuses = () =>
        Promise.all(
          [first.id!, second.id!].map(
            async (id) => (await service.fhir.read<MedicationRequest>('MedicationRequest', id)).status,
          ),
        );
      return { ...approved, statuses };
    }

    it('replaced twice, the first replacement left open: a paused plan holds both replacements, a rejection cancels both', async () => {
      const paused = await replacedTwiceFirstLeftOpen();
      expect((await setPlan(paused.carePlan.id!, 'on-hold')).pausedHeld).toBe(2);
      expect(await paused.statuses()).toEqual(['on-hold', 'on-hold']);

      const rejected = await replacedTwiceFirstLeftOpen();
      expect((await rejectNow(rejected.task.id!)).status).toBe(200);
      // Before, only the latest replacement (the order the session was given under) was reached.
      expect(await rejected.statuses()).toEqual(['cancelled', 'cancelled']);
    });

    /**
     * Replaced twice, the order written here left open (its cancel refused): the first replacement was cancelled when
     * the second replaced it, so the session's open orders are the one written here and the second replacement.
     */
    async function replacedTwiceOrderLeftOpen() {
      const approved = await approvedInfusion();
      const { resource: first } = await service.fhir.create(ehrReplacementOf(approved.order));
      const { resource: second } = await service.fhir.create(ehrReplacementOf(first));
      await service.fhir.update<MedicationRequest>({ ...first, status: 'cancelled' });
      const statuses = () =>
        Promise.all(
          [approved.order.id!, second.id!].map(
            async (id) => (await service.fhir.read<MedicationRequest>('MedicationRequest', id)).status,
          ),
        );
      return { ...approved, statuses };
    }

    // Before session 39 the EHR's replacements left open were found among the open orders alone: the second
    // replacement names a cancelled order, so each of these acted on the order written here only.
    it('replaced twice through a cancelled replacement, the order written here left open: a hold, a rejection and a pause reach both', async () => {
      const held = await replacedTwiceOrderLeftOpen();
      await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], held.subject));
      await service.app.get(ContraindicationSweep).sweep();
      expect(await held.statuses()).toEqual(['on-hold', 'on-hold']);

      const rejected = await replacedTwiceOrderLeftOpen();
      expect((await rejectNow(rejected.task.id!)).status).toBe(200);
      expect(await rejected.statuses()).toEqual(['cancelled', 'cancelled']);

      const paused = await replacedTwiceOrderLeftOpen();
      expect((await setPlan(paused.carePlan.id!, 'on-hold')).pausedHeld).toBe(2);
      expect(await paused.statuses()).toEqual(['on-hold', 'on-hold']);
    });

    it('replaced twice through a cancelled replacement, the order written here left open: the infusion closes both', async () => {
      const { subject, carePlan, task, statuses } = await replacedTwiceOrderLeftOpen();
      await infusionRecorded(subject, carePlan.id!);
      expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('completed');
      // Before, the infusion reached the replacements among the patient's open orders alone: the second stayed active.
      expect(await statuses()).toEqual(['completed', 'completed']);
      expect(await activeOrdersOf(subject)).toEqual([]);
    });

    it('a dose changed here ($change-dose) replaces both; a replacement of the old order written after it is answered by the infusion', async () => {
      const { subject, carePlan, task, order } = await approvedInfusion();
      const { resource: leftOpen } = await service.fhir.create(ehrReplacementOf(order));
      const current = await service.fhir.read<Task>('Task', task.id!);
      await request(service.url)
        .post(`/tasks/${task.id}/$change-dose`)
        .set(clinician())
        .send({ versionId: current.meta!.versionId, rate: { value: 0.75, unit: 'mg/kg/h' }, reason: 'weighed again' })
        .expect(200);
      const status = async (id: string) => (await service.fhir.read<MedicationRequest>('MedicationRequest', id)).status;
      // Before, the EHR's replacement of the old dose stayed active beside the new order.
      expect([await status(order.id!), await status(leftOpen.id!)]).toEqual(['cancelled', 'cancelled']);
      // An EHR acting on what it read before the change replaces the old order again, and leaves it open.
      const { resource: stale } = await service.fhir.create(ehrReplacementOf(order));
      await infusionRecorded(subject, carePlan.id!);
      expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('completed');
      // Before, the infusion closed the new order only: the EHR's replacement of the old one stayed active.
      expect(await status(stale.id!)).toBe('completed');
      expect(await activeOrdersOf(subject)).toEqual([]);
    });

    it('a stopped plan cancels both', async () => {
      const { carePlan, task, statuses } = await replacedButLeftOpen();
      await setPlan(carePlan.id!, 'revoked');
      await service.app.get(StoppedPlanSweep).sweep();
      expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('cancelled');
      expect(await statuses()).toEqual(['cancelled', 'cancelled']);
    });
  });

  it('two contraindications: the first override releases nothing, the second releases the order', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const sweep = service.app.get(ContraindicationSweep);
    await sweep.sweep();
    // Found while the order was already held (the plan's instructions still await approval: the sweep looks).
    await service.fhir.create(bloodPressure(195, 115, '2026-12-20T09:00:00Z', subject));
    expect((await sweep.sweep()).recorded).toBeGreaterThanOrEqual(1);
    const override = async (code: string) => {
      const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        implicated: `CarePlan/${carePlan.id}`,
      });
      const issue = issues.find((i) => i.code?.coding?.[0].code === code)!;
      await overrideIssue(service, issue, `Reviewed ${code}`).expect(200);
    };
    await override('pregnancy');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('on-hold');
    await override('uncontrolled-hypertension');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
  });

  it('an infusion given while its order was held still fulfils the Task and completes the order', async () => {
    const { subject, carePlan, task, order } = await approvedInfusion();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    await service.app.get(ContraindicationSweep).sweep();
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('on-hold');
    const infusion = await completeInfusion(
      service,
      { patient: subject, carePlanId: carePlan.id! },
      '2027-01-02T10:00:00.000Z',
    );
    expect(await reportInfusion(service, infusion)).toMatchObject({ fulfilled: 1, ordersClosed: 1 });
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('completed');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  });

  it('a contraindication found when an approved session is rescheduled: refused, and its order held at once', async () => {
    const { subject, task, order } = await approvedInfusion();
    await service.fhir.create(bloodPressure(195, 115, '2026-12-20T09:00:00Z', subject));
    await request(service.url)
      .post(`/tasks/${task.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId, ...task.restriction!.period })
      .expect(422);
    const held = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(held.status).toBe('on-hold');
    expect(held.statusReason?.coding?.[0].code).toBe('held-for-contraindication');
    expect(await activeOrdersOf(subject)).toEqual([]);
  });

  it('an order an EHR put on hold itself is not released by an override', async () => {
    const { subject, carePlan, order } = await approvedInfusion();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    await service.app.get(ContraindicationSweep).sweep();
    // The pharmacy replaces the hold with its own reason.
    const ours = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    await service.fhir.update(
      { ...ours, statusReason: { text: 'Pharmacy: awaiting stock' } },
      { ifMatch: ours.meta!.versionId },
    );
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    await overrideIssue(service, issue, 'Reviewed; proceed').expect(200);
    const after = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect([after.status, after.statusReason?.text]).toEqual(['on-hold', 'Pharmacy: awaiting stock']);
  });

  describe('any R4 PlanDefinition', () => {
    const referral: ActivityDefinition = {
      resourceType: 'ActivityDefinition',
      url: 'http://ehr.example/ActivityDefinition/physio-referral',
      version: '2',
      status: 'active',
      kind: 'ServiceRequest',
      code: { text: 'Physiotherapy referral' },
    };
    const ehrPlan = (extra: Partial<PlanDefinition> = {}): PlanDefinition => ({
      resourceType: 'PlanDefinition',
      url: 'http://ehr.example/PlanDefinition/physio-monthly',
      version: '1',
      status: 'active',
      title: 'Monthly physiotherapy',
      action: [
        {
          id: 'physio',
          title: 'Physiotherapy, monthly x 8',
          definitionCanonical: 'http://ehr.example/ActivityDefinition/physio-referral|2',
          timingTiming: { repeat: { count: 8, frequency: 1, period: 1, periodUnit: 'mo' } },
        },
        {
          id: 'review',
          title: 'Review a month after the series starts',
          relatedAction: [
            {
              actionId: 'physio',
              relationship: 'after-start',
              offsetDuration: { value: 1, unit: 'month', code: 'mo', system: 'http://unitsofmeasure.org' },
            },
          ],
        },
      ],
      ...extra,
    });

    it('a plan an EHR posted to the FHIR server applies by canonical url, with monthly x 8 timing and `mo` offsets', async () => {
      await service.fhir.create(referral);
      await service.fhir.create(ehrPlan());
      const subject = await patient({});
      const res = await request(service.url)
        .post('/fhir/PlanDefinition/$apply')
        .set(service.as('integration'))
        .send({
          resourceType: 'Parameters',
          parameter: [
            { name: 'url', valueUri: 'http://ehr.example/PlanDefinition/physio-monthly' },
            { name: 'subject', valueReference: { reference: subject } },
            { name: 'startDate', valueDate: '2027-01-31' },
            { name: 'persist', valueBoolean: true },
            // The service's Parameters form: every part as its own parameter.
            { name: 'output', valueCode: 'parameters' },
          ],
        })
        .expect(200);
      const out = res.body as Parameters;
      const order = out.parameter!.find((p) => p.resource?.resourceType === 'ServiceRequest')!
        .resource as ServiceRequest;
      expect(order).toMatchObject({
        status: 'draft',
        intent: 'proposal',
        occurrenceTiming: { repeat: { count: 8, periodUnit: 'mo' } },
      });
      const tasks = out.parameter!.filter((p) => p.name === 'task').map((p) => p.resource as Task);
      const byAction = Object.fromEntries(tasks.map((t) => [actionOf(t), t]));
      expect(byAction.physio.restriction?.period).toEqual({
        start: '2027-01-31T00:00:00.000Z',
        end: '2027-09-30T00:00:00.000Z',
      });
      // Jan 31 + 1 month is the end of February.
      expect(byAction.review.restriction?.period?.start).toBe('2027-02-28T00:00:00.000Z');
      expect(byAction.physio.focus?.reference).toBe(`ServiceRequest/${order.id}`);
      // Also by GET, the R4 form for operations without side effects.
      await request(service.url)
        .get('/fhir/PlanDefinition/$apply')
        .query({ url: 'http://ehr.example/PlanDefinition/physio-monthly', subject })
        .set(service.as('integration'))
        .expect(200);
    });

    it('a plan applied inline (its PlanDefinition kept on the FHIR server since): its Tasks are approved', async () => {
      const subject = await patient({});
      const plan = ehrPlan({
        url: `http://ehr.example/PlanDefinition/inline-${Date.now()}`,
        action: [{ id: 'call', title: 'Call the patient a week after enrolment' }],
      });
      const applied = await request(service.url)
        .post('/fhir/PlanDefinition/$apply')
        .set(service.as('clinician'))
        .send({
          resourceType: 'Parameters',
          parameter: [
            { name: 'planDefinition', resource: plan },
            { name: 'subject', valueReference: { reference: subject } },
            { name: 'persist', valueBoolean: true },
          ],
        })
        .expect(200);
      const [task] = await onPlan<Task>('Task', (applied.body as CarePlan).id!);
      await request(service.url)
        .post(`/tasks/${task.id}/$approve`)
        .set(clinician())
        .send({ versionId: task.meta!.versionId })
        .expect(200);
    });

    it('an expression language the engine cannot evaluate is a 422 naming the element', async () => {
      const subject = await patient({});
      const plan = ehrPlan({
        action: [
          {
            id: 'cql',
            title: 'CQL-gated',
            condition: [{ kind: 'applicability', expression: { language: 'text/cql', expression: 'InPopulation' } }],
          },
        ],
      });
      const res = await request(service.url)
        .post('/fhir/PlanDefinition/$apply')
        .set(service.as('integration'))
        .send({
          resourceType: 'Parameters',
          parameter: [
            { name: 'planDefinition', resource: plan },
            { name: 'subject', valueReference: { reference: subject } },
          ],
        })
        .expect(422);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].expression).toEqual([
        'PlanDefinition/http://ehr.example/PlanDefinition/physio-monthly.action[0].condition[0].expression.language',
      ]);
    });
  });
});
