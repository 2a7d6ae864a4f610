import request from 'supertest';
import type { CarePlan, MedicationRequest, Provenance, Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { orderKeySearch } from '@kc/task-states';
import { AnsweredOrdersSweep } from '../apps/worker/src/maintenance/answered-orders-sweep';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { DeletedTasks } from '../apps/worker/src/maintenance/deleted-tasks';
import { OpenTasksReader } from '../apps/worker/src/maintenance/open-tasks';
import { PausedPlanHolds } from '../apps/worker/src/maintenance/paused-plan-holds';
import { StoppedPlanSweep } from '../apps/worker/src/maintenance/stopped-plan-sweep';
import { ehrReplacementOf, infusionDosage } from './fixtures/orders';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { approveFirstSession, enrolPatient } from './support/clinic';
import { startBehindProxy, type ServiceBehindProxy } from './support/flaky-proxy';
import { startTestService, type TestService } from './support/test-service';

/**
 * The EHR changes a session's dose at the same moment as the service closes or replaces its order: its replacement of
 * the order lands after the service read the session's orders and before its write, and the EHR's cancel of the order
 * never goes (it read it still active). CI's clinic day found a session with two orders to give once (session 56).
 */
describe('a dose changed in the EHR while the service closes the order', () => {
  let behind: ServiceBehindProxy<TestService>;
  let service: TestService;
  beforeAll(async () => {
    behind = await startBehindProxy((fhirBaseUrl) => startTestService({ fhirBaseUrl }));
    service = behind.service;
  }, 60_000);
  afterEach(() => {
    behind.proxy.beforeForward = () => undefined;
    behind.proxy.intercept = () => undefined;
  });
  afterAll(() => behind.stop());

  /**
   * An approved session whose order the EHR replaces just before the service's write (the transaction updating the
   * order) reaches the FHIR server, writing straight to it (not through the service's proxy).
   */
  async function replacedInEhrAtTheWrite() {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const task = await approveFirstSession(service, carePlanId);
    const [ours] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(task.id!),
    });
    const ehr = new FhirClient({ baseUrl: behind.sandbox.baseUrl, maxAttempts: 1 });
    const session = { task, ours, ehrReplacement: undefined as MedicationRequest | undefined };
    behind.proxy.beforeForward = async (method, _path, body) => {
      const writesOurs = body.includes('"type":"transaction"') && body.includes(`"url":"MedicationRequest/${ours.id}"`);
      if (method !== 'POST' || session.ehrReplacement || !writesOurs) return;
      session.ehrReplacement = (await ehr.create(ehrReplacementOf(ours, infusionDosage(0.75, 60)))).resource;
    };
    return session;
  }

  /** Once the EHR's replacement is written (at the decision's write), the reads after it fail: the second read. */
  function refuseReadsAfterTheReplacement(session: { ehrReplacement?: MedicationRequest }) {
    behind.proxy.intercept = (method, _path, body) =>
      session.ehrReplacement && method === 'POST' && body.includes('"type":"batch"')
        ? { status: 400, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] } }
        : undefined;
  }

  /** The EHR replaces `ours` again once it reads it cancelled (written straight to the FHIR server). */
  async function replacedAgainReadCancelled(ours: MedicationRequest): Promise<MedicationRequest> {
    const ehr = new FhirClient({ baseUrl: behind.sandbox.baseUrl, maxAttempts: 1 });
    const cancelled = await service.fhir.read<MedicationRequest>('MedicationRequest', ours.id!);
    expect(cancelled.status).toBe('cancelled');
    return (await ehr.create(ehrReplacementOf(cancelled, infusionDosage(0.5, 40)))).resource;
  }

  const openOrdersOf = async (task: Task) =>
    (
      await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
        subject: task.for!.reference!,
        status: 'active,on-hold',
      })
    ).filter((o) => o.intent === 'order');

  /** The Provenance of the EHR's replacement: by whom (a clinician, else the service), which decision. */
  async function decisionOn(order: MedicationRequest) {
    const [provenance] = await service.fhir.searchAll<Provenance>('Provenance', {
      target: `MedicationRequest/${order.id}`,
    });
    const who = provenance?.agent?.[0]?.who;
    return { who: who?.reference ?? who?.display, decision: provenance?.activity?.text };
  }

  it('$change-dose: the EHR’s replacement of the old order is replaced by the new dose too, with the clinician’s Provenance', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task, ours } = session;
    await request(service.url)
      .post(`/tasks/${task.id}/$change-dose`)
      .set(service.as('clinician'))
      .send({ versionId: task.meta!.versionId, rate: { value: 0.625, unit: 'mg/kg/h' }, reason: 'weighed again' })
      .expect(200);
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', session.ehrReplacement!.id!);
    // One order to give: the new dose. Before, the EHR's replacement of the old dose stayed active beside it.
    const open = await openOrdersOf(task);
    expect(open.map((o) => o.priorPrescription?.reference)).toEqual([`MedicationRequest/${ours.id}`]);
    expect(open.map((o) => o.id)).not.toContain(theirs.id);
    expect(theirs.statusReason?.text).toMatch(/^Replaced by a new order at 0\.625 mg\/kg\/h/);
    expect(await decisionOn(theirs)).toEqual({ who: 'Practitioner/dr-test', decision: 'change-dose' });
  });

  it('$reject: the EHR’s replacement is cancelled with the order, with the clinician’s Provenance', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task } = session;
    await request(service.url)
      .post(`/tasks/${task.id}/$reject`)
      .set(service.as('clinician'))
      .send({ versionId: task.meta!.versionId, reason: 'the patient declined' })
      .expect(200);
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', session.ehrReplacement!.id!);
    // Nothing to give for a rejected session. Before, the EHR's replacement stayed active under it.
    expect((await openOrdersOf(task)).map((o) => o.id)).toEqual([]);
    expect(theirs.statusReason?.text).toBe('the patient declined');
    expect(await decisionOn(theirs)).toEqual({ who: 'Practitioner/dr-test', decision: 'reject' });
  });

  it('a stopped plan: the EHR’s replacement is withdrawn with the order, with the service’s Provenance', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task } = session;
    const plan = await service.fhir.read<CarePlan>('CarePlan', task.basedOn![0].reference!.split('/')[1]);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    expect((await service.app.get(StoppedPlanSweep).sweep()).withdrawn).toBeGreaterThanOrEqual(1);
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', session.ehrReplacement!.id!);
    // Nothing to give under a stopped plan. Before, the EHR's replacement stayed active under the withdrawn session.
    expect((await openOrdersOf(task)).map((o) => o.id)).toEqual([]);
    expect(theirs.statusReason?.text).toMatch(/^Withdrawn/);
    expect(await decisionOn(theirs)).toEqual({ who: 'ketamine-careplans (automatic)', decision: 'withdraw' });
  });

  // Since session 57: held, not withdrawn, so the two orders are held together and an override releases them.
  it('a stopped plan whose second read failed: the reconciliation withdraws the EHR’s replacement written before the withdrawal, not one written after', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task, ours } = session;
    refuseReadsAfterTheReplacement(session);
    const plan = await service.fhir.read<CarePlan>('CarePlan', task.basedOn![0].reference!.split('/')[1]);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    expect((await service.app.get(StoppedPlanSweep).sweep()).withdrawn).toBeGreaterThanOrEqual(1);
    behind.proxy.intercept = () => undefined;
    const crossing = session.ehrReplacement!;
    // The session is withdrawn with its order, and the EHR's replacement written meanwhile is left to give.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', crossing.id!)).status).toBe('active');
    // Later, the EHR replaces the withdrawn order again, reading it cancelled: its own decision, left as it wrote it.
    const later = await replacedAgainReadCancelled(ours);
    await service.app.get(AnsweredOrdersSweep).sweep();
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', crossing.id!);
    // Before, nothing looked at the withdrawn session again: the crossing replacement stayed there to give.
    expect(theirs.status).toBe('cancelled');
    expect(theirs.statusReason?.text).toMatch(/^Withdrawn/);
    expect(await decisionOn(theirs)).toEqual({
      who: 'ketamine-careplans (automatic)',
      decision: 'close the order of a closed Task',
    });
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', later.id!)).status).toBe('active');
  });

  it('$reject whose second read failed: the reconciliation cancels the EHR’s replacement with the rejection’s reason', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task } = session;
    refuseReadsAfterTheReplacement(session);
    // The decision stands and is answered so, though its second read failed.
    await request(service.url)
      .post(`/tasks/${task.id}/$reject`)
      .set(service.as('clinician'))
      .send({ versionId: task.meta!.versionId, reason: 'the patient declined' })
      .expect(200);
    behind.proxy.intercept = () => undefined;
    const crossing = session.ehrReplacement!;
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', crossing.id!)).status).toBe('active');
    await service.app.get(AnsweredOrdersSweep).sweep();
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', crossing.id!);
    expect([theirs.status, theirs.statusReason?.text]).toEqual(['cancelled', 'the patient declined']);
    expect((await openOrdersOf(task)).map((o) => o.id)).toEqual([]);
  });

  it('$change-dose whose second read failed: the reconciliation replaces the EHR’s order written before the change, not one written after', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task, ours } = session;
    refuseReadsAfterTheReplacement(session);
    // The change stands and is answered so, though its second read failed.
    await request(service.url)
      .post(`/tasks/${task.id}/$change-dose`)
      .set(service.as('clinician'))
      .send({ versionId: task.meta!.versionId, rate: { value: 0.625, unit: 'mg/kg/h' }, reason: 'weighed again' })
      .expect(200);
    behind.proxy.intercept = () => undefined;
    const crossing = session.ehrReplacement!;
    const [newDose] = (await openOrdersOf(task)).filter((o) => o.id !== crossing.id);
    expect(newDose.priorPrescription?.reference).toBe(`MedicationRequest/${ours.id}`);
    // Two orders to give for the session: the new dose and the EHR's replacement of the old one.
    expect((await openOrdersOf(task)).map((o) => o.id).sort()).toEqual([newDose.id, crossing.id].sort());
    // Later, the EHR replaces the old order again, reading it cancelled: its own decision, left as it wrote it.
    const later = await replacedAgainReadCancelled(ours);
    await service.app.get(AnsweredOrdersSweep).sweep();
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', crossing.id!);
    // Before, nothing looked at the session again: the crossing replacement stayed there to give beside the new dose.
    expect([theirs.status, theirs.statusReason?.text]).toEqual([
      'cancelled',
      expect.stringMatching(/^Replaced by a new order at 0\.625 mg\/kg\/h/),
    ]);
    expect(await decisionOn(theirs)).toEqual({
      who: 'ketamine-careplans (automatic)',
      decision: 'replace an order a dose change crossed',
    });
    expect((await openOrdersOf(task)).map((o) => o.id).sort()).toEqual([newDose.id, later.id].sort());
  });

  it('a server that pages history: when the session was closed is read from every page, so a later replacement stands', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const task = await approveFirstSession(service, carePlanId);
    await request(service.url)
      .post(`/tasks/${task.id}/$reject`)
      .set(service.as('clinician'))
      .send({ versionId: task.meta!.versionId, reason: 'the patient declined' })
      .expect(200);
    const [ours] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(task.id!),
    });
    expect(ours.status).toBe('cancelled');
    // The EHR replaces the order it reads cancelled (its own decision), then notes something on the rejected Task.
    const ehr = new FhirClient({ baseUrl: behind.sandbox.baseUrl, maxAttempts: 1 });
    const { resource: later } = await ehr.create(ehrReplacementOf(ours, infusionDosage(0.5, 40)));
    const rejected = await ehr.read<Task>('Task', task.id!);
    await ehr.update<Task>({ ...rejected, note: [{ text: 'patient to call back' }] });
    // A server paging history by one (as HAPI does by 20): the Task's first page holds only the note's version.
    const histories = new Map<string, unknown[]>();
    for (const ref of [`Task/${task.id}`, `MedicationRequest/${later.id}`]) {
      const [type, id] = ref.split('/') as ['Task' | 'MedicationRequest', string];
      histories.set(`${ref}/_history`, await service.fhir.versionsOf(type, id));
    }
    behind.proxy.intercept = (method, _path, body) => {
      if (method !== 'POST' || !body.includes('/_history')) return undefined;
      const asked = (JSON.parse(body) as { entry: { request: { url: string } }[] }).entry.map((e) => e.request.url);
      const entry = asked.map((url) => {
        const versions = histories.get(url) ?? [];
        const paged = url.startsWith('Task/') && versions.length > 1;
        return {
          response: { status: '200' },
          resource: {
            resourceType: 'Bundle',
            type: 'history',
            entry: (paged ? versions.slice(0, 1) : versions).map((resource) => ({ resource })),
            link: paged ? [{ relation: 'next', url: `${behind.proxy.baseUrl}/${url}?_page=2` }] : [],
          },
        };
      });
      return { status: 200, body: { resourceType: 'Bundle', type: 'batch-response', entry } };
    };
    await service.app.get(AnsweredOrdersSweep).sweep();
    // Read from its first page alone, the Task was closed when the note was written, after the EHR's replacement:
    // counted as crossing the rejection and cancelled. Read whole, it was closed before the replacement was written.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', later.id!)).status).toBe('active');
  });

  it('a contraindication found after approval: the EHR’s replacement is held with the order', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task } = session;
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], task.for!.reference));
    await service.app.get(ContraindicationSweep).recheckFor(task.basedOn![0].reference!);
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', session.ehrReplacement!.id!);
    // Nothing to give while the contraindication stands. Before, the EHR's replacement stayed active under the held
    // session, and the sweep did not hold it either.
    expect((await openOrdersOf(task)).map((o) => [o.id, o.status])).toEqual(
      expect.arrayContaining([[theirs.id, 'on-hold']]),
    );
    expect((await openOrdersOf(task)).filter((o) => o.status === 'active')).toEqual([]);
    expect(theirs.detectedIssue?.length).toBeGreaterThan(0);
    expect(await decisionOn(theirs)).toEqual({
      who: 'ketamine-careplans (automatic)',
      decision: 'hold for contraindication',
    });
  });

  it('a session held for a contraindication: an order the EHR writes for it afterwards is held by the recheck', async () => {
    const { carePlanId, patient } = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const task = await approveFirstSession(service, carePlanId);
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    const recheck = () => service.app.get(ContraindicationSweep).recheckFor(`CarePlan/${carePlanId}`);
    await recheck();
    const [held] = await openOrdersOf(task);
    expect(held.status).toBe('on-hold');
    // The EHR, not reading the hold, writes a new dose for the session as an active order.
    const { resource: theirs } = await service.fhir.create(ehrReplacementOf(held, infusionDosage(0.75, 60)));
    await recheck();
    // Before, only approved sessions' orders were held: an order written for a held session stayed there to give.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', theirs.id!)).status).toBe('on-hold');
  });

  it('a paused plan: the EHR’s replacement is held with the order', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task } = session;
    const plan = await service.fhir.read<CarePlan>('CarePlan', task.basedOn![0].reference!.split('/')[1]);
    await service.fhir.update<CarePlan>({ ...plan, status: 'on-hold' });
    expect(await service.app.get(PausedPlanHolds).hold(await service.app.get(OpenTasksReader).all())).toBe(2);
    // Before, the EHR's replacement stayed active until the next sweep (15 minutes).
    expect((await openOrdersOf(task)).map((o) => o.status)).toEqual(['on-hold', 'on-hold']);
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', session.ehrReplacement!.id!);
    expect(await decisionOn(theirs)).toEqual({ who: 'ketamine-careplans (automatic)', decision: 'hold' });
  });

  it('a Task deleted in the EHR: the EHR’s replacement is withdrawn with the order', async () => {
    const session = await replacedInEhrAtTheWrite();
    const { task } = session;
    expect((await fetch(`${behind.sandbox.baseUrl}/Task/${task.id}`, { method: 'DELETE' })).ok).toBe(true);
    expect(await service.app.get(DeletedTasks).heard(task.id!)).toEqual({ withdrawn: 1 });
    // Before, the EHR's replacement stayed active, its session gone.
    expect((await openOrdersOf(task)).map((o) => o.id)).toEqual([]);
    const theirs = await service.fhir.read<MedicationRequest>('MedicationRequest', session.ehrReplacement!.id!);
    expect(await decisionOn(theirs)).toEqual({ who: 'ketamine-careplans (automatic)', decision: 'withdraw' });
  });
});
