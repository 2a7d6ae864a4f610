import request from 'supertest';
import type { AuditEvent, CarePlan, Task } from '@medplum/fhirtypes';
import { AuditTrail } from '../apps/api/src/audit/audit-trail';
import { enrolPatient } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * Who saw which patient's data: every read or use of a patient's data through the API leaves an AuditEvent on the
 * FHIR server (BALP shapes), and so does every refused request; the clinic's plain work queue does not.
 */
describe('access audit (AuditEvent)', () => {
  let service: TestService;
  let enrolment: { patient: string; carePlanId: string };

  beforeAll(async () => {
    service = await startTestService();
    enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
  });
  afterAll(() => service.stop());

  /** Every AuditEvent written so far, once the trail has written what it holds. */
  async function auditEvents(): Promise<AuditEvent[]> {
    await service.app.get(AuditTrail).settled();
    return service.fhir.searchAll<AuditEvent>('AuditEvent', {});
  }

  /** The AuditEvents written while `act` ran (the trail written out before and after). */
  async function auditedBy(act: () => Promise<unknown>): Promise<AuditEvent[]> {
    const before = new Set((await auditEvents()).map((e) => e.id));
    await act();
    return (await auditEvents()).filter((e) => !before.has(e.id));
  }

  const patientsOf = (event: AuditEvent) =>
    (event.entity ?? []).filter((e) => e.role?.code === '1').map((e) => e.what?.reference);
  const queryOf = (event: AuditEvent) => {
    const query = event.entity?.find((e) => e.role?.code === '24')?.query;
    return query && Buffer.from(query, 'base64').toString('utf8');
  };

  it("a clinician opening a patient's timeline: a read of that patient, by the clinician, from their address", async () => {
    const patientId = enrolment.patient.split('/')[1];
    const [event, ...others] = await auditedBy(() =>
      request(service.url).get(`/patients/${patientId}/timeline`).set(service.as('clinician')).expect(200),
    );
    expect(others).toEqual([]);
    expect(event).toMatchObject({
      type: { code: 'rest' },
      subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
      action: 'R',
      outcome: '0',
      agent: [
        {
          who: { reference: 'Practitioner/dr-test', display: 'Dr Test' },
          altId: 'dr-test',
          requestor: true,
          network: { address: expect.stringMatching(/127\.0\.0\.1/), type: '2' },
        },
      ],
      source: { observer: { display: 'ketamine-careplans API' } },
    });
    expect(patientsOf(event)).toEqual([enrolment.patient]);
    expect(Date.now() - Date.parse(event.recorded)).toBeLessThan(60_000);
  });

  it('an EHR searching and reading care plans: the patients whose data it got, and what it asked', async () => {
    const [search] = await auditedBy(() =>
      request(service.url)
        .get('/fhir/CarePlan')
        .query({ subject: enrolment.patient })
        .set(service.as('integration'))
        .expect(200),
    );
    expect(search).toMatchObject({ action: 'E', subtype: [{ code: 'search-type' }], outcome: '0' });
    expect(search.agent[0].who).toEqual({ identifier: { value: 'ehr-test' } });
    expect(patientsOf(search)).toEqual([enrolment.patient]);
    expect(queryOf(search)).toBe(`GET /fhir/CarePlan?subject=${encodeURIComponent(enrolment.patient)}`);

    // A search naming no patient still names those whose care plans it returned.
    const [all] = await auditedBy(() =>
      request(service.url).get('/fhir/CarePlan').query({ _count: 50 }).set(service.as('integration')).expect(200),
    );
    const stored = await service.fhir.searchAll<CarePlan>('CarePlan', {});
    expect(new Set(patientsOf(all))).toEqual(new Set(stored.map((c) => c.subject?.reference)));

    const [task] = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const [read] = await auditedBy(() =>
      request(service.url).get(`/fhir/Task/${task.id}`).set(service.as('integration')).expect(200),
    );
    expect(read).toMatchObject({ action: 'R', subtype: [{ code: 'read' }] });
    expect(read.entity?.find((e) => e.role?.code === '4')?.what).toEqual({ reference: `Task/${task.id}` });
    expect(patientsOf(read)).toEqual([enrolment.patient]);
  });

  it("the worklist filtered to a patient is audited; the clinic's whole work queue is not", async () => {
    const [filtered] = await auditedBy(() =>
      request(service.url)
        .get('/worklist')
        .query({ patient: enrolment.patient })
        .set(service.as('clinician'))
        .expect(200),
    );
    expect(patientsOf(filtered)).toEqual([enrolment.patient]);
    // The page's search by name: the patients whose Tasks it showed, and the name asked for.
    const [byName] = await auditedBy(() =>
      request(service.url).get('/worklist/view').query({ name: 'Enrolled' }).set(service.as('clinician')).expect(200),
    );
    expect(patientsOf(byName)).toContain(enrolment.patient);
    expect(queryOf(byName)).toBe('GET /worklist/view?name=Enrolled');
    expect(
      await auditedBy(() => request(service.url).get('/worklist').set(service.as('clinician')).expect(200)),
    ).toEqual([]);
    // The to-do list the same way (session 22).
    const [toDo] = await auditedBy(() =>
      request(service.url).get('/to-do').query({ patient: enrolment.patient }).set(service.as('clinician')).expect(200),
    );
    expect(patientsOf(toDo)).toEqual([enrolment.patient]);
    expect(
      await auditedBy(() => request(service.url).get('/to-do/view').set(service.as('clinician')).expect(200)),
    ).toEqual([]);
  });

  it('$apply: the patient whose data the protocol was applied to', async () => {
    const other = await auditedBy(() => enrolPatient(service, 'ketamine-low-dose-series'));
    const applied = other.filter((e) => e.subtype?.[0]?.code === 'operation');
    expect(applied).toHaveLength(1);
    expect(applied[0].agent[0].who?.reference).toBe('Practitioner/dr-test');
    expect(patientsOf(applied[0])).toHaveLength(1);
    expect(queryOf(applied[0])).toMatch(/^POST \/fhir\/PlanDefinition\/ketamine-low-dose-series\/\$apply$/);
  });

  it('administrators read the audit trail through the API (AuditEvent?entity=Patient/x); nobody else does', async () => {
    const patientId = enrolment.patient.split('/')[1];
    await request(service.url).get(`/patients/${patientId}/timeline`).set(service.as('clinician')).expect(200);
    await service.app.get(AuditTrail).settled();
    const trail = await request(service.url)
      .get('/fhir/AuditEvent')
      .query({ entity: enrolment.patient, _count: 100 })
      .set(service.as('admin'))
      .expect(200);
    const events = (trail.body as { entry: { resource: AuditEvent }[] }).entry.map((e) => e.resource);
    expect(events.some((e) => e.action === 'R' && e.agent[0].who?.reference === 'Practitioner/dr-test')).toBe(true);
    // Reading the trail about a patient is itself recorded as reading about that patient.
    const mine = (await auditEvents()).filter((e) => queryOf(e)?.startsWith('GET /fhir/AuditEvent?'));
    expect(mine.map((e) => [e.agent[0].altId, patientsOf(e)])).toContainEqual(['admin-test', [enrolment.patient]]);
    for (const role of ['clinician', 'integration'] as const)
      await request(service.url)
        .get('/fhir/AuditEvent')
        .query({ entity: enrolment.patient })
        .set(service.as(role))
        .expect(403);
  });

  it('refused requests leave one AuditEvent each: no token (who unknown), and a token without the role', async () => {
    const patientId = enrolment.patient.split('/')[1];
    const [noToken] = await auditedBy(() => request(service.url).get(`/patients/${patientId}/timeline`).expect(401));
    expect(noToken).toMatchObject({
      outcome: '4',
      outcomeDesc: 'HTTP 401',
      agent: [{ who: { display: 'unauthenticated caller' } }],
    });
    expect(queryOf(noToken)).toBe(`GET /patients/${patientId}/timeline`);

    const refused = await auditedBy(() =>
      request(service.url).get(`/patients/${patientId}/timeline`).set(service.as('integration')).expect(403),
    );
    // Refused before the route ran (the guard): recorded once, by what was asked.
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ outcome: '4', outcomeDesc: 'HTTP 403', agent: [{ altId: 'ehr-test' }] });
  });
});
