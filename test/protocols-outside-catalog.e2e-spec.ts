import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import type {
  ActivityDefinition,
  Appointment,
  Bundle,
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  MedicationAdministration,
  MedicationRequest,
  OperationOutcome,
  Parameters,
  Patient,
  PlanDefinition,
  Provenance,
  Questionnaire,
  Task,
} from '@medplum/fhirtypes';
import { PlanDefinitions } from '@kc/nest-core';
import { protocolWindowOf, ProtocolCatalog } from '@kc/protocols';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { activeCondition, bloodPressure, bodyWeight, outcomeScore, PREGNANCY } from './fixtures/patient-data';
import {
  actionOf,
  completeInfusion,
  followUpJobDone,
  followUpTasks,
  maintenanceJobDone,
  overrideIssue,
  postDeletion,
  postWebhook,
  queueIdle,
  reportInfusion,
  reportScore,
  worklistIdsOf,
} from './support/clinic';
import { QUEUES, recheckContraindicationsJobId, ScoreEventsProducer, sessionApprovedJobId } from '@kc/queue';
import { PollCursors } from '../apps/worker/src/maintenance/change-polls';
import { ScorePoller } from '../apps/worker/src/outcomes/score-poller';
import { checkAnswers } from './support/checks';
import { score } from './support/clinician';
import { administrationOf, ucum } from './fixtures/orders';
import { LateAdministrations } from '../apps/worker/src/followups/late-administrations.service';
import { AppointmentBookings } from '../apps/worker/src/bookings/appointment-bookings.service';
import { mailsTo, startSmtpServer, type SmtpServer, serviceEmailingClinic } from './support/smtp-server';
import { TEST_WEBHOOK_SECRET, type TestService } from './support/test-service';

/**
 * A protocol that is not one of the catalog's (an EHR's PlanDefinition, posted to the FHIR server or sent inline to
 * $apply) is held to the same rule as the catalog's: a patient found contraindicated after enrolment gets no order,
 * and an order approved before is held.
 */
