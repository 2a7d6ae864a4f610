import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { businessStatus } from '@kc/task-states';
import { uuidFromKey } from '@kc/protocols';
import { AuditTrail } from '../apps/api/src/audit/audit-trail';
import { FhirClient } from '@kc/fhir';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type {
  Period,
  ActivityDefinition,
  Appointment,
  AuditEvent,
  Bundle,
  CarePlan,
  DetectedIssue,
  Medication,
  MedicationRequest,
  Observation,
  Parameters as FhirParameters,
  Patient,
  PlanDefinition,
  Reference,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { mintCdsClientJwt } from '../apps/api/src/cds-hooks/cds-client-auth';
import type { Card, CdsServiceDefinition } from '../apps/api/src/cds-hooks/cds-types';
import {
  activeCondition,
  bloodPressure,
  bodyWeight,
  createsOf,
  FIBROMYALGIA,
  PREGNANCY,
  searchset,
} from './fixtures/patient-data';
import { mergedIntoNewRecord } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

const SECRET_ISSUER = 'https://ehr.test/secret-client';
const SECRET = 'cds-test-secret-' + randomUUID();
const JWKS_ISSUER = 'https://ehr.test/jwks-client';
const DAY = 86_400_000;
const SERVICE_CODE_SYSTEM = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';

const KETAMINE = {
  coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6130', display: 'ketamine' }],
};
const ONDANSETRON = {
  coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '26225', display: 'ondansetron' }],
};

/** A draft ketamine order, coded inline. */
function ketamineOrder(patientId: string, id = `draft-${randomUUID().slice(0, 8)}`): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    id,
    status: 'draft',
    intent: 'order',
    medicationCodeableConcept: KETAMINE,
    subject: { reference: `Patient/${patientId}` },
  };
}

/** A draft order naming its Medication by reference instead of coding it (as EHRs often send them). */
function orderNaming(patientId: string, medication: Reference<Medication>, id?: string): MedicationRequest {
  const { medicationCodeableConcept: _coded, ...order } = ketamineOrder(patientId, id);
  return { ...order, medicationReference: medication };
}

