import request from 'supertest';
import { Registry } from 'prom-client';
import { validateResource } from '@medplum/core';
import type {
  CarePlan,
  DetectedIssue,
  MedicationRequest,
  OperationOutcome,
  Parameters,
  Patient,
  PlanDefinition,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { ProfilePublisher } from '../apps/api/src/protocols/profile-publisher';
import { startTestService, type TestService } from './support/test-service';
import { mergedIntoNewRecord, requestsBesidesAudit } from './support/clinic';
import {
  activeCondition,
  bloodPressure,
  bodyWeight,
  createsOf,
  FIBROMYALGIA,
  PREGNANCY,
} from './fixtures/patient-data';

const DAY_MS = 86_400_000;
/** Dates relative to today: the engine dates nothing before now, and looks back from now for observations. */
const daysFromToday = (days: number) => new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS + days * DAY_MS);
const dateFromToday = (days: number) => daysFromToday(days).toISOString().slice(0, 10);
/** The series starts in a week (a start already past would be moved to now). */
const START_DATE = dateFromToday(7);

/** A patient on the FHIR server with the history a clinic would have on record. */
async function createPatient(
  service: TestService,
  history: { weightKg?: number; bp?: [number, number]; conditions?: (readonly [string, string])[] },
) {
  const { resource: patient } = await service.fhir.create<Patient>({
    resourceType: 'Patient',
    name: [{ family: 'Test', given: ['Pat'] }],
    birthDate: '1980-04-02',
  });
  const ref = `Patient/${patient.id}`;
  if (history.weightKg !== undefined)
    await service.fhir.create(bodyWeight(history.weightKg, `${dateFromToday(-30)}T09:00:00Z`, ref));
  if (history.bp) {
    await service.fhir.create(bloodPressure(120, 70, `${dateFromToday(-330)}T09:00:00Z`, ref)); // older, normal: the latest must win
    await service.fhir.create(bloodPressure(history.bp[0], history.bp[1], `${dateFromToday(-21)}T09:00:00Z`, ref));
  }
  for (const [code, display] of history.conditions ?? [])
    await service.fhir.create(activeCondition(code, display, ref));
  return ref;
}

function applyParams(subject: string, extra: Parameters['parameter'] = []): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'subject', valueReference: { reference: subject } },
      { name: 'startDate', valueDate: START_DATE },
      // Every part as its own parameter; the default answer (the CarePlan itself) is tested below.
      { name: 'output', valueCode: 'parameters' },
      ...extra,
    ],
  };
}

function part<T extends Resource>(out: Parameters, name: string): T[] {
  return (out.parameter ?? []).filter((p) => p.name === name).map((p) => p.resource as T);
}

function taskFor(out: Parameters, actionId: string): Task {
  return part<Task>(out, 'task').find((t) =>
    t.extension?.some((e) => e.url.endsWith('protocol-action') && e.valueString === actionId),
  )!;
}

/** FHIR requests the service sent so far (its metric), besides the access audit's own writes (batched in the background). */
const fhirRequests = (service: TestService) =>
  requestsBesidesAudit(service, async () =>
    ((await service.app.get(Registry).getSingleMetric('kc_fhir_requests_total')?.get())?.values ?? []).reduce(
      (sum, v) => sum + v.value,
      0,
    ),
  );