describe('protocols outside the catalog', () => {
  let service: TestService;
  let smtp: SmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer();
    service = await serviceEmailingClinic(smtp);
  });
  afterAll(async () => {
    await service.stop();
    await smtp.stop();
  });

  const clinician = () => service.as('clinician');
  const catalogPlan = (id: string) =>
    JSON.parse(readFileSync(join(__dirname, `../fhir-profiles/PlanDefinition-${id}.json`), 'utf8')) as PlanDefinition;
  const catalogSeries = catalogPlan('ketamine-low-dose-series');
  let serial = 0;

  /**
   * The EHR's own copy of a catalog protocol (its contraindications, infusions, follow-ups and reminders), under its
   * url: by default the low-dose series.
   */
  function ehrSeries(version = '1', extra: Partial<PlanDefinition> = {}, of = catalogSeries): PlanDefinition {
    const { id: _id, meta: _meta, text: _text, ...definition } = of;
    return {
      ...definition,
      url: `http://ehr.example/PlanDefinition/ketamine-series-${Date.now()}-${++serial}`,
      version,
      ...extra,
    };
  }

  /** An eligible 80 kg patient. */
  async function eligiblePatient(): Promise<string> {
    const { resource } = await service.fhir.create<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Outside', given: ['Pat'] }],
      birthDate: '1980-03-01',
    });
    const ref = `Patient/${resource.id}`;
    await service.fhir.create(bodyWeight(80, '2026-11-01T09:00:00Z', ref));
    await service.fhir.create(bloodPressure(122, 76, '2026-11-10T09:00:00Z', ref));
    return ref;
  }

  function applyParameters(subject: string, plan: { resource: PlanDefinition } | { url: string }, persist = true) {
    return {
      resourceType: 'Parameters',
      parameter: [
        'resource' in plan ? { name: 'planDefinition', resource: plan.resource } : { name: 'url', valueUri: plan.url },
        { name: 'subject', valueReference: { reference: subject } },
        { name: 'startDate', valueDate: '2027-01-01' },
        { name: 'persist', valueBoolean: persist },
      ],
    };
  }

  async function apply(subject: string, plan: { resource: PlanDefinition } | { url: string }, persist = true) {
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(applyParameters(subject, plan, persist))
      .expect(200);
    return res.body as CarePlan;
  }

  /** A clinician's approval of the Task as read (a rate per kg with it, for an infusion titrated by the clinician). */
  const approve = (task: Task, body: object = {}) =>
    request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId, ...body });

  /** The EHR's copy of the series posted to the FHIR server, an eligible patient applied to it by url. */
  async function enrolledOnEhrProtocol() {
    const plan = ehrSeries();
    await service.fhir.create(plan);
    const patient = await eligiblePatient();
    const carePlan = await apply(patient, { url: plan.url! });
    return { plan, patient, carePlan, session: await firstSession(carePlan) };
  }

  /** An infusion of the plan ended 4 January at 10:00, reported as an EHR would: the job's result and its follow-ups. */
  async function infused(patient: string, carePlan: CarePlan) {
    const procedureId = await completeInfusion(
      service,
      { patient, carePlanId: carePlan.id! },
      '2027-01-04T10:00:00.000Z',
    );
    const outcome = await reportInfusion(service, procedureId);
    return { outcome, followUps: await followUpTasks(service, procedureId) };
  }

  /** A check recorded as the page's dialog does: its Questionnaire asked for (the catalog's), then answered. */
  async function recordedByItsQuestionnaire(check: Task) {
    const questionnaire = await request(service.url)
      .get(`/tasks/${check.id}/questionnaire`)
      .set(clinician())
      .expect(200);
    expect(questionnaire.body.url).toBe('https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check');
    const done = await request(service.url)
      .post(`/tasks/${check.id}/$complete`)
      .set(clinician())
      .send({ versionId: check.meta!.versionId, response: checkAnswers(3, ['effect-nausea']) })
      .expect(200);
    expect(done.body.status).toBe('completed');
  }

  async function firstSession(carePlan: CarePlan): Promise<Task> {
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlan.id}` });
    return tasks.find((t) => actionOf(t) === 'infusion-session')!;
  }

  async function ordersOf(carePlan: CarePlan): Promise<MedicationRequest[]> {
    const all = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      subject: carePlan.subject.reference!,
      intent: 'order',
    });
    return all.filter((m) => m.basedOn?.some((b) => b.reference === `CarePlan/${carePlan.id}`));
  }

  const storedAs = (url: string) =>
    service.fhir.searchAll<PlanDefinition>('PlanDefinition', { url }).then((all) => all.filter((p) => p.url === url));

  it('a PlanDefinition sent inline to a persisted $apply is kept on the FHIR server once; another under its canonical is refused', async () => {
    // With its narrative, kept as sent.
    const plan = ehrSeries('3', {
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">The EHR’s series</div>' },
    });
    const first = await apply(await eligiblePatient(), { resource: plan });
    await apply(await eligiblePatient(), { resource: plan });
    // What the CarePlans instantiate, an EHR finds: once, as sent.
    expect(first.instantiatesCanonical).toEqual([`${plan.url}|3`]);
    const stored = await storedAs(plan.url!);
    expect(stored).toHaveLength(1);
    expect({ ...stored[0], id: undefined, meta: undefined }).toEqual({ ...plan, id: undefined, meta: undefined });

    // Sent by several $apply calls at once (an EHR enrolling a group): stored once all the same.
    const together = ehrSeries('5');
    const patients = await Promise.all([1, 2, 3, 4, 5].map(() => eligiblePatient()));
    await Promise.all(patients.map((p) => apply(p, { resource: together })));
    expect(await storedAs(together.url!)).toHaveLength(1);

    // Another definition under the same canonical: the plans applied before would be checked against it.
    const subject = await eligiblePatient();
    const changed = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(applyParameters(subject, { resource: { ...plan, title: 'Changed in the EHR' } }))
      .expect(409);
    const [issue] = (changed.body as OperationOutcome).issue;
    expect(issue.details?.text).toMatch(
      new RegExp(`^A different PlanDefinition ${plan.url}\\|3 is on the FHIR server`),
    );
    // The catalog's own protocol, changed and sent inline under its canonical: refused alike.
    const ours = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(applyParameters(subject, { resource: { ...catalogSeries, title: 'Our variant' } }))
      .expect(409);
    expect(ours.body.issue[0].details.text).toMatch(/is one of this service’s protocols/);
    expect(await service.fhir.searchAll<CarePlan>('CarePlan', { subject })).toEqual([]);

    // Not valid R4 (the FHIR server's validation, as it answered): a 400, and nothing kept or applied.
    const invalid = ehrSeries('1', { title: 42 as unknown as string });
    const rejected = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(applyParameters(subject, { resource: invalid }))
      .expect(400);
    expect(JSON.stringify((rejected.body as OperationOutcome).issue)).toMatch(/title/);
    expect(await storedAs(invalid.url!)).toEqual([]);
    // No url: nothing to instantiate it by, so nothing persisted; evaluated only, it is fine and nothing is kept.
    const { url: _url, ...noUrl } = ehrSeries();
    const refused = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(applyParameters(subject, { resource: noUrl }))
      .expect(400);
    expect(refused.body.issue[0].details.text).toMatch(
      /^A PlanDefinition sent inline to a persisted \$apply needs a url/,
    );
    await apply(subject, { resource: noUrl }, false);
    const notPersisted = ehrSeries();
    await apply(subject, { resource: notPersisted }, false);
    expect(await storedAs(notPersisted.url!)).toEqual([]);
  });

  it('an inline plan’s session is not approved once the patient is found pregnant', async () => {
    const subject = await eligiblePatient();
    const carePlan = await apply(subject, { resource: ehrSeries() });
    const task = await firstSession(carePlan);
    expect(task.status).toBe('draft');
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const refused = await approve(task).expect(422);
    expect(refused.body.issue[0].details.text).toMatch(
      /^Blocked by an unresolved contraindication on this care plan: Pregnancy on record/,
    );
    expect(await ordersOf(carePlan)).toEqual([]);
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    expect(issue.code?.coding?.[0].code).toBe('pregnancy');
  });

  it('an order approved under an EHR’s posted protocol is held by the sweep when a contraindication is recorded', async () => {
    const { patient: subject, carePlan, session: task } = await enrolledOnEhrProtocol();
    await approve(task).expect(200);
    const [order] = await ordersOf(carePlan);
    expect(order.status).toBe('active');

    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    expect((await service.app.get(ContraindicationSweep).sweep()).held).toBeGreaterThanOrEqual(1);
    const held = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect([held.status, held.statusReason?.text]).toEqual(['on-hold', expect.stringMatching(/Pregnancy on record/)]);
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('on-hold');
  });

  it('a protocol whose version the EHR replaced is checked with the version it keeps now', async () => {
    const plan = ehrSeries('1');
    const { resource: posted } = await service.fhir.create(plan);
    const subject = await eligiblePatient();
    const carePlan = await apply(subject, { url: plan.url! });
    expect(carePlan.instantiatesCanonical).toEqual([`${plan.url}|1`]);
    await service.fhir.update<PlanDefinition>({ ...posted, version: '2' });
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const task = await firstSession(carePlan);
    const refused = await approve(task).expect(422);
    expect(refused.body.issue[0].details.text).toMatch(/Pregnancy on record/);
  });

  it('a plan whose protocol is gone from the FHIR server: its sessions are not approved, and can be rejected', async () => {
    const plan = ehrSeries();
    const { resource: posted } = await service.fhir.create(plan);
    const carePlan = await apply(await eligiblePatient(), { url: plan.url! });
    const deleted = await fetch(`${service.config.fhirBaseUrl}/PlanDefinition/${posted.id}`, { method: 'DELETE' });
    expect(deleted.ok).toBe(true);
    const task = await firstSession(carePlan);
    // The page says so, and offers no Approve (the row is blocked); Reject stays.
    const view = await request(service.url)
      .get('/worklist/view')
      .query({ patient: carePlan.subject.reference })
      .set(clinician())
      .expect(200);
    expect(
      (view.body.items as { id: string; view: { blocked?: string } }[]).find((i) => i.id === task.id)?.view.blocked,
    ).toBe(
      'its protocol is not found any more, so the patient cannot be checked again: reject it, or have the protocol posted again',
    );
    const refused = await approve(task).expect(422);
    // In words for the clinician (no ids), by reference for the integrator.
    expect(refused.body.issue[0].details.text).toBe(
      'This care plan’s protocol is not found any more (neither one of this service’s nor on the FHIR server), so the patient cannot be checked again for its contraindications before this decision. Have the protocol posted again, or reject the task.',
    );
    expect(refused.body.issue[0].diagnostics).toBe(
      `CarePlan/${carePlan.id} instantiates ${plan.url}|1: neither in fhir-profiles/ nor on the FHIR server; post that PlanDefinition again`,
    );
    expect(await ordersOf(carePlan)).toEqual([]);
    await request(service.url)
      .post(`/tasks/${task.id}/$reject`)
      .set(clinician())
      .send({ versionId: task.meta!.versionId, reason: 'Protocol withdrawn' })
      .expect(200);
  });

  it('a plan whose protocol is gone: a clinician’s override of its contraindication is recorded all the same', async () => {
    const plan = ehrSeries();
    const { resource: posted } = await service.fhir.create(plan);
    const subject = await eligiblePatient();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const carePlan = await apply(subject, { url: plan.url! });
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    expect(issue.code?.coding?.[0].code).toBe('pregnancy');
    await fetch(`${service.config.fhirBaseUrl}/PlanDefinition/${posted.id}`, { method: 'DELETE' });
    await overrideIssue(service, issue, 'Condition entered in error').expect(200);
    const overridden = await service.fhir.read<DetectedIssue>('DetectedIssue', issue.id!);
    expect(overridden.mitigation?.[0].action.coding?.[0].code).toBe('OE');
    // Nothing held back was proposed: there is no protocol to propose it from.
    expect(await firstSession(carePlan)).toBeUndefined();
  });

  it('a session under an EHR’s protocol gets that protocol’s reminders, and its infusion the follow-ups', async () => {
    const { patient, carePlan, session } = await enrolledOnEhrProtocol();
    await approve(session).expect(200);
    // The patient's reminders, at the protocol's times (a ride home 2 days before the window opens, fasting 18 h).
    const reminders = (
      await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', { subject: patient })
    ).filter((r) => r.about?.some((a) => a.reference === `Task/${session.id}`));
    expect(Object.fromEntries(reminders.map((r) => [r.category![0].coding![0].code, r.occurrenceDateTime]))).toEqual({
      'reminder-fasting': '2027-01-01T06:00:00.000Z',
      'reminder-no-driving': '2027-01-02T00:00:00.000Z',
      'reminder-ride-home': '2026-12-31T00:00:00.000Z',
    });
    const { outcome, followUps } = await infused(patient, carePlan);
    expect(outcome).toMatchObject({ status: 'created', fulfilled: 1 });
    expect(followUps.map(actionOf).sort()).toEqual(['next-induction-session', 'post-infusion-check']);
    // Its windows are the protocol's: the check within the week after the infusion.
    const check = followUps.find((t) => actionOf(t) === 'post-infusion-check')!;
    expect(check.restriction?.period?.start).toBe('2027-01-04T10:00:00.000Z');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('completed');
    // The check is done by answering its protocol's Questionnaire, as the catalog's is: on the page, or by the API.
    const timeline = await request(service.url)
      .get(`/patients/${patient.split('/')[1]}/timeline`)
      .set(clinician());
    expect(timeline.status).toBe(200);
    expect(
      (timeline.body.events as { reference?: string; answers?: string }[]).find(
        (e) => e.reference === `Task/${check.id}`,
      )?.answers,
    ).toBe('Post-infusion check');
    await recordedByItsQuestionnaire(check);
  });

  it('an EHR’s as-needed protocol: its booster moves with the patient’s scores as the catalog’s does', async () => {
    const plan = ehrSeries('1', {}, catalogPlan('ketamine-high-dose-as-needed'));
    await service.fhir.create(plan);
    const patient = await eligiblePatient();
    const carePlan = await apply(patient, { url: plan.url! });
    await score(service, patient, '72514-3', 8, '2026-12-20T09:00:00Z');
    const booster = (await infused(patient, carePlan)).followUps.find((t) => actionOf(t) === 'maintenance-booster')!;
    expect(booster.restriction?.period).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-03-01T10:00:00.000Z' });
    // Pain back toward its baseline: proposed earlier in its window.
    const latest = await score(service, patient, '72514-3', 7, '2027-01-25T09:00:00Z');
    await reportScore(service, latest);
    expect((await service.fhir.read<Task>('Task', booster.id!)).restriction?.period).toEqual({
      start: '2027-02-15T10:00:00.000Z',
      end: '2027-02-22T10:00:00.000Z',
    });
  });

  it('an EHR’s protocol: a rate recorded at the pump after the follow-ups proposes the next session again at it', async () => {
    const { patient, carePlan, session } = await enrolledOnEhrProtocol();
    await approve(session, { rate: { value: 1, unit: 'mg/kg/h' } }).expect(200);
    const [order] = await ordersOf(carePlan);
    const next = (await infused(patient, carePlan)).followUps.find((t) => actionOf(t) === 'next-induction-session')!;
    const { resource: lowered } = await service.fhir.create<MedicationAdministration>({
      ...administrationOf(order, 'completed', { start: '2027-01-04T09:20:00.000Z', end: '2027-01-04T09:50:00.000Z' }),
      dosage: { rateQuantity: ucum(60, 'mg/h') },
    });
    expect(await service.app.get(LateAdministrations).handle(lowered.id!)).toEqual({ reproposed: 1, noted: 0 });
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      next.focus!.reference!.split('/')[1],
    );
    expect(proposal.supportingInformation).toContainEqual({
      reference: `MedicationAdministration/${lowered.id}`,
      display: 'Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h',
    });
  });

  it('the page shows an EHR’s protocol by its title, with the dose per kg and the weight it is ordered from', async () => {
    const plan = ehrSeries('1', { title: 'Ketamine series (the EHR’s)' });
    await service.fhir.create(plan);
    const patient = await eligiblePatient();
    const carePlan = await apply(patient, { url: plan.url! });
    const session = await firstSession(carePlan);
    const view = await request(service.url).get('/worklist/view').query({ patient }).set(clinician()).expect(200);
    const row = (
      view.body.items as {
        id: string;
        view: { protocol?: { title?: string }; dose?: { ratePerKg: number; unit: string; weightKg?: number } };
      }[]
    ).find((i) => i.id === session.id)!;
    expect(row.view.protocol?.title).toBe('Ketamine series (the EHR’s)');
    expect(row.view.dose).toMatchObject({ unit: 'mg/kg/h', weightKg: 80 });
  });

  it('an inline plan not persisted: its ready-to-post transaction writes the PlanDefinition too, so it is checked again', async () => {
    const subject = await eligiblePatient();
    const plan = ehrSeries('4');
    const asked = applyParameters(subject, { resource: plan }, false);
    const body = { ...asked, parameter: [...asked.parameter, { name: 'output', valueCode: 'parameters' }] };
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(body)
      .expect(200);
    const transaction = (res.body as Parameters).parameter!.find((p) => p.name === 'transaction')!.resource as Bundle;
    expect(transaction.entry![0].request).toEqual({
      method: 'POST',
      url: 'PlanDefinition',
      ifNoneExist: new URLSearchParams({ url: plan.url!, version: '4' }).toString(),
    });
    expect(await storedAs(plan.url!)).toEqual([]);
    // The EHR posts it, twice: one plan, one definition.
    await service.fhir.transaction(transaction.entry!);
    await service.fhir.transaction(transaction.entry!);
    expect(await storedAs(plan.url!)).toHaveLength(1);
    const [carePlan] = await service.fhir.searchAll<CarePlan>('CarePlan', { subject });
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const refused = await approve(await firstSession(carePlan)).expect(422);
    expect(refused.body.issue[0].details.text).toMatch(
      /^Blocked by an unresolved contraindication .*Pregnancy on record/,
    );
  });

  /**
   * An EHR's protocol deleted from the FHIR server after an order was approved under it, seen by the sweep as it would
   * be 30 s later (when the service reads the protocol again).
   */
  async function protocolDeletedAfterApproval() {
    const enrolled = await enrolledOnEhrProtocol();
    await approve(enrolled.session).expect(200);
    const [order] = await ordersOf(enrolled.carePlan);
    expect(order.status).toBe('active');
    const [posted] = await storedAs(enrolled.plan.url!);
    const deleted = await fetch(`${service.config.fhirBaseUrl}/PlanDefinition/${posted.id}`, { method: 'DELETE' });
    expect(deleted.ok).toBe(true);
    service.app.get(PlanDefinitions).forget(enrolled.carePlan.instantiatesCanonical![0]);
    return { ...enrolled, order };
  }

  const planIssues = (carePlan: CarePlan) =>
    service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${carePlan.id}` });
  /** The subjects of the emails to the clinic since `before`. */
  const subjectsSince = (before: number) =>
    mailsTo(smtp, 'oncall@clinic.test', before).map((m) => /^Subject: (.*)$/m.exec(m.body)?.[1]);

  it('an order approved under a protocol deleted since is held by the sweep, the clinic told; posted again, it is released', async () => {
    const { plan, carePlan, session, order } = await protocolDeletedAfterApproval();
    const before = smtp.received.length;
    const sweep = service.app.get(ContraindicationSweep);
    expect(await sweep.sweep()).toMatchObject({ recorded: 1, held: 1 });
    // An EHR, a pharmacy or a pump reading the order's status sees nothing is to be given; the issue says why.
    const held = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect([held.status, held.statusReason?.text]).toEqual([
      'on-hold',
      // What releases it, as the issue is (before session 48 every hold said a clinician's override alone did).
      "Held: found after approval: Care plan’s protocol not found. Posting its care plan's protocol again on the FHIR server, or a clinician's override with a reason, releases it.",
    ]);
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('on-hold');
    const [issue] = await planIssues(carePlan);
    expect(held.detectedIssue?.map((r) => r.reference)).toEqual([`DetectedIssue/${issue.id}`]);
    // The page lists the held session with the issue, to override or reject.
    const view = await request(service.url)
      .get('/worklist/view')
      .query({ patient: carePlan.subject.reference })
      .set(clinician())
      .expect(200);
    const row = (
      view.body.items as { id: string; view: { contraindications: { id: string; text: string; state: string }[] } }[]
    ).find((i) => i.id === session.id);
    expect(row?.view.contraindications).toEqual([
      expect.objectContaining({ id: issue.id, state: 'unresolved', text: expect.stringMatching(/protocol not found/) }),
    ]);
    expect(issue).toMatchObject({
      status: 'preliminary',
      severity: 'high',
      code: { coding: [{ code: 'protocol-not-found' }] },
    });
    expect(issue.implicated?.map((r) => r.reference)).toEqual(
      expect.arrayContaining([`CarePlan/${carePlan.id}`, `MedicationRequest/${order.id}`, `Task/${session.id}`]),
    );
    expect(issue.detail).toContain(`This care plan’s protocol (${plan.url}|1) is not found any more`);
    const hold = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${order.id}` })
    ).find((p) => p.activity?.text === 'hold for contraindication')!;
    expect(hold.reason?.[0].text).toBe(`Care plan’s protocol not found after approval: DetectedIssue/${issue.id}`);
    expect(subjectsSince(before)).toEqual([
      "Ketamine care plans: an approved infusion is on hold (its care plan's protocol is not found), to review",
    ]);
    // Once: the next sweep records, holds and tells nothing again.
    expect(await sweep.sweep()).toMatchObject({ recorded: 0, held: 0, alerted: 0 });
    expect(await planIssues(carePlan)).toHaveLength(1);
    expect(subjectsSince(before)).toHaveLength(1);

    // The EHR posts the protocol again: the plan is checked against it as before, and the order goes back to active.
    await service.fhir.create(plan);
    service.app.get(PlanDefinitions).forget(carePlan.instantiatesCanonical![0]);
    expect(await sweep.sweep()).toMatchObject({ released: 1 });
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('ready');
    const resolved = await service.fhir.read<DetectedIssue>('DetectedIssue', issue.id!);
    expect(resolved.status).toBe('final');
    expect(resolved.mitigation?.map((m) => m.action.coding?.[0].code)).toEqual(['protocol-found-again']);
    expect(subjectsSince(before).slice(1)).toEqual([
      "Ketamine care plans: resolved: an approved infusion held (its care plan's protocol not found)",
    ]);

    // Deleted again: the same issue is unresolved again (one per plan), and holds the order again.
    const [again] = await storedAs(plan.url!);
    await fetch(`${service.config.fhirBaseUrl}/PlanDefinition/${again.id}`, { method: 'DELETE' });
    service.app.get(PlanDefinitions).forget(carePlan.instantiatesCanonical![0]);
    expect(await sweep.sweep()).toMatchObject({ held: 1 });
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    expect((await planIssues(carePlan)).map((i) => [i.id, i.status, i.mitigation])).toEqual([
      [issue.id, 'preliminary', undefined],
    ]);
  });

  it('a plan whose protocol is gone: a clinician’s override releases the order it held, and the next sweep leaves it so', async () => {
    const { carePlan, order } = await protocolDeletedAfterApproval();
    const sweep = service.app.get(ContraindicationSweep);
    expect(await sweep.sweep()).toMatchObject({ held: 1 });
    const [issue] = await planIssues(carePlan);
    await overrideIssue(service, issue, 'Protocol retired; this last session goes ahead as planned').expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect(await sweep.sweep()).toMatchObject({ recorded: 0, held: 0 });
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect(await planIssues(carePlan)).toHaveLength(1);
  });

  it('an EHR’s protocol coding its infusion its own way: an appointment of that code books the session', async () => {
    // The EHR's infusion: the catalog's low-dose infusion under its own url and local code.
    const catalogInfusion = JSON.parse(
      readFileSync(join(__dirname, '../fhir-profiles/ActivityDefinition-ketamine-low-dose-infusion.json'), 'utf8'),
    ) as ActivityDefinition;
    const localCode = {
      system: 'http://ehr.example/CodeSystem/services',
      code: 'KET-INF',
      display: 'Ketamine infusion',
    };
    const { id: _id, meta: _meta, text: _text, ...infusion } = catalogInfusion;
    const ownUrl = `http://ehr.example/ActivityDefinition/ketamine-infusion-${Date.now()}`;
    await service.fhir.create<ActivityDefinition>({
      ...infusion,
      url: ownUrl,
      version: '1',
      code: { coding: [localCode] },
    });
    const plan = JSON.parse(
      JSON.stringify(ehrSeries()).replaceAll(`${catalogInfusion.url}|${catalogInfusion.version}`, `${ownUrl}|1`),
    ) as PlanDefinition;
    await service.fhir.create(plan);
    const patient = await eligiblePatient();
    const carePlan = await apply(patient, { url: plan.url! });
    const session = await firstSession(carePlan);
    await approve(session).expect(200);
    // The approval's own look for an appointment done first (it would book the one below at the same moment: a 412).
    await maintenanceJobDone(
      service,
      sessionApprovedJobId(session.id!),
      'the approved session to look for its appointment',
    );
    const start = Date.parse(protocolWindowOf(session)!.start!) + 9 * 3_600_000;
    const { resource: appointment } = await service.fhir.create<Appointment>({
      resourceType: 'Appointment',
      status: 'booked',
      serviceType: [{ coding: [localCode] }],
      start: new Date(start).toISOString(),
      end: new Date(start + 3_600_000).toISOString(),
      participant: [{ actor: { reference: patient }, status: 'accepted' }],
    });
    expect(await service.app.get(AppointmentBookings).handle(appointment.id!)).toMatchObject({
      result: 'booked',
      task: `Task/${session.id}`,
    });
    expect((await service.fhir.read<Task>('Task', session.id!)).restriction?.period?.start).toBe(appointment.start);
  });

  it('an infusion under a protocol deleted since is not lost: its job fails, and once the protocol is back an operator’s retry writes its follow-ups', async () => {
    const { plan, carePlan } = await protocolDeletedAfterApproval();
    const procedureId = await completeInfusion(
      service,
      { patient: carePlan.subject.reference!, carePlanId: carePlan.id! },
      '2027-01-04T10:00:00.000Z',
    );
    // Before, the event was taken as done ("ignored"): the patient's post-infusion check was never planned.
    // Its job ends failed, with no result (was: done, `ignored`).
    expect(await reportInfusion(service, procedureId)).toBeFalsy();
    expect(await followUpTasks(service, procedureId)).toEqual([]);
    const dead = await request(service.url).get('/operations/dead-letters').set(service.as('admin')).expect(200);
    const letter = (dead.body as { jobId: string; procedure: string; failedReason: string }[]).find(
      (d) => d.procedure === `Procedure/${procedureId}`,
    )!;
    expect(letter.failedReason).toBe(
      `CarePlan/${carePlan.id} instantiates ${plan.url}|1: neither in fhir-profiles/ nor on the FHIR server, so its infusion cannot be followed up; post that PlanDefinition again: the job is tried again by itself (or retry it now)`,
    );

    await service.fhir.create(plan);
    service.app.get(PlanDefinitions).forget(carePlan.instantiatesCanonical![0]);
    await request(service.url)
      .post(`/operations/dead-letters/${letter.jobId}/$retry`)
      .set(service.as('admin'))
      .expect(202);
    expect(await followUpJobDone(service, procedureId)).toMatchObject({ status: 'created' });
    expect((await followUpTasks(service, procedureId)).map(actionOf)).toContain('post-infusion-check');
  });

  it('a post-infusion check of a plan whose protocol is gone since is still recorded, by its own Questionnaire', async () => {
    const { plan, patient, carePlan, session } = await enrolledOnEhrProtocol();
    await approve(session).expect(200);
    const { followUps } = await infused(patient, carePlan);
    const check = followUps.find((t) => actionOf(t) === 'post-infusion-check')!;
    const [posted] = await storedAs(plan.url!);
    await fetch(`${service.config.fhirBaseUrl}/PlanDefinition/${posted.id}`, { method: 'DELETE' });
    service.app.get(PlanDefinitions).forget(carePlan.instantiatesCanonical![0]);
    // The page offers to record it, and its dialog gets the check's questions.
    const view = await request(service.url).get('/worklist/view').query({ patient }).set(clinician()).expect(200);
    const row = (view.body.items as { id: string; view: { task: { answers?: string } } }[]).find(
      (i) => i.id === check.id,
    );
    expect(row?.view.task.answers).toBe('Post-infusion check');
    await recordedByItsQuestionnaire(check);
  });

  /** The score poller of a worker replica just started: it has read no protocol from the FHIR server yet. */
  const justStartedReplicasPoller = () => {
    const fhir = service.app.get(FhirClient);
    const catalog = service.app.get(ProtocolCatalog);
    return new ScorePoller(
      fhir,
      service.app.get(ScoreEventsProducer),
      service.app.get(PollCursors),
      service.app.get<AppConfig>(APP_CONFIG),
      new PlanDefinitions(catalog, fhir),
      catalog,
    );
  };

  it('an EHR’s as-needed protocol scoring pain with its own code: a score nobody notified is found by the polling fallback, and the page shows it', async () => {
    const local = { system: 'http://ehr.example/CodeSystem/scores', code: 'pain-0-10' };
    const plan = JSON.parse(
      JSON.stringify(ehrSeries('1', {}, catalogPlan('ketamine-high-dose-as-needed'))).replaceAll(
        '{"system":"http://loinc.org","code":"72514-3"',
        `{"system":"${local.system}","code":"${local.code}"`,
      ),
    ) as PlanDefinition;
    await service.fhir.create(plan);
    const patient = await eligiblePatient();
    const carePlan = await apply(patient, { url: plan.url! });
    const painScore = async (value: number, when: string) =>
      (await service.fhir.create({ ...outcomeScore(patient, '72514-3', value, when), code: { coding: [local] } }))
        .resource.id!;
    await painScore(8, '2026-12-20T09:00:00Z');
    const booster = (await infused(patient, carePlan)).followUps.find((t) => actionOf(t) === 'maintenance-booster')!;
    // Pain back toward its baseline, recorded on a server that notifies nobody: the poll finds it, though the worker
    // replica polling has just started and read no protocol yet (before, it asked only for the catalog's codes then).
    await painScore(7, '2027-01-25T09:00:00Z');
    await justStartedReplicasPoller().poll();
    await queueIdle(service, QUEUES.outcomes);
    expect((await service.fhir.read<Task>('Task', booster.id!)).restriction?.period).toEqual({
      start: '2027-02-15T10:00:00.000Z',
      end: '2027-02-22T10:00:00.000Z',
    });
    // The page's latest scores show it by its name.
    const view = await request(service.url).get('/worklist/view').query({ patient }).set(clinician()).expect(200);
    const row = (view.body.items as { id: string; view: { scores: { label: string; value: number }[] } }[]).find(
      (i) => i.id === booster.id,
    );
    expect(row?.view.scores).toEqual([expect.objectContaining({ label: 'Pain NRS', value: 7, code: local.code })]);
  });

  const medplumDeleted = (reference: string) => postDeletion(service, reference).expect(202);
  /** The worker's job for a deleted contraindication, or a protocol changed or deleted, done. */
  const deletionHandled = (reference: string) =>
    maintenanceJobDone(service, recheckContraindicationsJobId(reference), `the worker to handle ${reference}`);
  const deleteOnServer = async (reference: string) =>
    expect((await fetch(`${service.config.fhirBaseUrl}/${reference}`, { method: 'DELETE' })).ok).toBe(true);

  it('a protocol deleted on the FHIR server, notified: its plans’ approved orders are held at once, not at the sweep; posted again, released at once', async () => {
    const { plan, carePlan, session } = await enrolledOnEhrProtocol();
    await approve(session).expect(200);
    const [order] = await ordersOf(carePlan);
    const [posted] = await storedAs(plan.url!);
    await deleteOnServer(`PlanDefinition/${posted.id}`);
    // No sweep, and nothing forgotten by hand: the notification alone (before, `{}` was "nothing to do").
    await medplumDeleted(`PlanDefinition/${posted.id}`);
    await deletionHandled(`PlanDefinition/${posted.id}`);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    expect((await planIssues(carePlan)).map((i) => i.code?.coding?.[0].code)).toEqual(['protocol-not-found']);

    // Posted again, notified as Medplum does (the resource in the body): released at once, not at the sweep.
    const { resource: again } = await service.fhir.create(plan);
    await postWebhook(service, JSON.stringify(again)).expect(202);
    await deletionHandled(`PlanDefinition/${again.id}`);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect((await planIssues(carePlan)).map((i) => i.status)).toEqual(['final']);
  });

  it('a contraindication deleted in the EHR, notified: checked again at once, held while the patient’s data still says so, released once it does not', async () => {
    const { patient, carePlan, session } = await enrolledOnEhrProtocol();
    await approve(session).expect(200);
    const [order] = await ordersOf(carePlan);
    const { resource: pregnancy } = await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    expect((await service.app.get(ContraindicationSweep).sweep()).held).toBeGreaterThanOrEqual(1);
    const [first] = await planIssues(carePlan);

    // Deleted while the pregnancy is still on record: found again, and the order stays held under the new issue.
    await deleteOnServer(`DetectedIssue/${first.id}`);
    await medplumDeleted(`DetectedIssue/${first.id}`);
    await deletionHandled(`DetectedIssue/${first.id}`);
    const [again] = await planIssues(carePlan);
    expect([again.id === first.id, again.code?.coding?.[0].code]).toEqual([false, 'pregnancy']);
    // The order says so in standard fields: held, by the issue on record now, which implicates it, and no longer by the
    // deleted one (an EHR following it would get 410).
    const held = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect([held.status, held.detectedIssue?.map((r) => r.reference)]).toEqual([
      'on-hold',
      [`DetectedIssue/${again.id}`],
    ]);
    expect(again.implicated?.map((r) => r.reference)).toEqual(
      expect.arrayContaining([`MedicationRequest/${order.id}`, `Task/${session.id}`]),
    );

    // The pregnancy deleted as recorded in error, and the issue deleted: the order is active again, with no sweep.
    // (Before, nothing released it, the sweep included: what to release was read from the issues on record.)
    await deleteOnServer(`Condition/${pregnancy.id}`);
    await deleteOnServer(`DetectedIssue/${again.id}`);
    await medplumDeleted(`DetectedIssue/${again.id}`);
    await deletionHandled(`DetectedIssue/${again.id}`);
    const released = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect([released.status, released.detectedIssue]).toEqual(['active', undefined]);
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('ready');
    expect(await planIssues(carePlan)).toEqual([]);
  });

  it('a contraindication deleted in the EHR and found again by the sweep: the held order names the new issue, whose override releases it', async () => {
    const { patient, carePlan, session } = await enrolledOnEhrProtocol();
    await approve(session).expect(200);
    const [order] = await ordersOf(carePlan);
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    const sweep = service.app.get(ContraindicationSweep);
    expect((await sweep.sweep()).held).toBeGreaterThanOrEqual(1);
    const [first] = await planIssues(carePlan);
    await deleteOnServer(`DetectedIssue/${first.id}`);
    // Not notified (the store's notifications are off in this suite): the sweep finds it again. Before, the new issue
    // named no order, and the override of it released nothing.
    expect(await sweep.sweep()).toMatchObject({ recorded: 1 });
    const [again] = await planIssues(carePlan);
    expect(
      (await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).detectedIssue?.map(
        (r) => r.reference,
      ),
    ).toEqual([`DetectedIssue/${again.id}`]);
    const againAsRead = await service.fhir.read<DetectedIssue>('DetectedIssue', again.id!);
    await overrideIssue(service, againAsRead, 'Test negative today').expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('ready');
  });

  it('a contraindication deleted in the EHR with nothing left to contraindicate: the sweep releases what it held (before, nothing did)', async () => {
    const { patient, carePlan, session } = await enrolledOnEhrProtocol();
    await approve(session).expect(200);
    const [order] = await ordersOf(carePlan);
    const { resource: pregnancy } = await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    const sweep = service.app.get(ContraindicationSweep);
    expect((await sweep.sweep()).held).toBeGreaterThanOrEqual(1);
    const [issue] = await planIssues(carePlan);
    await deleteOnServer(`Condition/${pregnancy.id}`);
    await deleteOnServer(`DetectedIssue/${issue.id}`);
    expect(await sweep.sweep()).toMatchObject({ recorded: 0, released: 1 });
    const released = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    // Released, and naming no deleted issue (it named the one that held it).
    expect([released.status, released.detectedIssue]).toEqual(['active', undefined]);
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('ready');
  });

  it('a Task deleted in the EHR leaves the worklist at its notification (HAPI’s DELETE, Medplum’s header), not at the next reconciliation', async () => {
    const onWorklist = (patient: string) => worklistIdsOf(service, patient);
    const hapi = await enrolledOnEhrProtocol();
    expect(await onWorklist(hapi.patient)).toContain(hapi.session.id);
    await deleteOnServer(`Task/${hapi.session.id}`);
    await request(service.url)
      .delete(`/webhooks/fhir/Task/${hapi.session.id}`)
      .set('x-webhook-token', TEST_WEBHOOK_SECRET)
      .expect(202);
    expect(await onWorklist(hapi.patient)).not.toContain(hapi.session.id);

    const medplum = await enrolledOnEhrProtocol();
    await deleteOnServer(`Task/${medplum.session.id}`);
    await medplumDeleted(`Task/${medplum.session.id}`);
    expect(await onWorklist(medplum.patient)).not.toContain(medplum.session.id);
    // A deletion notification must name a resource: anything else is refused, signed or not.
    await postDeletion(service, 'Task').expect(400);
  });

  it('a retired protocol enrols nobody more; a plan applied before keeps following it', async () => {
    const { plan, carePlan, session } = await enrolledOnEhrProtocol();
    // Another patient, enrolled while found pregnant: nothing proposed until a clinician overrides it.
    const held = await eligiblePatient();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], held));
    const heldPlan = await apply(held, { url: plan.url! });
    expect(await firstSession(heldPlan)).toBeUndefined();
    const [posted] = await storedAs(plan.url!);
    await service.fhir.update<PlanDefinition>({ ...posted, status: 'retired' });
    service.app.get(PlanDefinitions).forget(`${plan.url}|1`);
    const refused = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(applyParameters(await eligiblePatient(), { url: plan.url! }))
      .expect(422);
    expect(refused.body.issue[0].details.text).toBe(
      'Low-dose ketamine infusion series is retired: no patient is enrolled on it any more (care plans applied before keep following it). Apply the protocol that replaces it.',
    );
    expect(refused.body.issue[0].expression).toEqual(['PlanDefinition.status']);
    // The patient enrolled before is still approved under it, and followed up.
    await approve(session).expect(200);
    const { followUps } = await infused(carePlan.subject.reference!, carePlan);
    expect(followUps.map(actionOf)).toContain('post-infusion-check');
    // The override proposes what the retired protocol held back for the patient enrolled before.
    const [issue] = await planIssues(heldPlan);
    await overrideIssue(service, issue, 'Test negative today').expect(200);
    expect((await firstSession(heldPlan)).status).toBe('draft');
  });

  it('a protocol whose version the EHR replaced in place: an infusion under the version applied is followed up with the latest', async () => {
    const { plan, patient, carePlan, session } = await enrolledOnEhrProtocol();
    await approve(session).expect(200);
    const [posted] = await storedAs(plan.url!);
    await service.fhir.update<PlanDefinition>({ ...posted, version: '2' });
    service.app.get(PlanDefinitions).forget(`${plan.url}|1`);
    const { outcome, followUps } = await infused(patient, carePlan);
    expect(outcome).toMatchObject({ status: 'created' });
    expect(followUps.map(actionOf).sort()).toEqual(['next-induction-session', 'post-infusion-check']);
  });

  it('an EHR’s own check Questionnaire: the page names it on the check’s row and shows the effects reported with it', async () => {
    const profile = <T>(file: string) =>
      JSON.parse(readFileSync(join(__dirname, `../fhir-profiles/${file}.json`), 'utf8')) as T;
    const tag = `${Date.now()}-${++serial}`;
    // The catalog's check under the EHR's urls, its effects coded the EHR's way (its own code system).
    const ownQuestionnaire = `http://ehr.example/Questionnaire/check-${tag}`;
    const { id: _q, ...questionnaire } = JSON.parse(
      JSON.stringify(profile<Questionnaire>('Questionnaire-post-infusion-check')).replace(
        '"system":"https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans","code":"infusion-effect"',
        '"system":"http://ehr.example/CodeSystem/after-infusion","code":"ehr-effects-since-infusion"',
      ),
    ) as Questionnaire;
    expect(JSON.stringify(questionnaire)).toContain('ehr-effects-since-infusion');
    await service.fhir.create<Questionnaire>({
      ...questionnaire,
      url: ownQuestionnaire,
      version: '1',
      title: 'The EHR’s after-infusion call',
    });
    const catalogCheck = profile<ActivityDefinition>('ActivityDefinition-post-infusion-check');
    const ownCheck = `http://ehr.example/ActivityDefinition/check-${tag}`;
    const { id: _a, ...check } = JSON.parse(
      JSON.stringify(catalogCheck).replace(
        `"${questionnaire.url}|${questionnaire.version}"`,
        `"${ownQuestionnaire}|1"`,
      ),
    ) as ActivityDefinition;
    await service.fhir.create<ActivityDefinition>({ ...check, url: ownCheck, version: '1' });
    const plan = JSON.parse(
      JSON.stringify(ehrSeries()).replaceAll(`${catalogCheck.url}|${catalogCheck.version}`, `${ownCheck}|1`),
    ) as PlanDefinition;
    await service.fhir.create(plan);
    const patient = await eligiblePatient();
    const carePlan = await apply(patient, { url: plan.url! });
    await approve(await firstSession(carePlan)).expect(200);
    const { followUps } = await infused(patient, carePlan);
    const checkTask = followUps.find((t) => actionOf(t) === 'post-infusion-check')!;
    const rowOf = async (id: string) => {
      const view = await request(service.url).get('/worklist/view').query({ patient }).set(clinician()).expect(200);
      return (
        view.body.items as { id: string; view: { task: { answers?: string }; effects?: { reported: string[] } } }[]
      ).find((i) => i.id === id)!;
    };
    expect((await rowOf(checkTask.id!)).view.task.answers).toBe('The EHR’s after-infusion call');
    await request(service.url)
      .post(`/tasks/${checkTask.id}/$complete`)
      .set(clinician())
      .send({ versionId: checkTask.meta!.versionId, response: checkAnswers(3, ['effect-nausea']) })
      .expect(200);
    const next = followUps.find((t) => actionOf(t) === 'next-induction-session')!;
    expect((await rowOf(next.id!)).view.effects?.reported).toEqual(['Nausea']);
  });
});
