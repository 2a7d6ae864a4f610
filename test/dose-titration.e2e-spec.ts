import request from 'supertest';
import type {
  Communication,
  Dosage,
  Medication,
  MedicationAdministration,
  MedicationRequest,
  OperationOutcome,
  Patient,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { administrationRecordedJobId, orderChangedJobId } from '@kc/queue';
import { orderKeySearch } from '@kc/task-states';
import { bloodPressure, bodyWeight } from './fixtures/patient-data';
import { administrationOf, DOSE_RATE_TYPE, infusionDosage, ucum } from './fixtures/orders';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  maintenanceJobDone,
  postWebhook,
  reportInfusion,
} from './support/clinic';
import { LateAdministrations } from '../apps/worker/src/followups/late-administrations.service';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import type { TestService } from './support/test-service';
import { mailsTo, startSmtpServer, type SmtpServer, serviceEmailingClinic } from './support/smtp-server';

/** The rate of a dosage of this dose-rate-type (`ordered`: per kg, as prescribed; `calculated`: mg/h to give). */
function rate(dosage: Dosage[] | undefined, type: 'ordered' | 'calculated') {
  const entry = dosage?.[0].doseAndRate?.find((d) =>
    d.type?.coding?.some((c) => c.system === DOSE_RATE_TYPE && c.code === type),
  );
  return entry?.rateQuantity && { value: entry.rateQuantity.value, code: entry.rateQuantity.code };
}

