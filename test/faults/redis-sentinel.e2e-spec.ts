import request from 'supertest';
import { Redis } from 'ioredis';
import { PlanDefinitions } from '@kc/nest-core';
import {
  completeInfusion,
  enrolPatient,
  everyWorkerConnected,
  followUpTasks,
  reportInfusionThroughFailover,
  waitFor,
} from '../support/clinic';
import { startPrivateSentinelSet, type PrivateSentinelSet } from '../support/private-redis';
import { startTestService, type TestService } from '../support/test-service';

/**
 * Redis behind Sentinel (REDIS_SENTINELS): the queues, the worklist index and the sign-in store find the master
 * through the sentinel, and after the master dies and the sentinel promotes its replica they find the new one
 * without a restart. A private master, replica and sentinel: the shared Redis is never touched.
 */
describe('Redis Sentinel: the service follows a failover', () => {
  let redis: PrivateSentinelSet;
  let service: TestService | undefined;

  beforeAll(async () => {
    redis = await startPrivateSentinelSet({ name: 'kc' });
  }, 30_000);
  afterAll(async () => {
    await service?.stop();
    await redis?.close();
  }, 60_000);

  const reportThroughFailover = (procedureId: string) => reportInfusionThroughFailover(service!, procedureId);

  it('follow-ups before and after the master dies; the worklist answers from the promoted replica', async () => {
    service = await startTestService({
      // The host is unused with Sentinel; the sentinels name the master.
      redisUrl: 'redis://127.0.0.1:1',
      redisSentinel: { sentinels: [{ host: '127.0.0.1', port: redis.sentinel.port }], name: 'kc' },
    });
    expect(await redis.masterPort()).toBe(redis.master.port);
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    expect(await reportThroughFailover(first)).toMatchObject({ status: 'created' });
    await request(service.url).get('/worklist').set(service.as('clinician')).expect(200);

    await redis.failOver();

    const second = await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z');
    expect(await reportThroughFailover(second)).toMatchObject({ status: 'created' });
    expect((await followUpTasks(service, second)).length).toBeGreaterThan(0);
    const worklist = await waitFor(async () => {
      const res = await request(service!.url).get('/worklist').set(service!.as('clinician'));
      return res.status === 200 && res;
    }, 'the worklist to answer');
    expect(JSON.stringify(worklist.body)).toContain(enrolment.carePlanId);
    // The jobs and the index are on the promoted replica, not on the dead master.
    const promoted = new Redis({ port: redis.replica.port, host: '127.0.0.1', lazyConnect: true });
    await promoted.connect();
    try {
      expect(await promoted.info('replication')).toMatch(/role:master/);
      expect((await promoted.keys(`${service.config.queuePrefix}:followups:*`)).length).toBeGreaterThan(0);
      // The protocol-change subscriber subscribed again on the promoted master: a change another replica tells is
      // heard (its connection ended for good mid-failover would leave this process judging with stale protocols).
      const forget = jest.spyOn(service.app.get(PlanDefinitions), 'forgetServerPlans');
      await waitFor(
        async () =>
          (await promoted.publish(`${service!.config.queuePrefix}:protocols-changed`, 'changed')) > 0 &&
          forget.mock.calls.length > 0,
        'the protocol-change subscriber on the promoted master',
      );
    } finally {
      promoted.disconnect();
    }
    // Before the service stops (afterAll): a worker still reconnecting would hold up its close.
    await everyWorkerConnected(service);
  }, 90_000);
});
