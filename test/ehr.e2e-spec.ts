import request from 'supertest';
import type { Bundle, CapabilityStatement, CarePlan, PlanDefinition } from '@medplum/fhirtypes';
import { enrolPatient, writeEhrTasks } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

describe('EHR read API', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  it("an EHR pulls a patient's care plans and tasks with ordinary FHIR search, paging through this API", async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const plans = await request(service.url)
      .get('/fhir/CarePlan')
      .query({ patient: enrolment.patient })
      .set(service.as('integration'))
      .expect(200);
    expect((plans.body as Bundle).type).toBe('searchset');
    expect(plans.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([enrolment.carePlanId]);

    const firstPage = await request(service.url)
      .get('/fhir/Task')
      .query({ patient: enrolment.patient, _count: 1 })
      .set(service.as('integration'))
      .expect(200);
    expect(firstPage.body.entry).toHaveLength(1);
    const next = (firstPage.body as Bundle).link!.find((l) => l.relation === 'next')!.url;
    expect(next.startsWith(`${service.url}/fhir/Task?`)).toBe(true);
    const secondPage = await request(service.url)
      .get(next.slice(service.url.length))
      .set(service.as('integration'))
      .expect(200);
    expect(secondPage.body.entry[0].resource.id).not.toBe(firstPage.body.entry[0].resource.id);
    // A partial page carries no total unless asked (as from Medplum); with _total=accurate it counts every Task.
    expect(firstPage.body.total).toBeUndefined();
    const all = await request(service.url)
      .get('/fhir/Task')
      .query({ patient: enrolment.patient, _count: 100 })
      .set(service.as('integration'))
      .expect(200);
    const counted = await request(service.url)
      .get('/fhir/Task')
      .query({ patient: enrolment.patient, _count: 1, _total: 'accurate' })
      .set(service.as('integration'))
      .expect(200);
    expect(all.body.entry.length).toBeGreaterThan(1);
    expect(counted.body.total).toBe(all.body.entry.length);
    expect(all.body.total).toBe(all.body.entry.length);

    const read = await request(service.url)
      .get(`/fhir/CarePlan/${enrolment.carePlanId}`)
      .set(service.as('clinician'))
      .expect(200);
    expect(read.body.resourceType).toBe('CarePlan');
  });

  it('an EHR syncing by _lastUpdated follows cursor links through this API to the last Task, each once', async () => {
    const patient = `Patient/sync-${Date.now()}`;
    await writeEhrTasks(service.fhir, patient, 45);
    const ids: string[] = [];
    let next: string | undefined = `/fhir/Task?patient=${patient}&_sort=_lastUpdated&_count=20`;
    const links: string[] = [];
    while (next) {
      const page: { body: Bundle } = await request(service.url).get(next).set(service.as('integration')).expect(200);
      ids.push(...(page.body.entry ?? []).map((e) => e.resource!.id!));
      const url = page.body.link?.find((l) => l.relation === 'next')?.url;
      next = url ? url.slice(service.url.length) : undefined;
      if (url) links.push(url);
    }
    const stored = await service.fhir.searchAll('Task', { patient, _count: 100 });
    expect(ids).toHaveLength(45);
    expect(new Set(ids)).toEqual(new Set(stored.map((t) => t.id)));
    // Medplum's server pages a _lastUpdated sort by cursor, as the embedded store does: no _offset to outgrow.
    expect(links).toHaveLength(2);
    for (const link of links) expect(link).toMatch(/^http:\/\/[^/]+\/fhir\/Task\?.*_cursor=2-\d+/);
  });

  it('an EHR resolves what a CarePlan instantiates through this API: its PlanDefinition by canonical, exactly', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const carePlan = (
      await request(service.url)
        .get(`/fhir/CarePlan/${enrolment.carePlanId}`)
        .set(service.as('integration'))
        .expect(200)
    ).body as CarePlan;
    const [url, version] = carePlan.instantiatesCanonical![0].split('|');
    // A definition whose url only begins with it (the embedded store, as Medplum's matcher, finds it by `url`).
    await service.fhir.create<PlanDefinition>({
      resourceType: 'PlanDefinition',
      url: `${url}-copy`,
      version,
      status: 'draft',
    });
    const found = await request(service.url)
      .get('/fhir/PlanDefinition')
      .query({ url, version })
      .set(service.as('integration'))
      .expect(200);
    expect((found.body as Bundle).entry!.map((e) => [e.resource!.id, (e.resource as PlanDefinition).url])).toEqual([
      ['ketamine-low-dose-series', url],
    ]);
    await request(service.url)
      .get('/fhir/PlanDefinition/ketamine-low-dose-series')
      .set(service.as('clinician'))
      .expect(200);
    // The check's Questionnaire and the infusion's ActivityDefinition alike; and what the resources read here conform
    // to: the profiles the CapabilityStatement lists, their ValueSets, the service's codes (since session 59).
    for (const [type, canonical] of [
      ['Questionnaire', 'https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check'],
      ['ActivityDefinition', 'https://ketamine-careplans.example/fhir/ActivityDefinition/ketamine-low-dose-infusion'],
      ['StructureDefinition', 'https://ketamine-careplans.example/fhir/StructureDefinition/planned-task'],
      ['ValueSet', 'https://ketamine-careplans.example/fhir/ValueSet/task-state'],
      ['CodeSystem', 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans'],
    ]) {
      const res = await request(service.url)
        .get(`/fhir/${type}`)
        .query({ url: canonical })
        .set(service.as('integration'))
        .expect(200);
      expect((res.body as Bundle).entry!.map((e) => e.resource!.resourceType)).toEqual([type]);
    }
  });

  it('refuses other types, unknown parameters and odd values with a 400 OperationOutcome', async () => {
    for (const path of [
      '/fhir/Patient',
      '/fhir/Task?name=smith',
      '/fhir/Task?patient=x%27%20OR%201=1',
      '/fhir/Task?_count=100000',
      '/fhir/Task?patient=a&patient=b',
    ]) {
      const res = await request(service.url).get(path).set(service.as('integration'));
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
    await request(service.url).get('/fhir/Task/does-not-exist').set(service.as('integration')).expect(404);
    await request(service.url).get('/fhir/Task').expect(401);
  });

  it('publishes a CapabilityStatement describing this API, including $apply', async () => {
    const res = await request(service.url).get('/fhir/metadata').expect(200);
    const statement = res.body as CapabilityStatement;
    expect(statement.resourceType).toBe('CapabilityStatement');
    const types = statement.rest![0].resource!.map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(['CarePlan', 'Task', 'PlanDefinition']));
    // PlanDefinition once: read and searched by url (a uri), and $apply.
    const planDefinitions = statement.rest![0].resource!.filter((r) => r.type === 'PlanDefinition');
    expect(planDefinitions).toHaveLength(1);
    expect(planDefinitions[0].operation![0].name).toBe('apply');
    expect(planDefinitions[0].searchParam).toContainEqual({ name: 'url', type: 'uri' });
    // The profiles of what it writes (fhir-profiles/, docs/guide/profiles.md), on the types it serves.
    const profilesOf = (type: string) => statement.rest![0].resource!.find((r) => r.type === type)?.supportedProfile;
    const base = 'https://ketamine-careplans.example/fhir/StructureDefinition';
    expect(profilesOf('Task')).toEqual([`${base}/planned-task|1.0.0`]);
    expect(profilesOf('CarePlan')).toEqual([`${base}/protocol-care-plan|1.0.0`]);
    expect(profilesOf('MedicationRequest')).toEqual([`${base}/planned-medication-request|1.0.0`]);
    expect(profilesOf('DetectedIssue')).toEqual([`${base}/clinical-issue|1.0.0`]);
  });
});