describe('CDS Hooks services', () => {
  let service: TestService;
  let jwksServer: http.Server;
  let privateJwk: JWK;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES384');
    privateJwk = { ...(await exportJWK(privateKey)), kid: 'ehr-key-1', alg: 'ES384' };
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'ehr-key-1', alg: 'ES384', use: 'sig' };
    jwksServer = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
    service = await startTestService({
      cdsClients: { [SECRET_ISSUER]: { secret: SECRET }, [JWKS_ISSUER]: { jwksUrl } },
    });
  });
  afterAll(async () => {
    await service.stop();
    await new Promise((resolve) => jwksServer.close(resolve));
  });

  const endpoint = (id: string) => `${service.url}/cds-services/${id}`;
  const secretJwt = (id: string, extra: Partial<Parameters<typeof mintCdsClientJwt>[0]> = {}) =>
    mintCdsClientJwt({ issuer: SECRET_ISSUER, audience: endpoint(id), secret: SECRET, ...extra });
  const jwksJwt = (id: string) => mintCdsClientJwt({ issuer: JWKS_ISSUER, audience: endpoint(id), privateJwk });

  async function callHook(id: string, body: object, jwt?: string) {
    return request(service.url)
      .post(`/cds-services/${id}`)
      .set('Authorization', `Bearer ${jwt ?? (await secretJwt(id))}`)
      .send(body)
      .expect(200);
  }

  async function newPatient(): Promise<string> {
    const { resource } = await service.fhir.create<Patient>({ resourceType: 'Patient', name: [{ family: 'Cds' }] });
    return resource.id!;
  }

  async function recordVitals(patientId: string, bp: [number, number], when = '2026-11-10T09:00:00Z') {
    const ref = `Patient/${patientId}`;
    await service.fhir.create(bodyWeight(80, when, ref));
    await service.fhir.create(bloodPressure(bp[0], bp[1], when, ref));
  }

  /** $apply through the service itself, persisted: a contraindicated patient gets a DetectedIssue on record. */
  async function applyLowDose(patientId: string, startDate = '2031-01-01') {
    const params: FhirParameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'subject', valueReference: { reference: `Patient/${patientId}` } },
        // Far in the future, so whatever Tasks $apply writes are not yet due.
        { name: 'startDate', valueDate: startDate },
        { name: 'persist', valueBoolean: true },
      ],
    };
    await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(service.as('clinician'))
      .send(params)
      .expect(200);
  }

  function followUp(
    patientId: string,
    code: string,
    display: string,
    start: number,
    end: number,
    status = 'draft',
    more: Partial<Task> = {},
  ) {
    return service.fhir.create<Task>({
      ...more,
      resourceType: 'Task',
      status: status as Task['status'],
      intent: 'plan',
      businessStatus: businessStatus(
        status === 'draft' ? 'awaiting-approval' : status === 'completed' ? 'done' : 'approved',
      ),
      code: { coding: [{ system: SERVICE_CODE_SYSTEM, code, display }] },
      for: { reference: `Patient/${patientId}` },
      restriction: { period: { start: new Date(start).toISOString(), end: new Date(end).toISOString() } },
    });
  }

  const patientView = (patientId: string, prefetch?: Record<string, Resource>) => ({
    hook: 'patient-view',
    hookInstance: randomUUID(),
    context: { userId: 'Practitioner/dr-test', patientId },
    ...(prefetch ? { prefetch } : {}),
  });

  const orderSign = (patientId: string, orders: MedicationRequest[], prefetch?: Record<string, Resource>) => ({
    hook: 'order-sign',
    hookInstance: randomUUID(),
    context: {
      userId: 'Practitioner/dr-test',
      patientId,
      draftOrders: { resourceType: 'Bundle', type: 'collection', entry: orders.map((resource) => ({ resource })) },
    },
    ...(prefetch ? { prefetch } : {}),
  });

  function expectWellFormed(cards: Card[]) {
    for (const card of cards) {
      expect(card.summary.length).toBeLessThan(140);
      expect(['info', 'warning', 'critical']).toContain(card.indicator);
      expect(card.source.label).toBeTruthy();
      expect(card.detail || card.links?.length).toBeTruthy();
    }
  }

  it('discovery lists the services with their hooks and prefetch templates, without a token', async () => {
    const res = await request(service.url).get('/cds-services').expect(200);
    const services = res.body.services as CdsServiceDefinition[];
    expect(services.map((s) => [s.hook, s.id])).toEqual([
      ['patient-view', 'ketamine-follow-ups'],
      ['order-sign', 'ketamine-order-check'],
      ['appointment-book', 'ketamine-session-booking'],
    ]);
    for (const s of services) {
      expect(s.title).toBeTruthy();
      expect(s.description).toBeTruthy();
      expect(s.prefetch!.patient).toBe('Patient/{{context.patientId}}');
    }
    expect(services[0].prefetch!.followUps).toBe(
      'Task?patient=Patient/{{context.patientId}}&status=draft,requested,received,accepted,ready,in-progress,on-hold&_count=200',
    );
    // order-sign asks for exactly the data the protocols' eligibility conditions read.
    expect(services[1].prefetch!.bloodPressure).toBe(
      'Observation?subject=Patient/{{context.patientId}}&code=http://loinc.org|85354-9&_sort=-date&_count=1',
    );
    expect(Object.keys(services[1].prefetch!).sort()).toEqual(
      [
        'bloodPressure',
        'bodyWeight',
        'carePlans',
        'conditions',
        'contraindications',
        'openOrders',
        'patient',
        'pregnancyStatus',
      ].sort(),
    );
  });

  it('browser-based CDS clients: preflight and calls get CORS headers (any origin by default); other routes none', async () => {
    const origin = 'https://sandbox.cds-hooks.org';
    const preflight = await request(service.url)
      .options('/cds-services/ketamine-order-check')
      .set('Origin', origin)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type')
      .expect(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
    expect(preflight.headers['access-control-allow-headers']).toMatch(/Authorization/);
    const discovery = await request(service.url).get('/cds-services').set('Origin', origin).expect(200);
    expect(discovery.headers['access-control-allow-origin']).toBe('*');
    const call = await request(service.url)
      .post('/cds-services/ketamine-order-check')
      .set('Origin', origin)
      .send({})
      .expect(401);
    expect(call.headers['access-control-allow-origin']).toBe('*');
    const elsewhere = await request(service.url).get('/health').set('Origin', origin);
    expect(elsewhere.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('patient-view: a critical card for the unresolved contraindication, a warning for the overdue and info for the due follow-up', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [195, 115]);
    await applyLowDose(patientId);
    const now = Date.now();
    const overdue = await followUp(
      patientId,
      'post-infusion-check',
      'Post-infusion check',
      now - 10 * DAY,
      now - 2 * DAY,
    );
    // Approved and accepted in the EHR (a nurse took it on): still due, and shown (since session 47; before, the
    // prefetch asked for draft and ready only).
    const due = await followUp(
      patientId,
      'maintenance-booster',
      'Maintenance booster infusion',
      now - DAY,
      now + 3 * DAY,
      'accepted',
    );
    await followUp(patientId, 'infusion-session', 'Ketamine infusion session', now + 5 * DAY, now + 9 * DAY); // not yet due
    await followUp(patientId, 'post-infusion-check', 'Post-infusion check', now - 9 * DAY, now - 3 * DAY, 'completed');
    // A contraindication a clinician already overrode (mitigation recorded) is resolved: no card.
    await service.fhir.create<DetectedIssue>({
      resourceType: 'DetectedIssue',
      status: 'final',
      code: { coding: [{ system: SERVICE_CODE_SYSTEM, code: 'psychosis' }] },
      patient: { reference: `Patient/${patientId}` },
      mitigation: [{ action: { text: 'Reviewed by psychiatry' }, date: new Date().toISOString() }],
    });

    const res = await callHook('ketamine-follow-ups', patientView(patientId));
    const cards = res.body.cards as Card[];
    expectWellFormed(cards);
    expect(cards.map((c) => c.indicator)).toEqual(['critical', 'warning', 'info']);
    expect(cards[0].summary).toBe('Unresolved ketamine contraindication: Uncontrolled hypertension');
    expect(cards[0].detail).toContain('180/110');
    expect(cards[1].summary).toMatch(/^Overdue: Post-infusion check \(window closed \d{4}-\d{2}-\d{2}\)$/);
    // Which Task a card is about is in its uuid (stable per Task and state); its detail is words, no references.
    expect(cards[1].uuid).toBe(uuidFromKey(`cds:task:${overdue.resource.id}:overdue`));
    expect(cards.map((c) => c.detail).join()).not.toMatch(/(Task|DetectedIssue|CarePlan|Observation)\//);
    expect(cards[1].detail).toContain('2 days ago');
    expect(cards[2].summary).toMatch(/^Due now: Maintenance booster infusion/);
    expect(cards[2].uuid).toBe(uuidFromKey(`cds:task:${due.resource.id}:due`));
    expect(cards[2].links?.[0]).toMatchObject({ type: 'absolute', url: `${service.url}/ui` });
    expect(JSON.stringify(cards)).not.toContain('psychosis');
  });

  it('patient-view: a plan on hold gets a warning card, and its follow-ups are not shown as due', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [124, 78]);
    await applyLowDose(patientId, new Date().toISOString().slice(0, 10));
    const before = (await callHook('ketamine-follow-ups', patientView(patientId))).body.cards as Card[];
    // The plan's first session (and its instructions) are due from today.
    expect(before.filter((c) => /^Due/.test(c.summary)).length).toBeGreaterThan(0);

    const [carePlan] = await service.fhir.searchAll<CarePlan>('CarePlan', { subject: `Patient/${patientId}` });
    await service.fhir.update<CarePlan>({ ...carePlan, status: 'on-hold' });
    const cards = (await callHook('ketamine-follow-ups', patientView(patientId))).body.cards as Card[];
    expectWellFormed(cards);
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['warning', 'Ketamine care plan on hold: Low-dose ketamine infusion series'],
    ]);
    expect(cards[0].detail).toMatch(/Its sessions are not to be given until it resumes/);
  });

  it('patient-view: a plan the EHR stopped has its post-infusion check shown still (the infusion was given), not its sessions', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [124, 78]);
    await applyLowDose(patientId, new Date().toISOString().slice(0, 10));
    const [carePlan] = await service.fhir.searchAll<CarePlan>('CarePlan', { subject: `Patient/${patientId}` });
    const now = Date.now();
    const underPlan = { basedOn: [{ reference: `CarePlan/${carePlan.id}` }] };
    const infusion = { reasonReference: { reference: 'Procedure/an-infusion' } };
    await followUp(patientId, 'post-infusion-check', 'Post-infusion check', now - 9 * DAY, now - DAY, 'ready', {
      ...underPlan,
      ...infusion,
    });
    await followUp(
      patientId,
      'maintenance-booster',
      'Maintenance booster infusion',
      now - DAY,
      now + 3 * DAY,
      'ready',
      {
        ...underPlan,
        ...infusion,
        focus: { reference: 'MedicationRequest/its-order' },
      },
    );
    await service.fhir.update<CarePlan>({ ...carePlan, status: 'revoked' });
    const cards = (await callHook('ketamine-follow-ups', patientView(patientId))).body.cards as Card[];
    expectWellFormed(cards);
    expect(cards.map((c) => c.summary)).toEqual([
      expect.stringMatching(/^Overdue: Post-infusion check \(window closed \d{4}-\d{2}-\d{2}\)$/),
    ]);
  });

  it('a patient-view call leaves an AuditEvent: the CDS client, for the EHR user, about the context patient', async () => {
    const patientId = await newPatient();
    await callHook('ketamine-follow-ups', patientView(patientId));
    await service.app.get(AuditTrail).settled();
    const [event] = await service.fhir.searchAll<AuditEvent>('AuditEvent', { entity: `Patient/${patientId}` });
    expect(event).toMatchObject({
      action: 'E',
      outcome: '0',
      subtype: [{ code: 'operation' }],
      agent: [
        { who: { identifier: { value: SECRET_ISSUER } }, altId: SECRET_ISSUER, requestor: true },
        { who: { reference: 'Practitioner/dr-test' }, requestor: false },
      ],
    });
  });

  it('patient-view honours prefetch: the cards come from what the client sent, not from the server', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [195, 115]);
    await applyLowDose(patientId); // a contraindication on the server, which the client's prefetch does not show
    const now = Date.now();
    const prefetchedTask: Task = {
      resourceType: 'Task',
      id: 'from-the-ehr',
      status: 'ready',
      intent: 'plan',
      businessStatus: businessStatus('approved'),
      code: { coding: [{ system: SERVICE_CODE_SYSTEM, code: 'post-infusion-check' }] },
      for: { reference: `Patient/${patientId}` },
      restriction: { period: { start: new Date(now - 8 * DAY).toISOString(), end: new Date(now - DAY).toISOString() } },
    };
    const someoneElses: Task = { ...prefetchedTask, id: 'other-patient', for: { reference: 'Patient/someone-else' } };
    const res = await callHook(
      'ketamine-follow-ups',
      patientView(patientId, {
        patient: { resourceType: 'Patient', id: patientId },
        followUps: searchset(prefetchedTask, someoneElses),
        contraindications: searchset(),
      }),
    );
    const cards = res.body.cards as Card[];
    expect(cards).toHaveLength(1);
    expect(cards[0]).toMatchObject({ indicator: 'warning' });
    expect(cards[0].summary).toMatch(/^Overdue: Post-infusion check/); // display from the service CodeSystem
    expect(cards[0].uuid).toBe(uuidFromKey('cds:task:from-the-ehr:overdue'));
  });

  it('order-sign: ketamine for a patient with a contraindication on record gets a critical card with the evidence', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [195, 115]);
    await applyLowDose(patientId);
    const order = ketamineOrder(patientId);
    const res = await callHook(
      'ketamine-order-check',
      orderSign(patientId, [order]),
      await jwksJwt('ketamine-order-check'),
    );
    const cards = res.body.cards as Card[];
    expectWellFormed(cards);
    const critical = cards.filter((c) => c.indicator === 'critical');
    expect(critical).toHaveLength(1);
    expect(critical[0].summary).toBe('Ketamine contraindicated: Uncontrolled hypertension');
    expect(critical[0].detail).toMatch(
      /Systolic blood pressure 195 mmHg, Diastolic blood pressure 115 mmHg \(2026-11-10\)/,
    );
    expect(critical[0].detail).toMatch(/Recorded as a contraindication on \d{4}-\d{2}-\d{2}, not resolved/);
    expect(critical[0].detail).not.toMatch(/(DetectedIssue|Observation|MedicationRequest|CarePlan)\//);
    expect(critical[0].suggestions?.[0].actions?.[0]).toMatchObject({
      type: 'delete',
      resourceId: [`MedicationRequest/${order.id}`],
    });
  });

  it('order-sign: ketamine for a patient whose ketamine care plan is paused or was stopped gets a warning saying so', async () => {
    const planned = async () => {
      const patientId = await newPatient();
      await recordVitals(patientId, [124, 78]);
      await applyLowDose(patientId);
      const [carePlan] = await service.fhir.searchAll<CarePlan>('CarePlan', { subject: `Patient/${patientId}` });
      return { patientId, carePlan };
    };
    const warnings = async (patientId: string) =>
      (
        (await callHook('ketamine-order-check', orderSign(patientId, [ketamineOrder(patientId)]))).body.cards as Card[]
      ).filter((c) => c.indicator === 'warning');
    const active = await planned();
    expect(await warnings(active.patientId)).toEqual([]);

    const paused = await planned();
    await service.fhir.update<CarePlan>({ ...paused.carePlan, status: 'on-hold' });
    const [pausedCard] = await warnings(paused.patientId);
    expectWellFormed([pausedCard]);
    expect(pausedCard.summary).toBe('Ketamine care plan on hold: the treatment is paused');
    expect(pausedCard.detail).toMatch(
      /care plan is on hold \(the treatment is paused; its approved orders are held\) since \d{4}-\d{2}-\d{2}\.\*\*/,
    );
    expect(pausedCard.suggestions?.[0]).toMatchObject({ label: 'Remove the ketamine order', isRecommended: true });

    const stopped = await planned();
    await service.fhir.update<CarePlan>({ ...stopped.carePlan, status: 'revoked' });
    const [stoppedCard] = await warnings(stopped.patientId);
    expect(stoppedCard.summary).toBe('Ketamine care plan stopped: the treatment was ended');
    expect(stoppedCard.detail).toMatch(/care plan was stopped on \d{4}-\d{2}-\d{2}\.\*\*/);
    // A new plan applied since: the treatment goes on under it, nothing to say.
    await applyLowDose(stopped.patientId, '2031-06-01');
    expect(await warnings(stopped.patientId)).toEqual([]);
  });

  // Since session 50: the service approves no session after a plan's end, and completes the plan once nothing is open.
  it('order-sign: ketamine for a patient whose ketamine care plan has passed its end gets a warning saying so', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [124, 78]);
    await applyLowDose(patientId);
    const [carePlan] = await service.fhir.searchAll<CarePlan>('CarePlan', { subject: `Patient/${patientId}` });
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const warnings = async () =>
      (
        (await callHook('ketamine-order-check', orderSign(patientId, [ketamineOrder(patientId)]))).body.cards as Card[]
      ).filter((c) => c.indicator === 'warning');
    // Its end to come: nothing to say.
    await service.fhir.update<CarePlan>({
      ...carePlan,
      status: 'active',
      period: { start: '2026-10-01', end: '2031-01-01' },
    });
    expect(await warnings()).toEqual([]);
    const current = await service.fhir.read<CarePlan>('CarePlan', carePlan.id!);
    await service.fhir.update<CarePlan>({ ...current, period: { start: '2026-10-01', end: yesterday } });
    const [card, ...more] = await warnings();
    expect(more).toEqual([]);
    expectWellFormed([card]);
    expect(card.summary).toBe('Ketamine care plan ended: its end date has passed');
    expect(card.detail).toContain(
      `**The patient's ketamine care plan ended (its end date, set in the EHR) on ${yesterday}.**`,
    );
    expect(card.detail).toMatch(/extend the care plan in the EHR/);
  });

  it('order-sign: ketamine ordered for the time of a session already approved gets a warning, unless it replaces it', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [124, 78]);
    await applyLowDose(patientId);
    const [session] = (await service.fhir.searchAll<Task>('Task', { patient: `Patient/${patientId}` })).filter((t) =>
      t.focus?.reference?.startsWith('MedicationRequest/'),
    );
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId })
      .expect(200);
    const [approved] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      subject: `Patient/${patientId}`,
      status: 'active',
    });
    // The order approved here is for its session's due window (its Task's).
    const window = session.restriction!.period!;
    const at = (start: string, end: string): MedicationRequest => ({
      ...ketamineOrder(patientId),
      dosageInstruction: [{ timing: { repeat: { boundsPeriod: { start, end } } } }],
    });
    const duplicates = async (order: MedicationRequest) =>
      ((await callHook('ketamine-order-check', orderSign(patientId, [order]))).body.cards as Card[]).filter((c) =>
        c.summary.startsWith('Ketamine already ordered'),
      );

    // The prescriber orders the session again in the EHR, within its window: said, with the order on record.
    const again = at(window.start!, window.start!);
    const [card] = await duplicates(again);
    expectWellFormed([card]);
    expect(card.indicator).toBe('warning');
    expect(card.summary).toBe('Ketamine already ordered for this time: a session approved in the ketamine care plan');
    expect(card.detail).toContain('approved in the ketamine care plan by Dr Test');
    // Words for the clinician reading the card: no ids (the suggestion's actions carry the references).
    expect(card.detail).not.toContain('MedicationRequest/');
    // Mark the new order as replacing it (the service then follows the EHR's dose), or remove it.
    expect(card.suggestions?.map((s) => s.label)).toEqual([
      'Mark it as replacing the order on record',
      'Remove this ketamine order',
    ]);
    expect(card.suggestions?.[0].actions?.[0]).toMatchObject({
      type: 'update',
      resource: { id: again.id, priorPrescription: { reference: `MedicationRequest/${approved.id}` } },
    });
    // Nothing to say of one that replaces it, of one for another time, or with no time set when there is no other.
    expect(
      await duplicates({ ...again, priorPrescription: { reference: `MedicationRequest/${approved.id}` } }),
    ).toEqual([]);
    expect(await duplicates(at('2040-01-01T00:00:00Z', '2040-01-02T00:00:00Z'))).toEqual([]);
    // No window: it could be given any time, so the session on record is said, without "for this time".
    const [untimed] = await duplicates(ketamineOrder(patientId));
    expect(untimed.summary).toBe('Ketamine already ordered: a session approved in the ketamine care plan');
  });

  it("order-sign: a ketamine rate per kg outside the protocols' range gets a warning, judged at the latest weight", async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [118, 76]); // 80 kg
    const atRate = (value: number, code: string, id: string): MedicationRequest => ({
      ...ketamineOrder(patientId, id),
      dosageInstruction: [
        { doseAndRate: [{ rateQuantity: { value, unit: code, code, system: 'http://unitsofmeasure.org' } }] },
      ],
    });
    const res = await callHook(
      'ketamine-order-check',
      orderSign(patientId, [
        atRate(250, 'mg/h', 'too-fast'),
        atRate(60, 'mg/h', 'in-range'),
        atRate(0.25, 'mg/kg/h', 'too-slow'),
      ]),
    );
    const cards = res.body.cards as Card[];
    expectWellFormed(cards);
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['warning', "Ketamine rate above the protocols' range: 3.13 mg/kg/h"],
      ['warning', "Ketamine rate below the protocols' range: 0.25 mg/kg/h"],
    ]);
    expect(cards[0].detail).toContain(
      '**250 mg/h for 80 kg (weighed 2026-11-10), 3.13 mg/kg/h** is above 0.5-2 mg/kg/h',
    );

    // No weight on record: a rate per hour cannot be judged per kg, and the card says the check did not run.
    const unweighed = await newPatient();
    const unchecked = await callHook(
      'ketamine-order-check',
      orderSign(unweighed, [{ ...atRate(100, 'mg/h', 'unweighed'), subject: { reference: `Patient/${unweighed}` } }]),
    );
    const warning = (unchecked.body.cards as Card[]).find((c) => c.indicator === 'warning')!;
    expect(warning.detail).toContain('The ketamine rate per kg (100 mg/h; no body weight in kg on record)');
  });

  it("order-sign: an order of an EHR's own infusion definition is judged against that definition's range", async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [118, 76]); // 80 kg
    // The EHR's infusion: the catalog's low-dose one under its own url, allowing 0.5-1 mg/kg/h (the catalog's 0.5-2).
    const catalogInfusion = JSON.parse(
      readFileSync(join(__dirname, '../fhir-profiles/ActivityDefinition-ketamine-low-dose-infusion.json'), 'utf8'),
    ) as ActivityDefinition;
    const url = `http://ehr.example/ActivityDefinition/narrow-infusion-${randomUUID()}`;
    const { id: _id, ...infusion } = JSON.parse(
      JSON.stringify(catalogInfusion).replace(
        '"high":{"value":2,"unit":"mg/kg/h"',
        '"high":{"value":1,"unit":"mg/kg/h"',
      ),
    ) as ActivityDefinition;
    await service.fhir.create<ActivityDefinition>({ ...infusion, url, version: '1' });
    const order: MedicationRequest = {
      ...ketamineOrder(patientId, 'ehr-protocol'),
      instantiatesCanonical: [`${url}|1`],
      dosageInstruction: [
        {
          doseAndRate: [
            { rateQuantity: { value: 1.5, unit: 'mg/kg/h', code: 'mg/kg/h', system: 'http://unitsofmeasure.org' } },
          ],
        },
      ],
    };
    const cards = (await callHook('ketamine-order-check', orderSign(patientId, [order]))).body.cards as Card[];
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['warning', "Ketamine rate above the protocols' range: 1.5 mg/kg/h"],
    ]);
    expect(cards[0].detail).toContain('is above 0.5-1 mg/kg/h');
  });

  it("order-sign: an order of an EHR's own protocol is judged by that protocol's conditions too", async () => {
    // The EHR's series: the catalog's, with its own infusion, and a stricter blood pressure (140/90, the catalog 180/110).
    const series = JSON.parse(
      readFileSync(join(__dirname, '../fhir-profiles/PlanDefinition-ketamine-low-dose-series.json'), 'utf8'),
    ) as PlanDefinition;
    const infusion = JSON.parse(
      readFileSync(join(__dirname, '../fhir-profiles/ActivityDefinition-ketamine-low-dose-infusion.json'), 'utf8'),
    ) as ActivityDefinition;
    const tag = randomUUID();
    const ownInfusion = `http://ehr.example/ActivityDefinition/infusion-${tag}|1`;
    const { id: _adId, ...adBody } = infusion;
    await service.fhir.create<ActivityDefinition>({ ...adBody, url: ownInfusion.split('|')[0], version: '1' });
    const {
      id: _pdId,
      text: _text,
      ...pdBody
    } = JSON.parse(
      JSON.stringify(series)
        .replaceAll(`${infusion.url}|${infusion.version}`, ownInfusion)
        .replaceAll('value.value >= 180', 'value.value >= 140')
        .replaceAll('value.value >= 110', 'value.value >= 90'),
    ) as PlanDefinition;
    const planUrl = `http://ehr.example/PlanDefinition/strict-series-${tag}`;
    await service.fhir.create<PlanDefinition>({ ...pdBody, url: planUrl, version: '1' });
    const patientId = await newPatient();
    await recordVitals(patientId, [122, 76]);
    await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('clinician'))
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'url', valueUri: planUrl },
          { name: 'subject', valueReference: { reference: `Patient/${patientId}` } },
          { name: 'startDate', valueDate: '2031-01-01' },
          { name: 'persist', valueBoolean: true },
        ],
      })
      .expect(200);
    // 150/95 since: clear under the catalog's protocols, contraindicated under the EHR's.
    await recordVitals(patientId, [150, 95], '2026-11-20T09:00:00Z');
    const order = { ...ketamineOrder(patientId), instantiatesCanonical: [ownInfusion] };
    const cards = (await callHook('ketamine-order-check', orderSign(patientId, [order]))).body.cards as Card[];
    expectWellFormed(cards);
    expect(cards.filter((c) => c.indicator === 'critical').map((c) => c.summary)).toEqual([
      'Ketamine contraindicated: Uncontrolled hypertension',
    ]);
    // The same order for the catalog's protocol: nothing to say of that blood pressure.
    const catalogOrder = ketamineOrder(patientId);
    const clear = (await callHook('ketamine-order-check', orderSign(patientId, [catalogOrder]))).body.cards as Card[];
    expect(clear.filter((c) => c.indicator === 'critical')).toEqual([]);
  });

  it("order-sign: a ketamine bolus above the protocols' 0.35 mg/kg gets a warning, judged at the latest weight", async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [118, 76]); // 80 kg
    const withBolus = (value: number, code: string, id: string): MedicationRequest => ({
      ...ketamineOrder(patientId, id),
      dosageInstruction: [
        {
          doseAndRate: [
            { rateQuantity: { value: 40, unit: 'mg/h', code: 'mg/h', system: 'http://unitsofmeasure.org' } },
          ],
        },
        { doseAndRate: [{ doseQuantity: { value, unit: code, code, system: 'http://unitsofmeasure.org' } }] },
      ],
    });
    const res = await callHook(
      'ketamine-order-check',
      orderSign(patientId, [withBolus(40, 'mg', 'big-bolus'), withBolus(0.3, 'mg/kg', 'fine-bolus')]),
    );
    const cards = res.body.cards as Card[];
    expectWellFormed(cards);
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['warning', "Ketamine bolus above the protocols' ceiling: 0.5 mg/kg"],
    ]);
    expect(cards[0].detail).toContain('**40 mg for 80 kg (weighed 2026-11-10), 0.5 mg/kg** is above 0.35 mg/kg');
  });

  it('order-sign: a patient failing an eligibility condition (pregnancy) with nothing on record yet gets a critical card', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [118, 76]);
    const { resource: pregnancy } = await service.fhir.create(activeCondition(...PREGNANCY, `Patient/${patientId}`));
    const res = await callHook('ketamine-order-check', orderSign(patientId, [ketamineOrder(patientId)]));
    const critical = (res.body.cards as Card[]).filter((c) => c.indicator === 'critical');
    expect(critical.map((c) => c.summary)).toEqual(['Ketamine contraindicated: Pregnancy']);
    expect(critical[0].detail).toContain('Condition: Pregnancy, active');
    expect(critical[0].detail).not.toContain(`Condition/${pregnancy.id}`);
    expect(await service.fhir.searchAll('DetectedIssue', { patient: `Patient/${patientId}` })).toHaveLength(0);
  });

  /** Two records of one person, merged as FHIR's Patient/$merge links them: `away` replaced by `kept`. */
  async function mergedRecords(beforeMerge?: (away: string) => Promise<void>): Promise<{ away: string; kept: string }> {
    const away = await newPatient();
    await beforeMerge?.(away);
    const kept = await mergedIntoNewRecord(service, `Patient/${away}`, { name: [{ family: 'Cds' }] });
    return { away, kept: kept.split('/')[1] };
  }

  // Before session 49 only the context patient's record was read: the pregnancy under the other gave no card.
  it.each([
    ['the record kept, the pregnancy under the record merged away', 'kept', 'away'],
    ['the record merged away, the pregnancy under the record kept', 'away', 'kept'],
  ] as const)(
    'order-sign for %s: the person’s records are read together, and the pregnancy gets a critical card',
    async (_, ordered, recorded) => {
      const records = await mergedRecords();
      await recordVitals(records[ordered], [118, 76]);
      await service.fhir.create(activeCondition(...PREGNANCY, `Patient/${records[recorded]}`));
      const res = await callHook(
        'ketamine-order-check',
        orderSign(records[ordered], [ketamineOrder(records[ordered])]),
      );
      const critical = (res.body.cards as Card[]).filter((c) => c.indicator === 'critical');
      expect(critical.map((c) => c.summary)).toEqual(['Ketamine contraindicated: Pregnancy']);
    },
  );

  it('order-sign for a record merged twice (A into B, B into C): a pregnancy under A is found on an order for C', async () => {
    const { away: a, kept: b } = await mergedRecords();
    const c = (await mergedIntoNewRecord(service, `Patient/${b}`)).split('/')[1];
    await recordVitals(c, [118, 76]);
    await service.fhir.create(activeCondition(...PREGNANCY, `Patient/${a}`));
    const res = await callHook('ketamine-order-check', orderSign(c, [ketamineOrder(c)]));
    const critical = (res.body.cards as Card[]).filter((card) => card.indicator === 'critical');
    expect(critical.map((card) => card.summary)).toEqual(['Ketamine contraindicated: Pregnancy']);
  });

  it('patient-view on the record kept shows the contraindication and overdue check of the plan under the record merged away', async () => {
    const { away, kept } = await mergedRecords(async (id) => {
      await recordVitals(id, [195, 115]);
      await applyLowDose(id);
    });
    const now = Date.now();
    await followUp(away, 'post-infusion-check', 'Post-infusion check', now - 10 * DAY, now - 2 * DAY);
    const cards = (await callHook('ketamine-follow-ups', patientView(kept))).body.cards as Card[];
    // Before session 49: no card (only the record kept was read).
    expect(cards.map((c) => [c.indicator, c.summary.replace(/ \(.*$/, '')])).toEqual([
      ['critical', 'Unresolved ketamine contraindication: Uncontrolled hypertension'],
      ['warning', 'Overdue: Post-infusion check'],
    ]);
    // The access audit names the record merged away too, whose records the call read.
    await service.app.get(AuditTrail).settled();
    const events = await service.fhir.searchAll<AuditEvent>('AuditEvent', { entity: `Patient/${kept}` });
    const call = events.find((e) => e.agent?.some((a) => a.altId === SECRET_ISSUER));
    expect(call?.entity?.map((e) => e.what?.reference)).toEqual(
      expect.arrayContaining([`Patient/${kept}`, `Patient/${away}`]),
    );
  });

  it('order-sign with everything prefetched for the record kept: what is under the record merged away is read too', async () => {
    const { away, kept } = await mergedRecords();
    await service.fhir.create(activeCondition(...PREGNANCY, `Patient/${away}`));
    const subject = `Patient/${kept}`;
    // The EHR prefetched every key for the record kept: its vitals, and nothing else on it.
    const prefetch = {
      patient: await service.fhir.read<Patient>('Patient', kept),
      bodyWeight: searchset(bodyWeight(80, '2026-11-10T09:00:00Z', subject)),
      bloodPressure: searchset(bloodPressure(118, 76, '2026-11-10T09:00:00Z', subject)),
      ...Object.fromEntries(
        ['conditions', 'pregnancyStatus', 'contraindications', 'carePlans', 'openOrders'].map((k) => [k, searchset()]),
      ),
    };
    const res = await callHook('ketamine-order-check', orderSign(kept, [ketamineOrder(kept)], prefetch));
    const critical = (res.body.cards as Card[]).filter((c) => c.indicator === 'critical');
    expect(critical.map((c) => c.summary)).toEqual(['Ketamine contraindicated: Pregnancy']);
  });

  it('order-sign: a pregnancy recorded after 1,000 other conditions is found: the fetched conditions are read whole', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [118, 76]);
    const subject = `Patient/${patientId}`;
    await service.fhir.transaction(
      createsOf(Array.from({ length: 1000 }, () => activeCondition(...FIBROMYALGIA, subject))),
    );
    await service.fhir.create(activeCondition(...PREGNANCY, subject));
    const res = await callHook('ketamine-order-check', orderSign(patientId, [ketamineOrder(patientId)]));
    const critical = (res.body.cards as Card[]).filter((c) => c.indicator === 'critical');
    expect(critical.map((c) => c.summary)).toEqual(['Ketamine contraindicated: Pregnancy']);
  });

  it('order-sign: a prefetched first page of conditions (a next link) is topped up from the server, whose pregnancy counts', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [118, 76]);
    const subject = `Patient/${patientId}`;
    await service.fhir.create(activeCondition(...PREGNANCY, subject));
    // The EHR sent its first page: a condition of its own, and a link to the rest.
    const firstPage: Bundle = {
      ...searchset({ ...activeCondition(...FIBROMYALGIA, subject), id: 'ehr-fibromyalgia' }),
      link: [{ relation: 'next', url: `https://ehr.example/fhir/Condition?patient=${subject}&_page=2` }],
    };
    const res = await callHook(
      'ketamine-order-check',
      orderSign(patientId, [ketamineOrder(patientId)], { conditions: firstPage }),
    );
    const critical = (res.body.cards as Card[]).filter((c) => c.indicator === 'critical');
    expect(critical.map((c) => c.summary)).toEqual(['Ketamine contraindicated: Pregnancy']);
  });

  it("order-sign: an order naming a Medication on the FHIR server is recognised as ketamine by that Medication's code", async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [118, 76]);
    await service.fhir.create(activeCondition(...PREGNANCY, `Patient/${patientId}`));
    const { resource: medication } = await service.fhir.create<Medication>({
      resourceType: 'Medication',
      code: KETAMINE,
    });
    const order = orderNaming(patientId, { reference: `Medication/${medication.id}` });
    const res = await callHook('ketamine-order-check', orderSign(patientId, [order]));
    const critical = (res.body.cards as Card[]).filter((c) => c.indicator === 'critical');
    expect(critical.map((c) => c.summary)).toEqual(['Ketamine contraindicated: Pregnancy']);
  });

  it('order-sign: an order naming a Medication found nowhere gets a warning that the check did not run', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [118, 76]);
    const order = orderNaming(
      patientId,
      { reference: 'https://ehr.example/fhir/Medication/123', display: 'Ketamine 50 mg/mL' },
      'draft-ehr-med',
    );
    const res = await callHook('ketamine-order-check', orderSign(patientId, [order]));
    const cards = res.body.cards as Card[];
    expectWellFormed(cards);
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['warning', 'Medication not found: ketamine contraindication check did not run (1 order)'],
    ]);
    expect(cards[0].detail).toContain(
      'A draft order names Ketamine 50 mg/mL (https://ehr.example/fhir/Medication/123)',
    );
  });

  it('order-sign: an eligible patient gets no critical card, and non-ketamine orders are not checked', async () => {
    const eligible = await newPatient();
    await recordVitals(eligible, [124, 78]);
    const ok = await callHook('ketamine-order-check', orderSign(eligible, [ketamineOrder(eligible)]));
    expect(ok.body.cards).toEqual([]);

    const contraindicated = await newPatient();
    await recordVitals(contraindicated, [200, 120]);
    const antiemetic = { ...ketamineOrder(contraindicated), medicationCodeableConcept: ONDANSETRON };
    const other = await callHook('ketamine-order-check', orderSign(contraindicated, [antiemetic]));
    expect(other.body.cards).toEqual([]);
  });

  it('order-sign honours prefetch: a prefetched 200/120 reading makes a patient who looks fine on the server ineligible', async () => {
    const patientId = await newPatient();
    await recordVitals(patientId, [124, 78]);
    const reading: Observation = {
      ...bloodPressure(200, 120, '2026-11-20T08:00:00Z', `Patient/${patientId}`),
      id: 'ehr-bp',
    };
    const res = await callHook(
      'ketamine-order-check',
      orderSign(patientId, [ketamineOrder(patientId)], { bloodPressure: searchset(reading) }),
    );
    const critical = (res.body.cards as Card[]).filter((c) => c.indicator === 'critical');
    expect(critical.map((c) => c.summary)).toEqual(['Ketamine contraindicated: Uncontrolled hypertension']);
    expect(critical[0].detail).toContain('200 mmHg');
    expect(critical[0].detail).toContain('(2026-11-20)');
  });

  it('order-sign: with no blood pressure on record says the check could not run, as a warning', async () => {
    const patientId = await newPatient();
    const res = await callHook('ketamine-order-check', orderSign(patientId, [ketamineOrder(patientId)]));
    const cards = res.body.cards as Card[];
    expect(cards.map((c) => c.indicator)).toEqual(['warning']);
    expect(cards[0].detail).toContain('180/110');
  });

  it('a request that does not fit the service is refused with 400: wrong hook, bad patient id, another patient prefetched', async () => {
    const id = 'ketamine-follow-ups';
    const post = async (body: object) =>
      request(service.url)
        .post(`/cds-services/${id}`)
        .set('Authorization', `Bearer ${await secretJwt(id)}`)
        .send(body)
        .expect(400);
    const patientId = await newPatient();
    expect((await post({ ...patientView(patientId), hook: 'order-sign' })).body.issue[0].details.text).toMatch(
      /answers the patient-view hook/,
    );
    expect((await post(patientView('x&_id=y'))).body.issue[0].details.text).toMatch(/patientId must be a FHIR id/);
    const mismatch = patientView(patientId, { patient: { resourceType: 'Patient', id: 'someone-else' } });
    expect((await post(mismatch)).body.issue[0].details.text).toMatch(/prefetch.patient is not/);
    await request(service.url)
      .post('/cds-services/no-such-service')
      .set('Authorization', `Bearer ${await secretJwt('no-such-service')}`)
      .send(patientView(patientId))
      .expect(404);
  });

  it('feedback: an overridden contraindication card is counted with its reason code; comments are not; bad bodies 400', async () => {
    const id = 'ketamine-order-check';
    const patientId = await newPatient();
    await recordVitals(patientId, [195, 115]);
    const card = (await callHook(id, orderSign(patientId, [ketamineOrder(patientId)]))).body.cards[0] as Card;
    const feedbackUrl = `${endpoint(id)}/feedback`;
    const feedback = (outcome: object) => ({
      feedback: [{ card: card.uuid, outcomeTimestamp: '2026-12-02T10:15:00Z', ...outcome }],
    });
    const overridden = feedback({
      outcome: 'overridden',
      overrideReason: {
        reason: { system: 'https://ehr.example/override-reasons', code: 'benefit-outweighs-risk' },
        userComment: `Discussed with the patient ${patientId}`,
      },
    });
    const send = async (body: object, audience = feedbackUrl) =>
      request(service.url)
        .post(`/cds-services/${id}/feedback`)
        .set('Authorization', `Bearer ${await mintCdsClientJwt({ issuer: SECRET_ISSUER, audience, secret: SECRET })}`)
        .send(body);
    expect((await send(overridden)).status).toBe(200);
    const metrics = (await request(service.url).get('/metrics').expect(200)).text;
    expect(metrics).toMatch(
      /kc_cds_feedback_total\{service="ketamine-order-check",outcome="overridden",reason="benefit-outweighs-risk"\} 1/,
    );
    expect(metrics).not.toContain(patientId);
    // The JWT is for the feedback endpoint itself; the service's own audience does not do.
    expect((await send(overridden, endpoint(id))).status).toBe(401);
    const bad = await send(feedback({ outcome: 'accepted', overrideReason: { userComment: 'x' } }));
    expect(bad.status).toBe(400);
    expect(bad.body.issue[0].expression).toEqual(['feedback[0].overrideReason']);
    await request(service.url)
      .post('/cds-services/no-such-service/feedback')
      .set(
        'Authorization',
        `Bearer ${await mintCdsClientJwt({ issuer: SECRET_ISSUER, audience: `${endpoint('no-such-service')}/feedback`, secret: SECRET })}`,
      )
      .send(overridden)
      .expect(404);
  });

  describe('client authentication', () => {
    const id = 'ketamine-order-check';
    const body = () => orderSign('anyone', []);
    const expect401 = async (authorization: string | undefined, reason: RegExp) => {
      const req = request(service.url).post(`/cds-services/${id}`).send(body());
      if (authorization) req.set('Authorization', authorization);
      const res = await req.expect(401);
      expect(res.headers['content-type']).toMatch(/json/);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.body.issue[0].details.text).toMatch(reason);
    };

    it('a valid client JWT (shared secret or JWKS) is accepted', async () => {
      await callHook(id, body(), await secretJwt(id));
      await callHook(id, body(), await jwksJwt(id));
    });

    it('no token, garbage, a forged signature, an unknown issuer: 401 with a JSON error', async () => {
      await expect401(undefined, /Bearer/);
      await expect401('Bearer not-a-jwt', /not a JWT/);
      const forged = await mintCdsClientJwt({ issuer: SECRET_ISSUER, audience: endpoint(id), secret: 'x'.repeat(40) });
      await expect401(`Bearer ${forged}`, /bad signature/);
      const stranger = await mintCdsClientJwt({ issuer: 'https://evil.test', audience: endpoint(id), secret: SECRET });
      await expect401(`Bearer ${stranger}`, /not a trusted CDS client/);
    });

    it('a token for another endpoint, an expired token, a replayed jti or an HMAC token for a JWKS client: 401', async () => {
      await expect401(`Bearer ${await secretJwt('ketamine-follow-ups')}`, /aud/);
      const old = Math.floor(Date.now() / 1000) - 3600;
      await expect401(`Bearer ${await secretJwt(id, { iat: old, expiresInSeconds: 300 })}`, /expired/);
      const once = await secretJwt(id);
      await callHook(id, body(), once);
      await expect401(`Bearer ${once}`, /jti was already used/);
      const confused = await mintCdsClientJwt({ issuer: JWKS_ISSUER, audience: endpoint(id), secret: SECRET });
      await expect401(`Bearer ${confused}`, /algorithm not allowed/);
    });
  });

  describe('appointment-book: is the appointment a ketamine session that may be given then', () => {
    const appointmentAt = (patientId: string, start: number, extra: Partial<Appointment> = {}): Appointment => ({
      resourceType: 'Appointment',
      id: `proposed-${start}`,
      status: 'proposed',
      start: new Date(start).toISOString(),
      end: new Date(start + 3_600_000).toISOString(),
      participant: [{ actor: { reference: `Patient/${patientId}` }, status: 'needs-action' }],
      ...extra,
    });
    const book = async (patientId: string, start: number, extra: Partial<Appointment> = {}) =>
      (
        await callHook('ketamine-session-booking', {
          hook: 'appointment-book',
          hookInstance: randomUUID(),
          context: {
            userId: 'Practitioner/scheduler',
            patientId,
            appointments: {
              resourceType: 'Bundle',
              type: 'collection',
              entry: [{ resource: appointmentAt(patientId, start, extra) }],
            },
          },
        })
      ).body.cards as Card[];

    // Before session 49 the sessions under the record merged away were not read: nothing was said.
    it('booked on the record kept, the plan under the record merged away: warns of its session not approved yet', async () => {
      const { away, kept } = await mergedRecords(async (id) => {
        await recordVitals(id, [124, 78]);
        await applyLowDose(id);
      });
      const [session] = (await service.fhir.searchAll<Task>('Task', { patient: `Patient/${away}` })).filter(
        (t) => t.focus?.reference?.startsWith('MedicationRequest/') && t.status === 'draft',
      );
      const allowed = session.extension!.find((e) => e.url.endsWith('/protocol-window'))!.valuePeriod!;
      const cards = await book(kept, Date.parse(allowed.start!) + 14 * 3_600_000);
      expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
        ['warning', 'Ketamine session not approved yet: Ketamine infusion session'],
      ]);
    });

    it('warns of a session not approved yet or a time outside the protocol window; says nothing once approved', async () => {
      const patientId = await newPatient();
      await recordVitals(patientId, [124, 78]);
      await applyLowDose(patientId);
      const [session] = (await service.fhir.searchAll<Task>('Task', { patient: `Patient/${patientId}` })).filter(
        (t) => t.focus?.reference?.startsWith('MedicationRequest/') && t.status === 'draft',
      );
      const allowed = session.extension!.find((e) => e.url.endsWith('/protocol-window'))!.valuePeriod!;
      const inWindow = Date.parse(allowed.start!) + 14 * 3_600_000;

      const waiting = await book(patientId, inWindow);
      expect(waiting.map((c) => [c.indicator, c.summary])).toEqual([
        ['warning', 'Ketamine session not approved yet: Ketamine infusion session'],
      ]);
      expect(waiting[0].detail).toMatch(/awaits a clinician's approval/);

      const outside = await book(patientId, Date.parse(allowed.end!) + 10 * DAY);
      // A window of whole days (UTC here) ends at the midnight after its last day.
      expect(allowed.end).toMatch(/T00:00:00(\.000)?Z$/);
      const lastDay = new Date(Date.parse(allowed.end!) - 1).toISOString().slice(0, 10);
      expect(outside.map((c) => c.indicator)).toEqual(['warning']);
      expect(outside[0].summary).toBe(
        `Outside the ketamine protocol window: Ketamine infusion session may be given ${allowed.start!.slice(0, 10)} to ${lastDay}`,
      );
      // The same time for another service (its serviceType says so, since session 28): nothing to say.
      const psychiatry = {
        serviceType: [{ coding: [{ system: 'http://snomed.info/sct', code: '394913002', display: 'Psychiatry' }] }],
      };
      expect(await book(patientId, Date.parse(allowed.end!) + 10 * DAY, psychiatry)).toEqual([]);

      await request(service.url)
        .post(`/tasks/${session.id}/$approve`)
        .set(service.as('clinician'))
        .send({ versionId: session.meta!.versionId })
        .expect(200);
      expect(await book(patientId, inWindow)).toEqual([]);
      // Accepted in the EHR (a nurse took it on): still the approved session its appointment books, beside the next
      // session awaiting approval a month on (before session 47 the accepted one was not read, and the time was called
      // outside every session's window).
      const approved = await service.fhir.read<Task>('Task', session.id!);
      await service.fhir.update<Task>({ ...approved, status: 'accepted' });
      const later = (p: Period) => ({
        start: new Date(Date.parse(p.start!) + 30 * DAY).toISOString(),
        end: new Date(Date.parse(p.end!) + 30 * DAY).toISOString(),
      });
      await service.fhir.create<Task>({
        ...session,
        id: undefined,
        meta: undefined,
        identifier: undefined,
        restriction: { period: later(session.restriction!.period!) },
        extension: session.extension!.map((e) =>
          e.url.endsWith('/protocol-window') ? { ...e, valuePeriod: later(e.valuePeriod!) } : e,
        ),
      });
      expect(await book(patientId, inWindow)).toEqual([]);

      // A patient with no ketamine session: any appointment is none of this service's business.
      expect(await book(await newPatient(), inWindow)).toEqual([]);
      // The appointments being booked are required.
      await request(service.url)
        .post('/cds-services/ketamine-session-booking')
        .set('Authorization', `Bearer ${await secretJwt('ketamine-session-booking')}`)
        .send({ hook: 'appointment-book', hookInstance: randomUUID(), context: { patientId } })
        .expect(400);
    });

    it("a session of an EHR's protocol, whose infusion the catalog does not code: an appointment coded its own way is judged by its time", async () => {
      const patientId = await newPatient();
      const allowed = { start: '2027-03-01T00:00:00.000Z', end: '2027-03-08T00:00:00.000Z' };
      // As $apply writes a session of a protocol the EHR posted, with its own infusion ActivityDefinition.
      await service.fhir.create<Task>({
        resourceType: 'Task',
        status: 'draft',
        intent: 'proposal',
        instantiatesCanonical: 'http://ehr.example/ActivityDefinition/ketamine-infusion|1',
        for: { reference: `Patient/${patientId}` },
        focus: { reference: 'MedicationRequest/ehr-proposal' },
        description: 'Ketamine infusion session',
        businessStatus: {
          coding: [
            {
              system: 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans',
              code: 'awaiting-approval',
            },
          ],
        },
        restriction: { period: allowed },
        extension: [
          { url: 'https://ketamine-careplans.example/fhir/StructureDefinition/protocol-window', valuePeriod: allowed },
        ],
      });
      const localCode = { system: 'http://ehr.example/CodeSystem/services', code: 'KET-INF' };
      const cards = await book(patientId, Date.parse(allowed.start) + 14 * 3_600_000, {
        serviceType: [{ coding: [localCode] }],
      });
      expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
        ['warning', 'Ketamine session not approved yet: Ketamine infusion session'],
      ]);
    });
  });
});