describe('PlanDefinition/$apply over HTTP against the embedded FHIR server', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  it('low-dose series for an eligible 80 kg patient: dated tasks and a 40 mg/h start rate', async () => {
    const subject = await createPatient(service, { weightKg: 80, bp: [132, 84], conditions: [FIBROMYALGIA] });
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(service.as('clinician'))
      .send(applyParams(subject))
      .expect(200);
    const out = res.body as Parameters;
    const carePlan = part<CarePlan>(out, 'return')[0];
    expect(carePlan).toMatchObject({
      resourceType: 'CarePlan',
      status: 'draft',
      intent: 'plan',
      subject: { reference: subject },
    });
    expect(carePlan.instantiatesCanonical?.[0]).toMatch(/PlanDefinition\/ketamine-low-dose-series\|1\.0\.0$/);
    expect(out.parameter?.find((p) => p.name === 'eligible')?.valueBoolean).toBe(true);
    expect(taskFor(out, 'patient-instructions').restriction?.period?.start).toBe(daysFromToday(7).toISOString());
    // From the day after the start for two weeks.
    expect(taskFor(out, 'infusion-session').restriction?.period).toEqual({
      start: daysFromToday(8).toISOString(),
      end: daysFromToday(21).toISOString(),
    });
    const infusion = part<MedicationRequest>(out, 'request').find((r) => r.resourceType === 'MedicationRequest')!;
    expect(infusion.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity).toMatchObject({ value: 40, unit: 'mg/h' });
    expect(part(out, 'detectedIssue')).toHaveLength(0);
    // Not persisted: nothing new on the server.
    expect(await service.fhir.searchAll('CarePlan', { subject })).toHaveLength(0);
  });

  it('round trips to the FHIR server: 1 to read (the Patient and every input in one batch), 3 more to persist', async () => {
    const subject = await createPatient(service, { weightKg: 80, bp: [132, 84], conditions: [FIBROMYALGIA] });
    const apply = (extra: Parameters['parameter'] = []) =>
      request(service.url)
        .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
        .set(service.as('clinician'))
        .send(applyParams(subject, extra))
        .expect(200);
    let before = await fhirRequests(service);
    await apply();
    expect((await fhirRequests(service)) - before).toBe(1);
    before = await fhirRequests(service);
    await apply([{ name: 'persist', valueBoolean: true }]);
    // the read batch, the batch looking up the plan's keys, the transaction, the batch reading the plan back
    expect((await fhirRequests(service)) - before).toBe(4);
  });

  // Since session 50; before, 4: the guard's deceased check read the linked records again.
  it('for a record another was merged into, 3 reads: the record alone, the record it links, the data under both', async () => {
    const old = await createPatient(service, { weightKg: 80, bp: [132, 84], conditions: [FIBROMYALGIA] });
    const kept = await mergedIntoNewRecord(service, old);
    const before = await fhirRequests(service);
    const out = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(service.as('clinician'))
      .send(applyParams(kept))
      .expect(200);
    // Eligible on the weight and blood pressure recorded under the record merged away.
    expect((out.body as Parameters).parameter?.find((p) => p.name === 'eligible')?.valueBoolean).toBe(true);
    expect((await fhirRequests(service)) - before).toBe(3);
  });

  it('eight patients enrolled at once share their requests (4 each alone), and each plan is written whole, once', async () => {
    const subjects = await Promise.all(
      Array.from({ length: 8 }, () => createPatient(service, { weightKg: 70, bp: [120, 80] })),
    );
    const before = await fhirRequests(service);
    await Promise.all(
      subjects.map((subject) =>
        request(service.url)
          .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
          .set(service.as('clinician'))
          .send(applyParams(subject, [{ name: 'persist', valueBoolean: true }]))
          .expect(200),
      ),
    );
    expect((await fhirRequests(service)) - before).toBeLessThan(4 * 8);
    for (const subject of subjects) {
      const carePlans = await service.fhir.searchAll<CarePlan>('CarePlan', { subject });
      expect(carePlans).toHaveLength(1);
      const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlans[0].id}` });
      expect(tasks.length).toBeGreaterThan(0);
      expect(tasks.every((t) => t.for?.reference === subject)).toBe(true);
    }
  });

  it('type-level $apply with the canonical URL, for the CRPS protocol (1 mg/kg/h)', async () => {
    const subject = await createPatient(service, { weightKg: 55, bp: [118, 76] });
    const params = applyParams(subject, [
      {
        name: 'planDefinition',
        valueCanonical: 'https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-high-dose-as-needed',
      },
    ]);
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(params)
      .expect(200);
    const infusion = part<MedicationRequest>(res.body, 'request').find((r) => r.resourceType === 'MedicationRequest')!;
    expect(infusion.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value).toBe(55);
  });

  it('type-level $apply of a plan an EHR posted finds exactly its url, not one that extends it', async () => {
    const base = 'https://ehr.example/fhir/PlanDefinition/phone-follow-up';
    const plan = (url: string, version: string, title: string) =>
      service.fhir.create<PlanDefinition>({
        resourceType: 'PlanDefinition',
        status: 'active',
        url,
        version,
        title,
        action: [{ id: 'call', title }],
      });
    await plan(base, '1.0.0', 'Call the patient');
    // Its url contains the first one's, and its version sorts after it.
    await plan(`${base}-extended`, '2.0.0', 'Call the patient twice');
    const subject = await createPatient(service, { weightKg: 70, bp: [118, 76] });
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send(applyParams(subject, [{ name: 'planDefinition', valueCanonical: base }]))
      .expect(200);
    expect(part<CarePlan>(res.body, 'return')[0].instantiatesCanonical).toEqual([`${base}|1.0.0`]);
  });

  it('monthly maintenance, contraindicated by the latest blood pressure: DetectedIssue, plan stays draft', async () => {
    const subject = await createPatient(service, { weightKg: 70, bp: [184, 100] });
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-monthly-maintenance/$apply')
      .set(service.as('clinician'))
      .send(applyParams(subject))
      .expect(200);
    const issues = part<DetectedIssue>(res.body, 'detectedIssue');
    expect(issues.map((i) => i.code?.coding?.[0].code)).toEqual(['uncontrolled-hypertension']);
    expect(res.body.parameter.find((p: { name: string }) => p.name === 'eligible').valueBoolean).toBe(false);
  });

  /** The contraindications `$apply` of the low-dose series finds for the subject, and the orders it proposes. */
  async function lowDoseFindings(subject: string): Promise<{ issues: string[]; orders: MedicationRequest[] }> {
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(service.as('clinician'))
      .send(applyParams(subject))
      .expect(200);
    const out = res.body as Parameters;
    return {
      issues: part<DetectedIssue>(out, 'detectedIssue').map((i) => i.code?.coding?.[0].code ?? ''),
      orders: part<MedicationRequest>(out, 'request').filter((r) => r.resourceType === 'MedicationRequest'),
    };
  }

  it('a pregnant patient is flagged', async () => {
    const subject = await createPatient(service, { weightKg: 64, bp: [110, 70], conditions: [PREGNANCY] });
    expect((await lowDoseFindings(subject)).issues).toEqual(['pregnancy']);
  });

  it('a pregnancy recorded after 1,000 other conditions is still found: every condition is read, page after page', async () => {
    // The protocols read the patient's Conditions without a limit. A server answers a search a page at a time (at
    // most 1,000 on Medplum's, 20 without _count), so the loader follows the next links: with the first page alone
    // (or with the former `limit` of 200), this patient was eligible and got an infusion order.
    const subject = await createPatient(service, { weightKg: 64, bp: [110, 70] });
    await service.fhir.transaction(
      createsOf(Array.from({ length: 1000 }, () => activeCondition(...FIBROMYALGIA, subject))),
    );
    await service.fhir.create(activeCondition(...PREGNANCY, subject));
    expect(await lowDoseFindings(subject)).toEqual({ issues: ['pregnancy'], orders: [] });
  });

  it('no weight on record: proposed without a dose, with a warning the clinician sees', async () => {
    const subject = await createPatient(service, { bp: [120, 80] });
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(service.as('clinician'))
      .send(applyParams(subject))
      .expect(200);
    const infusion = part<MedicationRequest>(res.body, 'request').find((r) => r.resourceType === 'MedicationRequest')!;
    expect(infusion.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value).toBeUndefined();
    const outcome = part<OperationOutcome>(res.body, 'outcome')[0];
    expect(outcome.issue.some((i) => i.severity === 'warning' && /body weight/.test(i.details?.text ?? ''))).toBe(true);
  });

  it('persist=true writes CarePlan, RequestGroup, requests and Tasks once, even when applied twice', async () => {
    const subject = await createPatient(service, { weightKg: 90, bp: [125, 80] });
    const params = applyParams(subject, [{ name: 'persist', valueBoolean: true }]);
    const first = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(service.as('clinician'))
      .send(params)
      .expect(200);
    const second = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(service.as('clinician'))
      .send(params)
      .expect(200);
    const carePlanId = part<CarePlan>(first.body, 'return')[0].id;
    expect(carePlanId).toBeDefined();
    expect(part<CarePlan>(second.body, 'return')[0].id).toBe(carePlanId);
    // The second answer names the same stored resources in the same places (each found by its own key).
    expect(storedRefs(second.body)).toEqual(storedRefs(first.body));
    expect(storedRefs(first.body).filter((r) => r.startsWith('Task/'))).toHaveLength(2);
    expect(await service.fhir.searchAll('CarePlan', { subject })).toHaveLength(1);
    const tasks = await service.fhir.searchAll<Task>('Task', { patient: subject });
    expect(tasks).toHaveLength(2);
    expect(tasks.every((t) => t.basedOn?.[0].reference === `CarePlan/${carePlanId}`)).toBe(true);
    expect(tasks.every((t) => t.businessStatus?.coding?.[0].code === 'awaiting-approval' && t.status === 'draft')).toBe(
      true,
    );
    expect(await service.fhir.searchAll('MedicationRequest', { subject })).toHaveLength(1);
  });

  it('a second enrolment on the same protocol while the first plan holds care is refused (409), naming it; once that plan is stopped, or on another protocol, it is not', async () => {
    const subject = await createPatient(service, { weightKg: 90, bp: [125, 80] });
    const enrol = (protocol: string, startDate: string) =>
      request(service.url)
        .post(`/fhir/PlanDefinition/${protocol}/$apply`)
        .set(service.as('clinician'))
        .send({
          resourceType: 'Parameters',
          parameter: [
            { name: 'subject', valueReference: { reference: subject } },
            { name: 'startDate', valueDate: startDate },
            { name: 'persist', valueBoolean: true },
          ],
        });
    const first = (await enrol('ketamine-low-dose-series', START_DATE).expect(200)).body as CarePlan;
    // Another start date: another plan of the same protocol, two sessions proposed at once. Before session 44, written.
    const refused = await enrol('ketamine-low-dose-series', dateFromToday(9)).expect(409);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(
      new RegExp(`^The patient is already enrolled on .+ \\(CarePlan/${first.id}, draft`),
    );
    expect(await service.fhir.searchAll('CarePlan', { subject })).toHaveLength(1);
    // The same enrolment sent again is the same plan.
    expect(((await enrol('ketamine-low-dose-series', START_DATE).expect(200)).body as CarePlan).id).toBe(first.id);
    // Another protocol is the clinic's call; the first plan stopped, the same protocol again too.
    await enrol('ketamine-monthly-maintenance', START_DATE).expect(200);
    const stored = await service.fhir.read<CarePlan>('CarePlan', first.id!);
    await service.fhir.update<CarePlan>({ ...stored, status: 'revoked' });
    await enrol('ketamine-low-dose-series', dateFromToday(9)).expect(200);
  });

  it('the protocols are published to the FHIR server by canonical url + version', async () => {
    const plans = await service.fhir.searchAll('PlanDefinition', {
      url: 'https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series',
    });
    expect(plans).toHaveLength(1);
  });

  it("republishing the protocols leaves alone an EHR's PlanDefinition whose url extends a protocol's", async () => {
    const url = 'https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-monthly-maintenance';
    const sandbox = service.config.fhirBaseUrl!;
    // A server where the EHR's plan is the only one whose url contains the protocol's (the protocol not yet there).
    expect((await fetch(`${sandbox}/PlanDefinition/ketamine-monthly-maintenance`, { method: 'DELETE' })).status).toBe(
      200,
    );
    const { resource: local } = await service.fhir.create<PlanDefinition>({
      resourceType: 'PlanDefinition',
      status: 'active',
      url: `${url}-local`,
      version: '1.0.0',
      title: 'Our local maintenance plan',
    });
    await service.app.get(ProfilePublisher).publishAll();
    const ehrPlan = await service.fhir.read<PlanDefinition>('PlanDefinition', local.id!);
    expect({ url: ehrPlan.url, title: ehrPlan.title }).toEqual({
      url: `${url}-local`,
      title: 'Our local maintenance plan',
    });
    expect((await service.fhir.read<PlanDefinition>('PlanDefinition', 'ketamine-monthly-maintenance')).url).toBe(url);
  });

  describe('bad input gets a 4xx OperationOutcome', () => {
    const url = '/fhir/PlanDefinition/ketamine-low-dose-series/$apply';
    const cases: [string, () => request.Test, number][] = [
      [
        'malformed JSON',
        () =>
          request(service.url)
            .post(url)
            .set(service.as('clinician'))
            .set('content-type', 'application/fhir+json')
            .send('{"resourceType": "Param'),
        400,
      ],
      [
        'not a Parameters resource',
        () => request(service.url).post(url).set(service.as('clinician')).send({ resourceType: 'Patient' }),
        400,
      ],
      ['an array body', () => request(service.url).post(url).set(service.as('clinician')).send([1, 2]), 400],
      [
        'missing subject',
        () =>
          request(service.url)
            .post(url)
            .set(service.as('clinician'))
            .send({ resourceType: 'Parameters', parameter: [] }),
        400,
      ],
      [
        'subject not a Patient',
        () => request(service.url).post(url).set(service.as('clinician')).send(applyParams('Practitioner/1')),
        400,
      ],
      [
        'unknown patient',
        () => request(service.url).post(url).set(service.as('clinician')).send(applyParams('Patient/nobody-here')),
        404,
      ],
      [
        'bad startDate',
        () =>
          request(service.url)
            .post(url)
            .set(service.as('clinician'))
            .send({
              resourceType: 'Parameters',
              parameter: [
                { name: 'subject', valueString: 'Patient/x' },
                { name: 'startDate', valueDate: 'soon' },
              ],
            }),
        400,
      ],
      [
        'unknown protocol',
        () =>
          request(service.url)
            .post('/fhir/PlanDefinition/ketamine-forever/$apply')
            .set(service.as('clinician'))
            .send(applyParams('Patient/x')),
        404,
      ],
      ['no token', () => request(service.url).post(url).send(applyParams('Patient/x')), 401],
    ];
    it.each(cases)('%s', async (_name, send, status) => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.body.resourceType).toBe('OperationOutcome');
    });
  });

  describe('the R4 answer: the CarePlan itself', () => {
    const carePlanParams = (subject: string, persist: boolean): Parameters => ({
      resourceType: 'Parameters',
      parameter: [
        { name: 'subject', valueReference: { reference: subject } },
        { name: 'startDate', valueDate: START_DATE },
        { name: 'persist', valueBoolean: persist },
      ],
    });

    it('transient: RequestGroup, requests, Tasks and warnings contained, local references resolve, valid R4', async () => {
      const subject = await createPatient(service, { bp: [120, 80] });
      const res = await request(service.url)
        .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
        .set(service.as('clinician'))
        .send(carePlanParams(subject, false))
        .expect(200);
      const carePlan = res.body as CarePlan;
      expect(carePlan.resourceType).toBe('CarePlan');
      expect(() => validateResource(carePlan)).not.toThrow();
      const contained = new Map((carePlan.contained ?? []).map((r) => [`#${r.id}`, r]));
      const tasks = carePlan.activity!.map((a) => contained.get(a.reference!.reference!) as Task);
      expect(tasks.map((t) => t.resourceType)).toEqual(['Task', 'Task']);
      const infusion = tasks.find((t) => contained.get(t.focus!.reference!)?.resourceType === 'MedicationRequest')!;
      expect(contained.get(infusion.focus!.reference!)).toMatchObject({
        resourceType: 'MedicationRequest',
        intent: 'proposal',
      });
      expect(infusion.basedOn!.map((b) => b.reference)).toEqual(['#', expect.stringMatching(/^#requestgroup-/)]);
      const outcome = contained.get('#outcome') as OperationOutcome;
      expect(outcome.issue.some((i) => /body weight/.test(i.details?.text ?? ''))).toBe(true);
      expect(JSON.stringify(carePlan)).not.toContain('urn:uuid');
    });

    it('persisted: the stored CarePlan, referencing the stored Tasks', async () => {
      const subject = await createPatient(service, { weightKg: 70, bp: [120, 80] });
      const res = await request(service.url)
        .get('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
        .query({ subject, startDate: START_DATE, persist: 'true' })
        .set(service.as('clinician'))
        .expect(200);
      const carePlan = res.body as CarePlan;
      expect(carePlan.id).toBeDefined();
      const stored = await service.fhir.read<CarePlan>('CarePlan', carePlan.id!);
      expect(carePlan.activity).toEqual(stored.activity);
      for (const activity of stored.activity!) {
        expect(activity.reference!.reference).toMatch(/^Task\//);
        await service.fhir.read<Task>('Task', activity.reference!.reference!.split('/')[1]);
      }
    });
  });
});

/** Every `Type/id` reference and stored resource in an answer, in document order. */
function storedRefs(body: unknown): string[] {
  const refs: string[] = [];
  JSON.stringify(body, (key, value: unknown) => {
    if (key === 'reference' && typeof value === 'string' && /^[A-Z][A-Za-z]+\/[^/]+$/.test(value)) refs.push(value);
    return value;
  });
  return refs;
}
