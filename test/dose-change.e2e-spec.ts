import request from 'supertest';
import type {
  Dosage,
  MedicationAdministration,
  MedicationRequest,
  OperationOutcome,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { mintToken } from '@kc/auth';
import { orderKeySearch } from '@kc/task-states';
import { bloodPressure, bodyWeight } from './fixtures/patient-data';
import { DOSE_RATE_TYPE, infusionDosage } from './fixtures/orders';
import {
  actionOf,
  approveFirstSession,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  reportInfusion,
} from './support/clinic';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

/** The value of a dosage's doseAndRate entry of this dose-rate-type, in the field asked. */
function ordered(dosage: Dosage | undefined, type: 'ordered' | 'calculated', field: 'rateQuantity' | 'doseQuantity') {
  return dosage?.doseAndRate?.find((d) =>
    d.type?.coding?.some((c) => c.system === DOSE_RATE_TYPE && c.code === type),
  )?.[field]?.value;
}

const message = (res: request.Response) => (res.body as OperationOutcome).issue[0].details?.text;

/**
 * `$change-dose`: a clinician changes the dose of an approved infusion before its session (the patient weighed again,
 * the last session's effects). The order is replaced, never edited: what an EHR or a pump reads in standard fields
 * is one active order at the new dose, naming the one it replaces (`priorPrescription`), that one cancelled.
 */
describe('changing the dose of an approved infusion before its session', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  const clinician = () => service.as('clinician');

  /** The session's row on the patient's to-do list, as the page shows it. */
  async function toDoRowOf(task: Task, patient: string) {
    type Row = { id: string; view: { orderedDose?: string; orderStatus?: string; dose?: unknown } };
    const res = await request(service.url).get('/to-do/view').query({ patient }).set(clinician()).expect(200);
    return (res.body.items as Row[]).find((i) => i.id === task.id);
  }

  async function approvedSession(weightKg = 80): Promise<{ task: Task; patient: string; carePlanId: string }> {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg });
    return { task: await approveFirstSession(service, enrolment.carePlanId), ...enrolment };
  }

  const changeDose = (task: Task, body: object, as = clinician()) =>
    request(service.url)
      .post(`/tasks/${task.id}/$change-dose`)
      .set(as)
      .send({ versionId: task.meta!.versionId, ...body });

  const ordersOf = (task: Task, status?: string) =>
    service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(task.id!),
      ...(status ? { status } : {}),
      _sort: '_lastUpdated',
    });

  const rate = (value: number) => ({ rate: { value, unit: 'mg/kg/h' } });
  const bolus = (value: number) => ({ bolus: { value, unit: 'mg/kg' } });

  it('a new order at the rate and bolus asked, at today’s weight, replacing the old one, with a Provenance', async () => {
    const { task, patient } = await approvedSession(80);
    const [first] = await ordersOf(task);
    expect(ordered(first.dosageInstruction?.[0], 'calculated', 'rateQuantity')).toBe(40);
    // Weighed again since the approval: the new order is computed from this weight.
    await service.fhir.create(bodyWeight(90, '2026-12-01T09:00:00Z', patient));

    const reason = 'Dissociation at the last session; lowering the rate';
    const res = await changeDose(task, { ...rate(0.75), ...bolus(0.25), reason }).expect(200);
    const changed = res.body as Task;
    // The Task is still approved and to be done; its version moved (the decision's lock).
    expect(changed).toMatchObject({ status: 'ready', businessStatus: { coding: [{ code: 'approved' }] } });
    expect(changed.meta?.versionId).not.toBe(task.meta?.versionId);

    const open = await ordersOf(task, 'active');
    expect(open).toHaveLength(1);
    const [replacement] = open;
    const [infusion, atStart] = replacement.dosageInstruction!;
    expect(ordered(infusion, 'ordered', 'rateQuantity')).toBe(0.75);
    expect(ordered(infusion, 'calculated', 'rateQuantity')).toBe(67.5);
    expect(ordered(atStart, 'ordered', 'doseQuantity')).toBe(0.25);
    expect(ordered(atStart, 'calculated', 'doseQuantity')).toBe(22.5);
    expect(replacement).toMatchObject({
      intent: 'order',
      requester: { reference: 'Practitioner/dr-test' },
      priorPrescription: { reference: `MedicationRequest/${first.id}`, display: '0.5 mg/kg/h (40 mg/h)' },
      note: [{ text: `Dose changed before the session: ${reason}` }],
    });
    expect(replacement.supportingInformation).toContainEqual(
      expect.objectContaining({ display: 'Body weight 90 kg (2026-12-01)' }),
    );
    const replaced = await service.fhir.read<MedicationRequest>('MedicationRequest', first.id!);
    expect(replaced.status).toBe('cancelled');
    expect(replaced.statusReason?.text).toBe(
      'Replaced by a new order at 0.75 mg/kg/h (67.5 mg/h), bolus 0.25 mg/kg (22.5 mg): the dose was changed before the session',
    );

    // Who changed it, when, why, and what it wrote: one Provenance.
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${task.id}` });
    const decision = provenances.find((p) => p.activity?.text === 'change-dose')!;
    expect(decision.reason?.[0].text).toBe(reason);
    expect(decision.agent?.[0].who?.reference).toBe('Practitioner/dr-test');
    expect(decision.target.map((t) => t.reference).sort()).toEqual(
      [`Task/${task.id}`, `MedicationRequest/${first.id}`, `MedicationRequest/${replacement.id}`].sort(),
    );

    // Sent again (its answer lost): answered as done, nothing more written. Another dose on that version: stale.
    await changeDose(task, { ...rate(0.75), ...bolus(0.25), reason }).expect(200);
    const stale = await changeDose(task, rate(1)).expect(412);
    expect(message(stale)).toMatch(/changed since you loaded it/);
    expect(await ordersOf(task)).toHaveLength(2);

    // The dose sent states it whole: without a bolus, the next order gives none. The same dose again: nothing to do.
    const again = (await changeDose(changed, rate(0.75)).expect(200)).body as Task;
    const [latest] = await ordersOf(task, 'active');
    expect(latest.dosageInstruction).toHaveLength(1);
    expect(latest.priorPrescription?.reference).toBe(`MedicationRequest/${replacement.id}`);
    const same = await changeDose(again, rate(0.75)).expect(422);
    expect(message(same)).toBe('The order already gives 0.75 mg/kg/h (67.5 mg/h): there is nothing to change');

    // Outside the protocol, or not a dose: refused, nothing written.
    expect(message(await changeDose(again, rate(2.5)).expect(422))).toMatch(/within 0\.5-2 mg\/kg\/h/);
    expect(message(await changeDose(again, { ...rate(0.75), ...bolus(0.5) }).expect(422))).toMatch(/up to 0\.35/);
    await changeDose(again, {}).expect(400);
    await changeDose(again, { rate: { value: -1, unit: 'mg/kg/h' } }).expect(400);
    await changeDose(again, { ...rate(0.75), dose: 5 }).expect(400);
    expect(await ordersOf(task)).toHaveLength(3);

    // The to-do list shows the order to give, and offers its dose to change from.
    const toDo = await request(service.url).get('/to-do/view').query({ patient }).set(clinician()).expect(200);
    const row = (
      toDo.body.items as { id: string; view: { orderedDose?: string; dose?: { ratePerKg: number } } }[]
    ).find((i) => i.id === task.id);
    expect(row?.view.orderedDose).toBe('0.75 mg/kg/h (67.5 mg/h)');
    expect(row?.view.dose?.ratePerKg).toBe(0.75);
  });

  it('the infusion given completes the new order, and the next session is proposed at its rate', async () => {
    const { task, patient, carePlanId } = await approvedSession(80);
    await changeDose(task, rate(1)).expect(200);
    const procedureId = await completeInfusion(service, { patient, carePlanId }, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    const orders = await ordersOf(task);
    expect(orders.map((o) => o.status)).toEqual(['cancelled', 'completed']);
    const next = (await followUpTasks(service, procedureId)).find((t) => actionOf(t) === 'next-induction-session')!;
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      next.focus!.reference!.split('/')[1],
    );
    expect(ordered(proposal.dosageInstruction?.[0], 'ordered', 'rateQuantity')).toBe(1);
  });

  it('refused before its approval, for a check, without a prescriber, once the session has begun', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const draft = tasks.find((t) => actionOf(t) === 'infusion-session')!;
    expect(message(await changeDose(draft, rate(0.75)).expect(409))).toMatch(
      /not approved yet: approve it at the dose/,
    );

    const { task, patient } = await approvedSession(80);
    // A clinician who is no prescriber (no Practitioner in the token) cannot sign the new order.
    const nurse = await mintToken({ sub: 'nurse', roles: ['clinician'], name: 'Nurse' }, { secret: TEST_JWT_SECRET });
    const unsigned = await changeDose(task, rate(0.75), { Authorization: `Bearer ${nurse}` }).expect(422);
    expect(message(unsigned)).toMatch(/needs a prescriber/);

    // The pump has started the session: its rate is changed at the pump.
    const [order] = await ordersOf(task);
    const started: MedicationAdministration = {
      resourceType: 'MedicationAdministration',
      status: 'in-progress',
      medicationCodeableConcept: order.medicationCodeableConcept,
      subject: { reference: patient },
      request: { reference: `MedicationRequest/${order.id}` },
      effectivePeriod: { start: '2027-01-04T09:00:00.000Z' },
    };
    await service.fhir.create(started);
    const begun = await changeDose(task, rate(0.75)).expect(409);
    expect(message(begun)).toBe(
      'This session has begun (the pump recorded it at 2027-01-04T09:00:00.000Z): change its rate at the pump; the next session is proposed from the rate given',
    );
    expect((await ordersOf(task)).map((o) => o.status)).toEqual(['active']);

    // A check orders no medication: it has no dose.
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    const check = (await followUpTasks(service, procedureId)).find((t) => actionOf(t) === 'post-infusion-check')!;
    expect(message(await changeDose(check, rate(0.75)).expect(422))).toBe(
      'This task orders no medication: it has no dose to change',
    );
  });

  it('a contraindication recorded since the approval refuses the change, and holds the order', async () => {
    const { task, patient } = await approvedSession(80);
    await service.fhir.create(bloodPressure(195, 115, new Date().toISOString(), patient));
    const refused = await changeDose(task, rate(0.75)).expect(422);
    expect(message(refused)).toMatch(/hypertension/i);
    const orders = await ordersOf(task);
    expect(orders.map((o) => [o.status, ordered(o.dosageInstruction?.[0], 'ordered', 'rateQuantity')])).toEqual([
      ['on-hold', 0.5],
    ]);
    // Held now: still refused, whatever the version.
    const held = await service.fhir.read<Task>('Task', task.id!);
    expect(held.status).toBe('on-hold');
    expect((await changeDose(held, rate(0.75))).status).toBeGreaterThanOrEqual(409);
    expect(await ordersOf(task)).toHaveLength(1);
  });

  it('the to-do list says when the EHR replaced, held or cancelled the order approved here', async () => {
    const replaced = await approvedSession(80);
    const held = await approvedSession(80);
    const cancelled = await approvedSession(80);
    for (const s of [replaced, held, cancelled]) {
      const row = await toDoRowOf(s.task, s.patient);
      expect(row?.view.orderStatus).toBeUndefined();
      expect(row?.view.orderedDose).toBe('0.5 mg/kg/h (40 mg/h)');
    }
    // The prescriber changes the dose in the EHR: the order approved here cancelled, the EHR's own replacing it.
    const [ours] = await ordersOf(replaced.task);
    await service.fhir.update<MedicationRequest>({ ...ours, status: 'cancelled', statusReason: { text: 'Replaced' } });
    const { id: _id, meta: _meta, identifier: _identifier, ...body } = ours;
    const { resource: ehrs } = await service.fhir.create<MedicationRequest>({
      ...body,
      status: 'active',
      priorPrescription: { reference: `MedicationRequest/${ours.id}` },
      dosageInstruction: infusionDosage(0.75, 60),
    });
    // A pharmacist holds another; the third is cancelled in the EHR with nothing in its place.
    const [toHold] = await ordersOf(held.task);
    await service.fhir.update<MedicationRequest>({
      ...toHold,
      status: 'on-hold',
      statusReason: { text: 'Pharmacy: awaiting stock' },
    });
    const [toCancel] = await ordersOf(cancelled.task);
    await service.fhir.update<MedicationRequest>({
      ...toCancel,
      status: 'cancelled',
      statusReason: { text: 'Patient unwell' },
    });

    const replacedRow = await toDoRowOf(replaced.task, replaced.patient);
    expect(replacedRow?.view.orderedDose).toBe('0.75 mg/kg/h (60 mg/h)');
    expect(replacedRow?.view.orderStatus).toBe('Ordered in the EHR, replacing the order approved here');
    // Its dose is the EHR's to change: not offered here.
    expect(replacedRow?.view.dose).toBeUndefined();
    expect((await toDoRowOf(held.task, held.patient))?.view.orderStatus).toBe(
      'Its order is on hold: Pharmacy: awaiting stock',
    );
    const cancelledRow = await toDoRowOf(cancelled.task, cancelled.patient);
    expect(cancelledRow?.view.orderStatus).toBe('No order to give: its order was cancelled (Patient unwell)');
    expect(cancelledRow?.view.orderedDose).toBeUndefined();
    expect(cancelledRow?.view.dose).toBeUndefined();

    // Asked anyway (an integration calling the operation): the dose is changed where the order now is.
    const now = async (t: Task) => service.fhir.read<Task>('Task', t.id!);
    expect(message(await changeDose(await now(replaced.task), rate(1)).expect(409))).toBe(
      `The EHR replaced this task's order with its own (MedicationRequest/${ehrs.id}): change its dose in the EHR`,
    );
    expect(message(await changeDose(await now(cancelled.task), rate(1)).expect(409))).toBe(
      "This task's order is no longer to be given (given, stopped or cancelled): there is no dose to change",
    );
    expect(await ordersOf(replaced.task, 'active')).toEqual([]);
  });

  it('the to-do list says when the EHR’s replacement was left open beside the order approved here: two orders to give', async () => {
    const { task, patient } = await approvedSession(80);
    const [ours] = await ordersOf(task);
    // The EHR changes the dose, but its cancel of the order approved here is refused and never sent again.
    const { id: _id, meta: _meta, identifier: _identifier, ...body } = ours;
    await service.fhir.create<MedicationRequest>({
      ...body,
      status: 'active',
      priorPrescription: { reference: `MedicationRequest/${ours.id}` },
      dosageInstruction: infusionDosage(0.75, 60),
    });
    const row = await toDoRowOf(task, patient);
    expect(row?.view.orderedDose).toBe('0.5 mg/kg/h (40 mg/h)');
    // Before session 39 the row showed the order approved here alone, as if it were the only one to give.
    expect(row?.view.orderStatus).toBe(
      'Also open for this session: 0.75 mg/kg/h (60 mg/h), ordered in the EHR. Two orders to give: cancel one in the EHR',
    );
  });

  it('the to-do list names the EHR’s second replacement, left open beside the order approved here through a cancelled first one', async () => {
    const { task, patient } = await approvedSession(80);
    const [ours] = await ordersOf(task);
    // The EHR replaces the order twice; its cancel of the order approved here is refused, and the second replacement
    // cancels the first: the one open beside ours names a cancelled order, not ours.
    const { id: _id, meta: _meta, identifier: _identifier, ...body } = ours;
    const first = await service.fhir.create<MedicationRequest>({
      ...body,
      status: 'active',
      priorPrescription: { reference: `MedicationRequest/${ours.id}` },
      dosageInstruction: infusionDosage(0.75, 60),
    });
    await service.fhir.create<MedicationRequest>({
      ...body,
      status: 'active',
      priorPrescription: { reference: `MedicationRequest/${first.resource.id}` },
      dosageInstruction: infusionDosage(0.625, 50),
    });
    await service.fhir.update<MedicationRequest>({ ...first.resource, status: 'cancelled' });
    const row = await toDoRowOf(task, patient);
    expect(row?.view.orderedDose).toBe('0.5 mg/kg/h (40 mg/h)');
    // Before session 40 the row read the patient's open orders alone and named nothing: the nurse saw two in the EHR.
    expect(row?.view.orderStatus).toBe(
      'Also open for this session: 0.625 mg/kg/h (50 mg/h), ordered in the EHR. Two orders to give: cancel one in the EHR',
    );
  });
});
