import request from 'supertest';
import { startTestService, type TestService } from './support/test-service';

describe('operator endpoints', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  it('the queue dashboard asks for credentials, refuses non-admins, and serves admins (token as basic-auth password)', async () => {
    const anonymous = await request(service.url).get('/operations/queues').expect(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic/);
    await request(service.url).get('/operations/queues').set(service.as('clinician')).expect(403);
    const page = await request(service.url).get('/operations/queues').auth('admin', service.tokens.admin).expect(200);
    expect(page.text).toMatch(/<html/i);
    const api = await request(service.url)
      .get('/operations/queues/api/queues')
      .auth('admin', service.tokens.admin)
      .expect(200);
    expect(api.body.queues.map((q: { name: string }) => q.name).sort()).toEqual([
      'exports',
      'followups',
      'maintenance',
      'outcomes',
      'reminders',
    ]);
  });

  it("metrics show the embedded store's size and commits, read when scraped", async () => {
    const gauge = async (name: string) => {
      const { text } = await request(service.url).get('/metrics').expect(200);
      return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    };
    expect(await gauge('kc_fhir_store_database_bytes')).toBeGreaterThan(0);
    const commits = await gauge('kc_fhir_store_commits_total');
    await service.fhir.create({ resourceType: 'Patient' });
    expect(await gauge('kc_fhir_store_commits_total')).toBeGreaterThan(commits);
    const indexed = await gauge('kc_fhir_store_indexed_parameters');
    // A parameter nobody searched before is indexed from its first search on.
    await service.fhir.search('Patient', { gender: 'other' });
    expect(await gauge('kc_fhir_store_indexed_parameters')).toBe(indexed + 1);
  });

  it('metrics need no token and carry no patient data', async () => {
    const res = await request(service.url).get('/metrics').expect(200);
    expect(res.text).toContain('kc_queue_jobs');
    expect(res.text).not.toMatch(/Patient\//);
  });
});
