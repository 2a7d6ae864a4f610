import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import { Redis, type RedisOptions } from 'ioredis';
import { redisOptions } from '@kc/queue';
import {
  completeInfusion,
  enrolPatient,
  everyWorkerConnected,
  followUpTasks,
  reportInfusionThroughFailover,
  waitFor,
} from '../support/clinic';
import { startPrivateRedis, startPrivateSentinelSet } from '../support/private-redis';
import { startTestService, type TestService } from '../support/test-service';
import { makeTlsCertificates, type TlsFiles } from '../support/tls-certificates';

/**
 * Redis over TLS (`rediss://`), as managed and self-hosted production Redis is run: a private CA (REDIS_TLS_CA_FILE)
 * signs servers that serve TLS only (no plain port). The queues, the worklist index and the sign-in store reach a
 * lone server, and a Sentinel set (sentinel, master and replica all TLS) before and after a failover.
 */
describe('Redis over TLS', () => {
  let dir: string;
  let tls: TlsFiles;
  let ca: string;
  let service: TestService | undefined;
  const stops: (() => Promise<void>)[] = [];
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-redis-tls-'));
    tls = makeTlsCertificates(dir);
    ca = fs.readFileSync(tls.ca, 'utf8');
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    for (const stop of stops.splice(0).reverse()) await stop();
  }, 60_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const report = (procedureId: string) => reportInfusionThroughFailover(service!, procedureId);

  it('the server is verified against the configured CA: without it, or without TLS, no connection', async () => {
    const redis = await startPrivateRedis({ appendonly: false, tls });
    stops.push(() => redis.close());
    /** PONG, or why the connection failed (ioredis reports the TLS error as an 'error' event). */
    const ping = async (options: RedisOptions) => {
      const client = new Redis({ ...options, lazyConnect: true, retryStrategy: () => null, connectTimeout: 2000 });
      let failure: Error | undefined;
      client.on('error', (err: Error) => (failure ??= err));
      try {
        await client.connect();
        return await client.ping();
      } catch (err) {
        return `failed: ${(failure ?? (err as Error)).message}`;
      } finally {
        client.disconnect();
      }
    };
    expect(await ping(redisOptions({ redisUrl: redis.url, redisTlsCa: ca }))).toBe('PONG');
    expect(await ping(redisOptions({ redisUrl: redis.url }))).toMatch(
      /^failed: self[- ]signed certificate in certificate chain/,
    );
    expect(await ping({ host: '127.0.0.1', port: redis.port, commandTimeout: 1000 })).toMatch(/^failed: /);
  });

  it('a TLS-only Redis: events queued and followed up, the worklist answers, /health says Redis is up', async () => {
    const redis = await startPrivateRedis({ appendonly: false, tls });
    stops.push(() => redis.close());
    service = await startTestService({ redisUrl: redis.url, redisTlsCa: ca });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const infusion = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    expect(await report(infusion)).toMatchObject({ status: 'created' });
    const tasks = await followUpTasks(service, infusion);
    expect(tasks).toHaveLength(2);
    const worklist = await request(service.url)
      .get('/worklist')
      .query({ patient: enrolment.patient })
      .set(service.as('clinician'))
      .expect(200);
    expect((worklist.body as { items: { id: string }[] }).items.map((i) => i.id)).toEqual(
      expect.arrayContaining(tasks.map((t) => t.id)),
    );
    const health = await request(service.url).get('/health').expect(200);
    expect(health.body).toMatchObject({ checks: { redis: { status: 'up' } } });
  });

  it('Sentinel over TLS: the master found through the sentinel, and the promoted replica after a failover', async () => {
    const redis = await startPrivateSentinelSet({ name: 'kc', tls });
    stops.push(() => redis.close());

    service = await startTestService({
      redisUrl: 'rediss://127.0.0.1:1', // the host is unused with Sentinel; rediss: TLS everywhere
      redisSentinel: { sentinels: [{ host: '127.0.0.1', port: redis.sentinel.port }], name: 'kc' },
      redisTlsCa: ca,
    });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    expect(await report(first)).toMatchObject({ status: 'created' });

    await redis.failOver();
    const second = await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z');
    expect(await report(second)).toMatchObject({ status: 'created' });
    expect((await followUpTasks(service, second)).length).toBeGreaterThan(0);
    await waitFor(async () => {
      const res = await request(service!.url).get('/worklist').set(service!.as('clinician'));
      return res.status === 200 && JSON.stringify(res.body).includes(enrolment.carePlanId);
    }, 'the worklist to answer from the promoted replica');
    // Before the service stops (afterAll): a worker still reconnecting would hold up its close.
    await everyWorkerConnected(service);
  }, 90_000);
});
