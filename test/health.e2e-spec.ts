import request from 'supertest';
import { startTestService, type TestService } from './support/test-service';

describe('health', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  it('reports Redis and the FHIR server up, without a token', async () => {
    const res = await request(service.url).get('/health').expect(200);
    expect(res.body.checks.redis.status).toBe('up');
    expect(res.body.checks.fhir.status).toBe('up');
  });

  it('reports degraded with 503 when the FHIR server is gone', async () => {
    await service.sandbox!.close();
    const res = await request(service.url).get('/health/ready').expect(503);
    expect(res.body.checks.fhir.status).toBe('down');
    expect(res.body.checks.redis.status).toBe('up');
  });

  it('serves the OpenAPI document', async () => {
    const res = await request(service.url).get('/docs-json').expect(200);
    expect(res.body.info.title).toBe('ketamine-careplans');
  });
});
