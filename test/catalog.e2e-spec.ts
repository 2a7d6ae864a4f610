import request from 'supertest';
import { startTestService, type TestService } from './support/test-service';

describe('protocol catalog', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  it('lists the three shipped protocols with their follow-up rules', async () => {
    const res = await request(service.url).get('/protocols').set(service.as('integration')).expect(200);
    expect(res.body.map((p: { id: string }) => p.id).sort()).toEqual([
      'ketamine-high-dose-as-needed',
      'ketamine-low-dose-series',
      'ketamine-monthly-maintenance',
    ]);
    const lowDose = res.body.find((p: { id: string }) => p.id === 'ketamine-low-dose-series');
    expect(lowDose.followUps.map((f: { id: string }) => f.id)).toEqual([
      'next-induction-session',
      'maintenance-booster',
      'post-infusion-check',
    ]);
  });

  it('serves one protocol as a PlanDefinition, and 404 for an unknown one', async () => {
    const res = await request(service.url)
      .get('/protocols/ketamine-monthly-maintenance')
      .set(service.as('clinician'))
      .expect(200);
    expect(res.body.resourceType).toBe('PlanDefinition');
    const missing = await request(service.url).get('/protocols/nope').set(service.as('clinician')).expect(404);
    expect(missing.body.resourceType).toBe('OperationOutcome');
  });

  it('requires a token', async () => {
    await request(service.url).get('/protocols').expect(401);
  });
});