describe('dose titration: an infusion is ordered at a rate per kg within its protocol range, and the next proposed at it', () => {
  let service: TestService;
  let smtp: SmtpServer;
  // The clinic is told (by email and in the EHR's inbox) of an approved order that a late pump record puts at odds with
  // its protocol.
  const ON_CALL = 'PractitionerRole/on-call';
  beforeAll(async () => {
    smtp = await startSmtpServer();
    service = await serviceEmailingClinic(smtp, {
      clinicAlertRecipients: [ON_CALL],
      publicUrl: 'https://careplans.clinic.test',
      // An order closed is judged at its notification (its grace for an EHR's replacement is another suite's).
      orderChangeGraceMs: 0,
    });
  });
  afterAll(async () => {
    await service.stop();
    await smtp.stop();
  });

  const clinician = () => service.as('clinician');

  async function firstSession(carePlanId: string): Promise<{ task: Task; proposal: MedicationRequest }> {
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const task = tasks.find((t) => actionOf(t) === 'infusion-session')!;
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      task.focus!.reference!.split('/')[1],
    );
    return { task, proposal };
  }

  const approve = (task: Task, body: object) =>
    request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId, ...body });

  /** The session infused on 4 January, reported: the next session it proposed, and that proposal. */
  async function nextSessionAfterInfusion(enrolment: { patient: string; carePlanId: string }) {
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    const next = (await followUpTasks(service, procedureId)).find((t) => actionOf(t) === 'next-induction-session')!;
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      next.focus!.reference!.split('/')[1],
    );
    return { next, proposal };
  }

  /** What the patient's timeline says was given at the pump, in order. */
  async function givenOnTimeline(patient: string): Promise<string[]> {
    const timeline = await request(service.url)
      .get(`/patients/${patient.split('/')[1]}/timeline`)
      .set(clinician())
      .expect(200);
    return (timeline.body.events as { type: string; text: string }[])
      .filter((e) => e.type === 'administration')
      .map((e) => e.text);
  }

  /**
   * The session infused on 4 January under `order`, documented at the pump afterwards (lowered to 60 mg/h), its
   * notification heard and its job done: the administration.
   */
  async function recordedLateAtThePump(order: MedicationRequest): Promise<MedicationAdministration> {
    const lowered = await loweredAtThePump(order);
    await postWebhook(service, JSON.stringify(lowered)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(lowered.id!), 'the late administration judged');
    return lowered;
  }

  /** The session infused on 4 January under `order`, documented at the pump afterwards, lowered to 60 mg/h. */
  async function loweredAtThePump(order: MedicationRequest): Promise<MedicationAdministration> {
    const { resource } = await service.fhir.create<MedicationAdministration>({
      ...administrationOf(order, 'completed', { start: '2027-01-04T09:20:00.000Z', end: '2027-01-04T09:50:00.000Z' }),
      dosage: { rateQuantity: ucum(60, 'mg/h') },
    });
    return resource;
  }

  /** The messages in the EHR's inbox about this order (the clinic's alerts; the email's records aside). */
  const inboxAbout = async (patient: string, order: MedicationRequest) =>
    (await service.fhir.searchAll<Communication>('Communication', { subject: patient })).filter(
      (c) =>
        c.about?.some((a) => a.reference === `MedicationRequest/${order.id}`) &&
        c.identifier?.some((i) => i.value?.startsWith('inbox:')),
    );

  /** The notice in the EHR's inbox that an alert is dealt with, by its key. */
  const dealtWithInInbox = async (patient: string, key: string) =>
    (await service.fhir.searchAll<Communication>('Communication', { subject: patient })).filter((c) =>
      c.identifier?.some((i) => i.value === key),
    );

  /** A patient at 80 kg given their first session at 1 mg/kg/h, and their next session approved at it. */
  async function nextSessionApproved() {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task } = await firstSession(enrolment.carePlanId);
    await approve(task, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(200);
    const [order] = await ordersOf(task);
    const { next } = await nextSessionAfterInfusion(enrolment);
    const approved = (await approve(next, {}).expect(200)).body as Task;
    const [nextOrder] = await ordersOf(next);
    return { enrolment, order, next, approved, nextOrder };
  }

  const ordersOf = (task: Task) =>
    service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(task.id!) });

  it('the proposal says its rate per kg and the rate it gives; an approval orders the rate asked for, at the latest weight', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task, proposal } = await firstSession(enrolment.carePlanId);
    // An EHR reads the dose by the standard dose-rate types: per kg as ordered, and what that gives for this patient.
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 0.5, code: 'mg/kg/h' });
    expect(rate(proposal.dosageInstruction, 'calculated')).toEqual({ value: 40, code: 'mg/h' });
    expect(proposal.dosageInstruction?.[0].text).toMatch(
      /^Ketamine IV infusion at 0\.5 mg\/kg\/h \(40 mg\/h for 80 kg\) over 40 minutes/,
    );

    // Outside the protocol's range, in another unit, or not a number: refused, and nothing is written.
    const outside = await approve(task, { rate: { value: 2.5, unit: 'mg/kg/h' } }).expect(422);
    expect((outside.body as OperationOutcome).issue[0].details?.text).toMatch(
      /within 0\.5-2 mg\/kg\/h.*2\.5 mg\/kg\/h is outside it/,
    );
    const unit = await approve(task, { rate: { value: 40, unit: 'mg/h' } }).expect(422);
    expect((unit.body as OperationOutcome).issue[0].details?.text).toMatch(/ordered in mg\/kg\/h/);
    await approve(task, { rate: { value: 'fast', unit: 'mg/kg/h' } }).expect(400);
    await approve(task, { rate: { value: -1, unit: 'mg/kg/h' } }).expect(400);
    for (const bad of [
      'fast',
      [0.75],
      { value: 0.75 },
      { value: 0.75, unit: 'mg/kg/h', extra: 1 },
      { value: 0.12345, unit: 'mg/kg/h' },
    ])
      await approve(task, { rate: bad }).expect(400);
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('draft');
    expect(await ordersOf(task)).toEqual([]);

    // Weighed again since the proposal: the order is given at the rate asked for times today's weight.
    const { resource: weighed } = await service.fhir.create(bodyWeight(90, '2026-12-01T09:00:00Z', enrolment.patient));
    await approve(task, { rate: { value: 0.75, unit: 'mg/kg/h' } }).expect(200);
    const [order] = await ordersOf(task);
    expect(order).toMatchObject({ status: 'active', intent: 'order' });
    expect(rate(order.dosageInstruction, 'ordered')).toEqual({ value: 0.75, code: 'mg/kg/h' });
    expect(rate(order.dosageInstruction, 'calculated')).toEqual({ value: 67.5, code: 'mg/h' });
    expect(order.dosageInstruction?.[0].maxDosePerAdministration?.value).toBe(120);
    // What the dose rests on, for the pharmacist or the EHR: the weight it was computed from.
    expect(order.supportingInformation).toContainEqual({
      reference: `Observation/${weighed.id}`,
      display: 'Body weight 90 kg (2026-12-01)',
    });
    expect(order.dosageInstruction?.[0].text).toMatch(
      /^Ketamine IV infusion at 0\.75 mg\/kg\/h \(67\.5 mg\/h for 90 kg\)/,
    );
    // The proposal is left as it was (intent is immutable; the order is the new request).
    const proposalNow = await service.fhir.read<MedicationRequest>('MedicationRequest', proposal.id!);
    expect(rate(proposalNow.dosageInstruction, 'ordered')?.value).toBe(0.5);

    // The same approval sent again (its answer lost) is answered as done; another rate on that version is not.
    await approve(task, { rate: { value: 0.75, unit: 'mg/kg/h' } }).expect(200);
    const other = await approve(task, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(412);
    expect((other.body as OperationOutcome).issue[0].details?.text).toMatch(/changed since you loaded it/);
    expect(await ordersOf(task)).toHaveLength(1);
  });

  it('a bolus at the infusion’s start, up to the protocol’s 0.35 mg/kg: ordered as a second dosage at the latest weight', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 72 });
    const { task, proposal } = await firstSession(enrolment.carePlanId);
    // None is proposed: the clinician asks for one.
    expect(proposal.dosageInstruction).toHaveLength(1);

    // Above the ceiling, in another unit, or not a positive number: refused, nothing written.
    const above = await approve(task, { bolus: { value: 0.5, unit: 'mg/kg' } }).expect(422);
    expect((above.body as OperationOutcome).issue[0].details?.text).toBe(
      "The bolus must be up to 0.35 mg/kg, its limit in this infusion's protocol; 0.5 mg/kg is outside it",
    );
    const unit = await approve(task, { bolus: { value: 20, unit: 'mg' } }).expect(422);
    expect((unit.body as OperationOutcome).issue[0].details?.text).toMatch(/^The bolus is ordered in mg\/kg/);
    for (const bad of [{ value: 0, unit: 'mg/kg' }, { value: -0.2, unit: 'mg/kg' }, { value: 0.2 }, 0.2])
      await approve(task, { bolus: bad }).expect(400);
    expect(await ordersOf(task)).toEqual([]);

    await approve(task, { rate: { value: 0.75, unit: 'mg/kg/h' }, bolus: { value: 0.25, unit: 'mg/kg' } }).expect(200);
    const [order] = await ordersOf(task);
    const [infusion, bolus] = order.dosageInstruction!;
    expect(rate([infusion], 'calculated')).toEqual({ value: 54, code: 'mg/h' });
    // What an EHR reads: the dose per kg as ordered, the dose in mg it gives, once, by the infusion's route.
    const dose = (type: string) =>
      bolus.doseAndRate?.find((d) => d.type?.coding?.some((c) => c.system === DOSE_RATE_TYPE && c.code === type))
        ?.doseQuantity;
    expect(dose('ordered')).toMatchObject({ value: 0.25, code: 'mg/kg', system: 'http://unitsofmeasure.org' });
    expect(dose('calculated')).toMatchObject({ value: 18, code: 'mg' });
    expect(bolus.timing?.repeat?.count).toBe(1);
    expect(bolus.route).toEqual(infusion.route);
    expect(bolus.text).toBe('Ketamine IV bolus 0.25 mg/kg (18 mg for 72 kg) at the start of the infusion');

    // Sent again (its answer lost): done; another bolus on the version approved: refused, one order kept.
    const same = { rate: { value: 0.75, unit: 'mg/kg/h' }, bolus: { value: 0.25, unit: 'mg/kg' } };
    await approve(task, same).expect(200);
    await approve(task, { ...same, bolus: { value: 0.3, unit: 'mg/kg' } }).expect(412);
    expect(await ordersOf(task)).toHaveLength(1);

    // A Task that orders no medication takes no bolus.
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    const followUps = await followUpTasks(service, procedureId);
    const check = followUps.find((t) => actionOf(t) === 'post-infusion-check')!;
    const refused = await approve(check, { bolus: { value: 0.2, unit: 'mg/kg' } }).expect(422);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(/approve it without a bolus/);
    // The next session is proposed without a bolus (one is asked for each time), at the rate given.
    const next = followUps.find((t) => actionOf(t) === 'next-induction-session')!;
    const nextProposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      next.focus!.reference!.split('/')[1],
    );
    expect(nextProposal.dosageInstruction).toHaveLength(1);
    expect(rate(nextProposal.dosageInstruction, 'ordered')?.value).toBe(0.75);
  });

  it('the next session is proposed at the rate last given; a Task that orders no infusion takes no rate', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task } = await firstSession(enrolment.carePlanId);
    await approve(task, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(200);
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    const followUps = await followUpTasks(service, procedureId);
    const next = followUps.find((t) => actionOf(t) === 'next-induction-session')!;
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      next.focus!.reference!.split('/')[1],
    );
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 1, code: 'mg/kg/h' });
    expect(rate(proposal.dosageInstruction, 'calculated')).toEqual({ value: 80, code: 'mg/h' });

    // Approved as proposed, it is ordered at that rate.
    await approve(next, {}).expect(200);
    const [order] = await ordersOf(next);
    expect(rate(order.dosageInstruction, 'ordered')?.value).toBe(1);

    const check = followUps.find((t) => actionOf(t) === 'post-infusion-check')!;
    const refused = await approve(check, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(422);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(
      /This task orders no medication: approve it without a rate/,
    );
    expect((await service.fhir.read<Task>('Task', check.id!)).status).toBe('draft');
  });
  it('a rate lowered at the pump (MedicationAdministration) is where the next session starts', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task } = await firstSession(enrolment.carePlanId);
    await approve(task, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(200);
    const [order] = await ordersOf(task);
    // What the EHR records of the session: started at the order's 80 mg/h, lowered to 60 mg/h twenty minutes in.
    const administered = (mgPerHour: number, start: string, end: string): MedicationAdministration => ({
      resourceType: 'MedicationAdministration',
      status: 'completed',
      medicationCodeableConcept: order.medicationCodeableConcept,
      subject: { reference: enrolment.patient },
      request: { reference: `MedicationRequest/${order.id}` },
      effectivePeriod: { start, end },
      dosage: {
        route: order.dosageInstruction?.[0].route,
        rateQuantity: { value: mgPerHour, unit: 'mg/h', system: 'http://unitsofmeasure.org', code: 'mg/h' },
      },
    });
    const { resource: lowered } = await service.fhir.create(
      administered(60, '2027-01-04T09:20:00.000Z', '2027-01-04T09:40:00.000Z'),
    );
    await service.fhir.create(administered(80, '2027-01-04T09:00:00.000Z', '2027-01-04T09:20:00.000Z'));
    const { next, proposal } = await nextSessionAfterInfusion(enrolment);
    // 60 mg/h for the 80 kg the order was computed for: 0.75 mg/kg/h, not the 1 mg/kg/h ordered.
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 0.75, code: 'mg/kg/h' });
    expect(rate(proposal.dosageInstruction, 'calculated')).toEqual({ value: 60, code: 'mg/h' });
    // Why this rate, in the proposal's standard field: the administration it came from.
    const why = {
      reference: `MedicationAdministration/${lowered.id}`,
      display: 'Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h',
    };
    expect(proposal.supportingInformation).toContainEqual(why);
    // And on the worklist row the clinician approves from.
    const view = await request(service.url)
      .get('/worklist/view')
      .query({ patient: enrolment.patient })
      .set(clinician())
      .expect(200);
    const row = (view.body.items as { id: string; view: { dose?: { lastGiven?: string } } }[]).find(
      (i) => i.id === next.id,
    );
    expect(row?.view.dose?.lastGiven).toBe(why.display);
    // The clinician sees why on the patient's timeline: the rates recorded at the pump, in order.
    expect(await givenOnTimeline(enrolment.patient)).toEqual([
      'Given: Ketamine at 80 mg/h (1 mg/kg/h)',
      'Given: Ketamine at 60 mg/h (0.75 mg/kg/h)',
    ]);
  });

  it('a rate recorded at the pump after the follow-ups were written: the next session is proposed again at it', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task } = await firstSession(enrolment.carePlanId);
    await approve(task, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(200);
    const [order] = await ordersOf(task);
    // Nothing recorded at the pump yet when the infusion is reported: proposed at the order's rate.
    const { next, proposal } = await nextSessionAfterInfusion(enrolment);
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 1, code: 'mg/kg/h' });

    // The eMAR documents the session afterwards: lowered to 60 mg/h. Its notification queues the job.
    const lowered = await recordedLateAtThePump(order);

    const again = await service.fhir.read<MedicationRequest>('MedicationRequest', proposal.id!);
    expect(rate(again.dosageInstruction, 'ordered')).toEqual({ value: 0.75, code: 'mg/kg/h' });
    expect(rate(again.dosageInstruction, 'calculated')).toEqual({ value: 60, code: 'mg/h' });
    expect(again.supportingInformation).toContainEqual({
      reference: `MedicationAdministration/${lowered.id}`,
      display: 'Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h',
    });
    // The Task's version moved with it: an approval of what the clinician saw before is refused, not given unseen.
    expect((await approve(next, {})).status).toBe(412);
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${proposal.id}` })
    ).filter((p) => p.activity?.text === 'propose again at the rate given');
    expect(provenance.reason?.[0].text).toBe(
      'Proposed at the rate the last session was given, recorded since: Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h; proposed at 1 mg/kg/h before',
    );
    // Notified again (or polled): nothing changes.
    const current = await service.fhir.read<Task>('Task', next.id!);
    await postWebhook(service, JSON.stringify(lowered)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(lowered.id!), 'the late administration judged');
    expect((await service.fhir.read<Task>('Task', next.id!)).meta?.versionId).toBe(current.meta?.versionId);

    // Entered in error later: the proposal goes back to the order's rate.
    await service.fhir.update<MedicationAdministration>({ ...lowered, status: 'entered-in-error' });
    expect(await service.app.get(LateAdministrations).handle(lowered.id!)).toEqual({ reproposed: 1, noted: 0 });
    const back = await service.fhir.read<MedicationRequest>('MedicationRequest', proposal.id!);
    expect(rate(back.dosageInstruction, 'ordered')).toEqual({ value: 1, code: 'mg/kg/h' });
    expect((back.supportingInformation ?? []).some((r) => r.reference?.startsWith('MedicationAdministration/'))).toBe(
      false,
    );

    // Approved now, at what it shows: a later record proposes nothing again (the order is the clinician's; it is
    // noted instead, below).
    const shown = await service.fhir.read<Task>('Task', next.id!);
    await approve(shown, {}).expect(200);
    await service.fhir.update<MedicationAdministration>({ ...lowered, status: 'completed' });
    expect(await service.app.get(LateAdministrations).handle(lowered.id!)).toEqual({ reproposed: 0, noted: 1 });
  });

  it('a rate recorded at the pump after the next session was approved: its order is noted, and the to-do list says so until the dose is changed', async () => {
    const { enrolment, order, next, approved, nextOrder } = await nextSessionApproved();
    expect(rate(nextOrder.dosageInstruction, 'ordered')).toEqual({ value: 1, code: 'mg/kg/h' });
    const mailed = () => mailsTo(smtp, 'oncall@clinic.test', mailsBefore);
    const mailsBefore = smtp.received.length;

    // The eMAR documents the first session afterwards: lowered to 60 mg/h.
    const lowered = await recordedLateAtThePump(order);

    // The order is the clinician's: its dose stands, its note says what the pump recorded (an EHR reads it too).
    const noted = await service.fhir.read<MedicationRequest>('MedicationRequest', nextOrder.id!);
    expect([noted.status, rate(noted.dosageInstruction, 'ordered')]).toEqual(['active', { value: 1, code: 'mg/kg/h' }]);
    const words =
      'Recorded at the pump after this session was approved: Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h. Its protocol proposes 0.75 mg/kg/h from it; this order gives 1 mg/kg/h: change the dose if needed';
    expect(noted.note?.map((n) => n.text)).toEqual([...(nextOrder.note ?? []).map((n) => n.text), words]);
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${nextOrder.id}` })
    ).filter((p) => p.activity?.text === 'note the rate given since approval');
    expect(provenance.reason?.[0].text).toBe(words);
    // Before session 39 the to-do list showed the order's rate alone.
    type Row = { id: string; view: { orderStatus?: string } };
    const row = async () =>
      (
        (
          await request(service.url)
            .get('/to-do/view')
            .query({ patient: enrolment.patient })
            .set(clinician())
            .expect(200)
        ).body.items as Row[]
      ).find((i) => i.id === next.id);
    expect((await row())?.view.orderStatus).toBe(words);
    const timeline = await request(service.url)
      .get(`/patients/${enrolment.patient.split('/')[1]}/timeline`)
      .set(clinician())
      .expect(200);
    const onTimeline = (timeline.body.events as { reference: string; reason?: string }[]).find(
      (e) => e.reference === `MedicationRequest/${nextOrder.id}`,
    );
    expect(onTimeline?.reason).toBe(words);
    // The clinic is told, once per channel (session 40): a note on an order is read only by who opens it.
    const subject =
      "Ketamine care plans: an approved infusion's order gives more than its protocol now proposes, to review";
    const toldInInbox = () => inboxAbout(enrolment.patient, nextOrder);
    const [inbox] = await toldInInbox();
    expect(inbox).toMatchObject({
      identifier: [{ value: `inbox:rate-since-approval:MedicationRequest/${nextOrder.id}:0.75` }],
      status: 'completed',
      category: [{ coding: [{ code: 'clinic-alert' }] }],
      subject: { reference: enrolment.patient },
      about: [{ reference: `MedicationRequest/${nextOrder.id}` }, { reference: `Task/${next.id}` }],
      recipient: [{ reference: ON_CALL }],
      topic: { text: subject },
    });
    expect(inbox.payload?.[0].contentString).toContain(
      'From the rate it records, their protocol proposes 0.75 mg/kg/h; the approved order gives 1 mg/kg/h.',
    );
    const [mail] = mailed();
    expect(mail.body).toContain(`Subject: ${subject}`);
    expect(mail.body).toContain(
      'Review it on the to-do list: https://careplans.clinic.test/ui (the patient\'s row says "Recorded at the pump after this session was approved").',
    );
    // Email leaves the clinic's systems: no patient, no record reference.
    expect(mail.body).toContain('This email names no patient');
    for (const id of [enrolment.patient.split('/')[1], nextOrder.id!, next.id!]) expect(mail.body).not.toContain(id);

    // Heard again: noted once, told once.
    expect(await service.app.get(LateAdministrations).handle(lowered.id!)).toEqual({ reproposed: 0, noted: 0 });
    expect(await toldInInbox()).toHaveLength(1);
    expect(mailed()).toHaveLength(1);

    // The clinician changes the dose: the new order gives what the protocol proposes, and the row says nothing more.
    await request(service.url)
      .post(`/tasks/${next.id}/$change-dose`)
      .set(clinician())
      .send({
        versionId: approved.meta!.versionId,
        rate: { value: 0.75, unit: 'mg/kg/h' },
        reason: 'as given last time',
      })
      .expect(200);
    expect((await row())?.view.orderStatus).toBeUndefined();

    // Whoever was told is told it is dealt with, the same way, once, in answer to the alert: when the FHIR server
    // notifies the order the dose change cancelled (before session 41, only at the 15-minute sweep).
    const replaced = await service.fhir.read<MedicationRequest>('MedicationRequest', nextOrder.id!);
    expect(replaced.status).toBe('cancelled');
    await postWebhook(service, JSON.stringify(replaced)).expect(202);
    await maintenanceJobDone(service, orderChangedJobId(nextOrder.id!), 'the worker to hear the replaced order');
    const dealtWithKey = `inbox:resolved:rate-since-approval:MedicationRequest/${nextOrder.id}:0.75`;
    const [dealtWith] = await dealtWithInInbox(enrolment.patient, dealtWithKey);
    expect(dealtWith).toMatchObject({
      inResponseTo: [{ reference: `Communication/${inbox.id}` }],
      priority: 'routine',
    });
    expect(dealtWith.payload?.[0].contentString).toContain(
      "The alert you were sent about an approved infusion's order (its protocol proposing 0.75 mg/kg/h since the pump's late record) is dealt with: its dose was changed.",
    );
    const dealtWithMails = () => mailed().filter((m) => m.body.includes('Subject: Ketamine care plans: dealt with:'));
    expect(dealtWithMails()).toHaveLength(1);
    for (const id of [enrolment.patient.split('/')[1], nextOrder.id!, next.id!])
      expect(dealtWithMails()[0].body).not.toContain(id);
    // The sweep, looking again, tells no one twice.
    const sweep = service.app.get(ContraindicationSweep);
    await sweep.sweep();
    expect(await dealtWithInInbox(enrolment.patient, dealtWithKey)).toHaveLength(1);
    expect(dealtWithMails()).toHaveLength(1);
  });

  it('the noted session begun at the pump: whoever was told is told it is dealt with when the pump’s record is heard', async () => {
    const { enrolment, order, nextOrder } = await nextSessionApproved();
    await recordedLateAtThePump(order);
    const [alert] = await inboxAbout(enrolment.patient, nextOrder);
    expect(alert).toBeDefined();
    const mailsBefore = smtp.received.length;

    // The nurse starts the pump under the noted order, at its rate: the session is the pump's now.
    const { resource: running } = await service.fhir.create<MedicationAdministration>({
      ...administrationOf(nextOrder, 'in-progress', { start: '2027-01-11T09:00:00.000Z' }),
      dosage: { rateQuantity: ucum(80, 'mg/h') },
    });
    await postWebhook(service, JSON.stringify(running)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(running.id!), 'the pump’s record heard');

    const dealtWithKey = `inbox:resolved:rate-since-approval:MedicationRequest/${nextOrder.id}:0.75`;
    const [dealtWith] = await dealtWithInInbox(enrolment.patient, dealtWithKey);
    expect(dealtWith).toMatchObject({ inResponseTo: [{ reference: `Communication/${alert.id}` }] });
    expect(dealtWith.payload?.[0].contentString).toContain('is dealt with: the session was begun at the pump.');
    const mails = mailsTo(smtp, 'oncall@clinic.test', mailsBefore);
    expect(mails.map((m) => m.body.includes('Subject: Ketamine care plans: dealt with:'))).toEqual([true]);
    // The order stays the pump's: active, its note kept.
    const given = await service.fhir.read<MedicationRequest>('MedicationRequest', nextOrder.id!);
    expect(given.status).toBe('active');
  });

  it('the mail server down when the late record is heard: the inbox is told and the job fails to run again; the email goes at its next attempt, or the sweep', async () => {
    const late = service.app.get(LateAdministrations);
    const viaJob = await nextSessionApproved();
    const viaSweep = await nextSessionApproved();
    smtp.goDown();
    const since = smtp.received.length;
    try {
      const lowered = [await loweredAtThePump(viaJob.order), await loweredAtThePump(viaSweep.order)];
      for (const administration of lowered) await expect(late.handle(administration.id!)).rejects.toThrow();
      for (const p of [viaJob, viaSweep]) expect(await inboxAbout(p.enrolment.patient, p.nextOrder)).toHaveLength(1);
      smtp.comeBack();
      // The job's next attempt: noted before, so nothing is noted again; its email goes now.
      expect(await late.handle(lowered[0].id!)).toEqual({ reproposed: 0, noted: 0 });
      expect(mailsTo(smtp, 'oncall@clinic.test', since)).toHaveLength(1);
      // A job that gave up (a mail server down longer than its retries): the 15-minute sweep sends the other's.
      const sweep = service.app.get(ContraindicationSweep);
      expect((await sweep.sweep()).alerted).toBeGreaterThanOrEqual(1);
      const mails = mailsTo(smtp, 'oncall@clinic.test', since);
      expect(mails).toHaveLength(2);
      for (const mail of mails)
        expect(mail.body).toContain('their protocol proposes 0.75 mg/kg/h; the approved order gives 1 mg/kg/h.');
      // Looked at again: told already, by each channel.
      await sweep.sweep();
      expect(mailsTo(smtp, 'oncall@clinic.test', since)).toHaveLength(2);
      for (const p of [viaJob, viaSweep]) expect(await inboxAbout(p.enrolment.patient, p.nextOrder)).toHaveLength(1);
    } finally {
      // The suite's mail server takes mail again, whatever happened.
      smtp.comeBack();
    }
  });

  it('a pump run in mL/h is read through the concentration of the bag given (its Medication on the server)', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task } = await firstSession(enrolment.carePlanId);
    await approve(task, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(200);
    const [order] = await ordersOf(task);
    // 500 mg of ketamine in 250 mL of saline (2 mg/mL), as the EHR's pharmacy records the bag.
    const { resource: bag } = await service.fhir.create<Medication>({
      resourceType: 'Medication',
      code: { text: 'Ketamine 500 mg in 250 mL NaCl 0.9%' },
      ingredient: [
        {
          itemCodeableConcept: order.medicationCodeableConcept,
          strength: {
            numerator: { value: 500, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' },
            denominator: { value: 250, unit: 'mL', system: 'http://unitsofmeasure.org', code: 'mL' },
          },
        },
      ],
    });
    // The pump is programmed in mL/h: 40 mL/h (80 mg/h) at the start, lowered to 30 mL/h (60 mg/h).
    const atPump = (mlPerHour: number, start: string): MedicationAdministration => ({
      resourceType: 'MedicationAdministration',
      status: 'completed',
      medicationReference: { reference: `Medication/${bag.id}` },
      subject: { reference: enrolment.patient },
      request: { reference: `MedicationRequest/${order.id}` },
      effectivePeriod: { start },
      dosage: { rateQuantity: { value: mlPerHour, unit: 'mL/h', system: 'http://unitsofmeasure.org', code: 'mL/h' } },
    });
    await service.fhir.create(atPump(40, '2027-01-04T09:00:00.000Z'));
    const { resource: lowered } = await service.fhir.create(atPump(30, '2027-01-04T09:20:00.000Z'));
    const { proposal } = await nextSessionAfterInfusion(enrolment);
    // 30 mL/h x 2 mg/mL = 60 mg/h, for the 80 kg the order was computed for: 0.75 mg/kg/h.
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 0.75, code: 'mg/kg/h' });
    expect(proposal.supportingInformation).toContainEqual({
      reference: `MedicationAdministration/${lowered.id}`,
      display: 'Last session given at 30 mL/h of 2 mg/mL (0.75 mg/kg/h); ordered at 1 mg/kg/h',
    });
    expect(await givenOnTimeline(enrolment.patient)).toEqual([
      'Given: Ketamine at 40 mL/h of 2 mg/mL (1 mg/kg/h)',
      'Given: Ketamine at 30 mL/h of 2 mg/mL (0.75 mg/kg/h)',
    ]);
  });

  it('a dose the EHR changed (its own order replacing the one approved here) is where the next session starts', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task } = await firstSession(enrolment.carePlanId);
    await approve(task, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(200);
    const [approved] = await ordersOf(task);
    // The prescriber lowers the dose in the EHR: the order approved here cancelled, the EHR's own at 0.75 mg/kg/h
    // (60 mg/h for 80 kg) replacing it, and the session recorded under it, lowered again to 48 mg/h at the pump.
    await service.fhir.update<MedicationRequest>({
      ...approved,
      status: 'cancelled',
      statusReason: { text: 'Dose changed in the EHR' },
    });
    const { resource: ehrOrder } = await service.fhir.create<MedicationRequest>({
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      medicationCodeableConcept: approved.medicationCodeableConcept,
      subject: { reference: enrolment.patient },
      priorPrescription: { reference: `MedicationRequest/${approved.id}` },
      dosageInstruction: infusionDosage(0.75, 60),
    });
    const { resource: lowered } = await service.fhir.create<MedicationAdministration>({
      resourceType: 'MedicationAdministration',
      status: 'completed',
      medicationCodeableConcept: approved.medicationCodeableConcept,
      subject: { reference: enrolment.patient },
      request: { reference: `MedicationRequest/${ehrOrder.id}` },
      effectivePeriod: { start: '2027-01-04T09:15:00.000Z', end: '2027-01-04T09:55:00.000Z' },
      dosage: { rateQuantity: ucum(48, 'mg/h') },
    });
    const { proposal } = await nextSessionAfterInfusion(enrolment);
    // 48 mg/h for the 80 kg the EHR's order was computed for: 0.6 mg/kg/h (not the 1 mg/kg/h approved here).
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 0.6, code: 'mg/kg/h' });
    expect(proposal.supportingInformation).toContainEqual({
      reference: `MedicationAdministration/${lowered.id}`,
      display: 'Last session given at 48 mg/h (0.6 mg/kg/h); ordered at 0.75 mg/kg/h',
    });
    expect(await givenOnTimeline(enrolment.patient)).toEqual(['Given: Ketamine at 48 mg/h (0.6 mg/kg/h)']);
  });

  it('administrations the EHR records without an order are read by time; another drug given then is not the rate', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task } = await firstSession(enrolment.carePlanId);
    await approve(task, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(200);
    const [order] = await ordersOf(task);
    const recorded = (
      medication: MedicationAdministration['medicationCodeableConcept'],
      mgPerHour: number,
      start: string,
      extra: Partial<MedicationAdministration> = {},
    ): MedicationAdministration => ({
      resourceType: 'MedicationAdministration',
      status: 'completed',
      medicationCodeableConcept: medication,
      subject: { reference: enrolment.patient },
      effectivePeriod: { start },
      dosage: { rateQuantity: ucum(mgPerHour, 'mg/h') },
      ...extra,
    });
    const ondansetron = {
      coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '26225', display: 'ondansetron' }],
    };
    // The session at 60 mg/h, no order named; an antiemetic run later in it; a ketamine record of the day before.
    const { resource: lowered } = await service.fhir.create(
      recorded(order.medicationCodeableConcept, 60, '2027-01-04T09:10:00.000Z'),
    );
    await service.fhir.create(recorded(ondansetron, 8, '2027-01-04T09:30:00.000Z'));
    await service.fhir.create(recorded(order.medicationCodeableConcept, 20, '2027-01-03T09:30:00.000Z'));
    const { proposal } = await nextSessionAfterInfusion(enrolment);
    // 60 mg/h for the 80 kg the order approved here was computed for: 0.75 mg/kg/h.
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 0.75, code: 'mg/kg/h' });
    expect(proposal.supportingInformation).toContainEqual({
      reference: `MedicationAdministration/${lowered.id}`,
      display: 'Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h',
    });
  });

  it('a session given under no order written here: a rate per hour read for the latest body weight on record', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { proposal: first } = await firstSession(enrolment.carePlanId);
    // Given from the EHR's own paperwork, never approved here: the pump's 60 mg/h, recorded under no order.
    const { resource: given } = await service.fhir.create<MedicationAdministration>({
      resourceType: 'MedicationAdministration',
      status: 'completed',
      medicationCodeableConcept: first.medicationCodeableConcept,
      subject: { reference: enrolment.patient },
      effectivePeriod: { start: '2027-01-04T09:05:00.000Z', end: '2027-01-04T09:50:00.000Z' },
      dosage: { rateQuantity: ucum(60, 'mg/h') },
    });
    const { proposal } = await nextSessionAfterInfusion(enrolment);
    // 60 mg/h for the 80 kg on record: 0.75 mg/kg/h, not the protocol's 0.5 mg/kg/h start.
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 0.75, code: 'mg/kg/h' });
    expect(proposal.supportingInformation).toContainEqual({
      reference: `MedicationAdministration/${given.id}`,
      display: 'Last session given at 60 mg/h (0.75 mg/kg/h)',
    });
  });

  it('a reschedule approves at a rate too; an approved Task takes no new rate, its order being written', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { weightKg: 80 });
    const { task } = await firstSession(enrolment.carePlanId);
    const window = task.restriction!.period!;
    const reschedule = (t: Task, rate?: object) =>
      request(service.url)
        .post(`/tasks/${t.id}/$reschedule`)
        .set(clinician())
        .send({ versionId: t.meta!.versionId, start: window.start, end: window.end, ...(rate ? { rate } : {}) });
    await reschedule(task, { value: 3, unit: 'mg/kg/h' }).expect(422);
    // Its body is checked as $approve's: a rate or a bolus that is not a positive number is a 400, before any read.
    await reschedule(task, { value: -1, unit: 'mg/kg/h' }).expect(400);
    await request(service.url)
      .post(`/tasks/${task.id}/$reschedule`)
      .set(clinician())
      .send({
        versionId: task.meta!.versionId,
        start: window.start,
        end: window.end,
        bolus: { value: 0, unit: 'mg/kg' },
      })
      .expect(400);
    const rescheduled = (await reschedule(task, { value: 1.25, unit: 'mg/kg/h' }).expect(200)).body as Task;
    const [order] = await ordersOf(task);
    expect(rate(order.dosageInstruction, 'ordered')).toEqual({ value: 1.25, code: 'mg/kg/h' });
    expect(rate(order.dosageInstruction, 'calculated')).toEqual({ value: 100, code: 'mg/h' });
    // Approved now: rescheduling it again moves its window; a rate with it is refused (the order is written).
    const refused = await reschedule(rescheduled, { value: 1.5, unit: 'mg/kg/h' }).expect(422);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(/change the dose with \$change-dose/);
    await reschedule(rescheduled).expect(200);
    expect(await ordersOf(task)).toHaveLength(1);
  });

  it('with no body weight on record, no rate per kg can be ordered: the clinician is told to record one', async () => {
    const { resource: patient } = await service.fhir.create<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Unweighed' }],
    });
    await service.fhir.create(bloodPressure(124, 78, '2026-11-01T09:00:00Z', `Patient/${patient.id}`));
    const applied = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(clinician())
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'subject', valueReference: { reference: `Patient/${patient.id}` } },
          { name: 'startDate', valueDate: '2027-01-01' },
          { name: 'persist', valueBoolean: true },
        ],
      })
      .expect(200);
    const { task, proposal } = await firstSession(applied.body.id);
    expect(rate(proposal.dosageInstruction, 'ordered')).toEqual({ value: 0.5, code: 'mg/kg/h' });
    expect(rate(proposal.dosageInstruction, 'calculated')?.value).toBeUndefined();
    const refused = await approve(task, { rate: { value: 0.75, unit: 'mg/kg/h' } }).expect(422);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(
      /record a body weight in kg, then approve/,
    );
    expect(await ordersOf(task)).toEqual([]);
  });
});