/**
 * The EHR's own FHIR server, as a CDS call names it (`fhirServer` + `fhirAuthorization`): an embedded FHIR server
 * behind a gate that wants the call's bearer token, as an EHR's would. The service reads the EHR's records there
 * only when the deployment trusts that server (CDS_FHIR_SERVERS).
 */
describe('CDS Hooks: patient data from the EHR FHIR server the call names', () => {
  /** The service's time for one call's FHIR reads (CDS_READ_BUDGET_MS); an EHR waits a few seconds. */
  const READ_BUDGET_MS = 1500;
  const EHR_TOKEN = 'ehr-access-token-' + randomUUID();
  let ehrStore: FhirSandbox;
  let ehrGate: http.Server;
  let ehrBase: string;
  let service: TestService;
  const seenByEhr: string[] = [];
  /** When set, the EHR's server answers every request with this status (down, overloaded). */
  let ehrAnswers: number | undefined;
  /** When set, the EHR's server takes requests and answers none (overloaded, a stalled proxy) until let go. */
  let ehrHangs: http.ServerResponse[] | undefined;
  /** When set, the EHR's server refuses to give Patients (403: the service's token has no scope for them). */
  let refusesPatients = false;

  beforeAll(async () => {
    ehrStore = await startFhirSandbox();
    ehrGate = http.createServer((req, res) => {
      seenByEhr.push(`${req.method} ${req.url?.split('?')[0]}`);
      if (ehrHangs) {
        ehrHangs.push(res);
        return;
      }
      if (ehrAnswers || (refusesPatients && req.url?.startsWith('/fhir/Patient'))) {
        res
          .writeHead(ehrAnswers ?? 403, { 'content-type': 'application/fhir+json' })
          .end('{"resourceType":"OperationOutcome"}');
        return;
      }
      if (req.headers.authorization !== `Bearer ${EHR_TOKEN}`) {
        res.writeHead(401, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"OperationOutcome"}');
        return;
      }
      // Reads only (what the service may do there), passed on to the store.
      void fetch(`${ehrStore.baseUrl}${req.url!.replace(/^\/fhir/, '')}`, { method: req.method }).then(
        async (answer) => {
          res.writeHead(answer.status, { 'content-type': 'application/fhir+json' }).end(await answer.text());
        },
      );
    });
    await new Promise<void>((resolve) => ehrGate.listen(0, '127.0.0.1', resolve));
    ehrBase = `http://127.0.0.1:${(ehrGate.address() as AddressInfo).port}/fhir`;
    service = await startTestService({
      cdsClients: { [SECRET_ISSUER]: { secret: SECRET } },
      cdsFhirServers: [ehrBase],
      cdsReadBudgetMs: READ_BUDGET_MS,
    });
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await new Promise((resolve) => ehrGate?.close(resolve));
    await ehrStore?.close();
  });

  async function orderSignCall(
    fhirServer: string,
    order = orderNaming('ehr-patient-1', { reference: 'Medication/ehr-ketamine' }, 'ehr-draft-1'),
    ehrWaitsMs = 30_000,
  ) {
    return ehrCall(
      'ketamine-order-check',
      'order-sign',
      { draftOrders: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: order }] } },
      fhirServer,
      ehrWaitsMs,
    );
  }

  /** A call of `hook` to service `id` for ehr-patient-1, naming `fhirServer` with the EHR's token; its cards. */
  async function ehrCall(
    id: string,
    hook: string,
    context: Record<string, unknown>,
    fhirServer = ehrBase,
    ehrWaitsMs = 30_000,
  ): Promise<Card[]> {
    const jwt = await mintCdsClientJwt({
      issuer: SECRET_ISSUER,
      audience: `${service.url}/cds-services/${id}`,
      secret: SECRET,
    });
    const res = await request(service.url)
      .post(`/cds-services/${id}`)
      .set('Authorization', `Bearer ${jwt}`)
      .send({
        hook,
        hookInstance: randomUUID(),
        fhirServer,
        fhirAuthorization: {
          access_token: EHR_TOKEN,
          token_type: 'Bearer',
          expires_in: 300,
          scope: 'patient/*.read',
          subject: 'cds',
        },
        context: { userId: 'Practitioner/dr-test', patientId: 'ehr-patient-1', ...context },
      })
      .timeout(ehrWaitsMs)
      .expect(200);
    return res.body.cards as Card[];
  }

  it("reads the patient's conditions, vitals and the order's Medication from the trusted EHR server with its token", async () => {
    // On the EHR's server only: this service's own server knows nothing of the patient.
    const subject = 'Patient/ehr-patient-1';
    const ehr = new FhirClient({ baseUrl: ehrStore.baseUrl });
    await ehr.update<Medication>({ resourceType: 'Medication', id: 'ehr-ketamine', code: KETAMINE });
    await ehr.create(activeCondition(...PREGNANCY, subject));
    await ehr.create(bodyWeight(80, '2026-11-10T09:00:00Z', subject));
    await ehr.create(bloodPressure(118, 76, '2026-11-10T09:00:00Z', subject));

    const cards = await orderSignCall(ehrBase);
    expect(cards.filter((c) => c.indicator === 'critical').map((c) => c.summary)).toEqual([
      'Ketamine contraindicated: Pregnancy',
    ]);
    expect(seenByEhr).toContain('GET /fhir/Medication/ehr-ketamine');
    expect(seenByEhr).toContain('GET /fhir/Condition');
    // Operators see the EHR's requests apart from the configured server's: by type and status, never ids.
    const metrics = (await request(service.url).get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/kc_ehr_fhir_requests_total\{method="GET",type="Condition",status="200"\} [1-9]/);
    expect(metrics).toMatch(/kc_ehr_fhir_requests_total\{method="GET",type="Medication",status="200"\} 1/);
    expect(metrics).not.toContain('ehr-patient-1');
  });

  it('a fhirServer the deployment does not trust is never called: the configured server is read, as before', async () => {
    seenByEhr.length = 0;
    const untrusted = ehrBase.replace('127.0.0.1', 'localhost');
    const cards = await orderSignCall(untrusted);
    expect(seenByEhr).toEqual([]);
    // The Medication is on the EHR's server only: not found, so the check says it did not run.
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['warning', 'Medication not found: ketamine contraindication check did not run (1 order)'],
    ]);
  });
  it("the EHR's server down: a card says the check could not run, instead of no answer at all", async () => {
    ehrAnswers = 503;
    try {
      const cards = await orderSignCall(ehrBase, ketamineOrder('ehr-patient-1', 'ehr-draft-2'));
      expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
        ['warning', "Ketamine contraindication check could not run: the patient's records could not be read"],
      ]);
      expect(cards[0].detail).toContain("Check the patient's contraindications before signing.");
      // Its Medication unreadable too: the order naming one is said to be unchecked as well.
      const named = await orderSignCall(ehrBase);
      expect(named.map((c) => c.summary)).toEqual([
        'Medication not found: ketamine contraindication check did not run (1 order)',
      ]);
    } finally {
      ehrAnswers = undefined;
    }
  });

  // Since session 51; before, the check ran on the record alone and no card said so.
  it("the EHR's server refusing the Patient: the check runs on the record's data, and a card says its merged records were not followed", async () => {
    refusesPatients = true;
    try {
      const cards = await orderSignCall(ehrBase, ketamineOrder('ehr-patient-1', 'ehr-draft-4'));
      expect(cards.filter((c) => c.indicator === 'critical').map((c) => c.summary)).toEqual([
        'Ketamine contraindicated: Pregnancy',
      ]);
      const unchecked = cards.find((c) => c.summary.endsWith('could not run (data missing)'));
      expect(unchecked?.detail).toContain(
        "the patient's other records, if the EHR merged any: the FHIR server refused to give the Patient (HTTP 403), so only this record's data was checked",
      );
    } finally {
      refusesPatients = false;
    }
    // Given the Patient, no such card.
    const cards = await orderSignCall(ehrBase, ketamineOrder('ehr-patient-1', 'ehr-draft-5'));
    expect(cards.map((c) => c.summary).filter((s) => s.endsWith('could not run (data missing)'))).toEqual([]);
  });

  it("patient-view with the EHR's server refusing the Patient: a card says the patient's merged records were not read", async () => {
    const patientView = async () =>
      (await ehrCall('ketamine-follow-ups', 'patient-view', {})).map((c) => [c.indicator, c.summary, c.detail]);
    refusesPatients = true;
    try {
      expect(await patientView()).toContainEqual([
        'info',
        "Ketamine care plans: the patient's merged records were not read",
        expect.stringMatching(
          /^The FHIR server refused to give the Patient \(HTTP 403\), so records the EHR merged into this one were not followed/,
        ),
      ]);
    } finally {
      refusesPatients = false;
    }
    expect((await patientView()).map(([, summary]) => summary)).not.toContain(
      "Ketamine care plans: the patient's merged records were not read",
    );
  });

  it("appointment-book with the EHR's server refusing the Patient: a card says the patient's merged records were not checked", async () => {
    const appointment = (serviceType?: Appointment['serviceType']): Appointment => ({
      resourceType: 'Appointment',
      status: 'proposed',
      start: '2027-01-05T09:00:00Z',
      end: '2027-01-05T10:00:00Z',
      participant: [{ actor: { reference: 'Patient/ehr-patient-1' }, status: 'needs-action' }],
      ...(serviceType ? { serviceType } : {}),
    });
    const booking = async (a: Appointment) =>
      (
        await ehrCall('ketamine-session-booking', 'appointment-book', {
          appointments: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: a }] },
        })
      ).map((c) => [c.indicator, c.summary, c.detail]);
    const unread = [
      'info',
      "Ketamine care plans: the patient's merged records were not read",
      expect.stringMatching(
        /^The FHIR server refused to give the Patient \(HTTP 403\), so records the EHR merged into this one were not followed: their ketamine sessions and contraindications were not checked against this booking\./,
      ),
    ];
    refusesPatients = true;
    try {
      expect(await booking(appointment())).toContainEqual(unread);
      // An appointment of another service (its serviceType coded, none of the infusion codes): nothing to say.
      const dental = [{ coding: [{ system: 'http://snomed.info/sct', code: '34043003', display: 'Dental care' }] }];
      expect(await booking(appointment(dental))).toEqual([]);
    } finally {
      refusesPatients = false;
    }
    expect(await booking(appointment())).not.toContainEqual(unread);
  });

  it("the EHR's server slow: the card saying the check could not run comes while the EHR still waits", async () => {
    ehrHangs = [];
    try {
      // The EHR gives up after 5 s; without a budget its server's two 5-s attempts (per read) outlast that.
      const cards = await orderSignCall(ehrBase, ketamineOrder('ehr-patient-1', 'ehr-draft-3'), 5000);
      expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
        ['warning', "Ketamine contraindication check could not run: the patient's records could not be read"],
      ]);
      expect(cards[0].detail).toContain('the FHIR server did not answer in time');
      expect(ehrHangs.length).toBeGreaterThan(0);
      // Operators see it apart from a server that refuses (the test before this one: records_unreadable).
      const metrics = (await request(service.url).get('/metrics').expect(200)).text;
      expect(metrics).toMatch(
        /kc_cds_checks_not_run_total\{service="ketamine-order-check",reason="records_timeout"\} 1\b/,
      );
      expect(metrics).toMatch(
        /kc_cds_checks_not_run_total\{service="ketamine-order-check",reason="records_unreadable"\} [1-9]/,
      );
    } finally {
      for (const res of ehrHangs ?? []) res.destroy();
      ehrHangs = undefined;
    }
  });
});
