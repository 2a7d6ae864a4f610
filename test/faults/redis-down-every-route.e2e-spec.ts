import request from 'supertest';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { concretePath, registeredRoutes } from '../support/routes';
import { startTestService, type TestService } from '../support/test-service';

/**
 * Redis down, every route the app registers called once (as admin, which every role check lets through): none
 * hangs and none answers 500. Found this way in session 14: the worklist view, the dead letters and their retry
 * waited for Redis to come back (BullMQ's and the worklist's connections queue commands until then).
 */
describe('Redis down: every route answers, none with 500', () => {
  let redis: PrivateRedis;
  let service: TestService;
  beforeAll(async () => {
    redis = await startPrivateRedis({ appendonly: false });
    service = await startTestService({ redisUrl: redis.url });
  });
  afterAll(async () => {
    await service?.stop();
    await redis?.close();
  });

  it('each answers within 1.5 s and none with 500', async () => {
    await redis.kill();
    const answers: string[] = [];
    try {
      for (const route of registeredRoutes(service.app)) {
        const path = concretePath(route.path, () => 'x1');
        const started = Date.now();
        const agent = request(service.url);
        const call = agent[route.method](path)
          .set(service.as('admin'))
          .set('content-type', 'application/json')
          .timeout(8000);
        const res = await (route.method === 'get' ? call : call.send('{}')).catch(() => undefined);
        const ms = Date.now() - started;
        if (!res || res.status === 500 || ms > 1500)
          answers.push(`${route.method} ${path}: ${res?.status ?? 'no answer'} in ${ms} ms`);
      }
      // Readiness says which dependency is down at once (a probe's own timeout is often 1 s).
      const started = Date.now();
      const health = await request(service.url).get('/health/ready');
      const report = health.body as { checks?: { redis?: { status: string; error?: string } } };
      expect(health.status).toBe(503);
      expect(report.checks?.redis?.status).toBe('down');
      expect(report.checks?.redis?.error).toMatch(/^not connected/);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      await redis.start();
    }
    expect(answers).toEqual([]);
    // Connections back before the service stops (BullMQ's close waits on a client still reconnecting).
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (await request(service.url).get('/health')).status !== 200)
      await new Promise((resolve) => setTimeout(resolve, 200));
  }, 120_000);
});
