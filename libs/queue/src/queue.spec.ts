import { infusionJobId, JOBS } from './jobs';
import { QUEUES } from './queue-names';
import { redisConnection } from './redis-connection';

describe('redisConnection', () => {
  it('defaults port and db', () => {
    expect(redisConnection('redis://127.0.0.1')).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 });
  });

  it('reads user, URL-encoded password, port and db; never gives up on blocking commands', () => {
    expect(redisConnection('redis://worker:p%40ss%3Aword@redis.internal:6380/3')).toEqual({
      host: 'redis.internal',
      port: 6380,
      username: 'worker',
      password: 'p@ss:word',
      db: 3,
      maxRetriesPerRequest: null,
    });
  });

  it('refuses what is not a URL', () => {
    expect(() => redisConnection('not a url')).toThrow();
    expect(() => redisConnection('')).toThrow();
  });
});

describe('infusionJobId', () => {
  it('is the same for the same Procedure, whoever delivers it', () => {
    expect(infusionJobId('123')).toBe(`${JOBS.infusionCompleted}-123`);
    expect(infusionJobId('123')).toBe(infusionJobId('123'));
    expect(infusionJobId('123')).not.toBe(infusionJobId('124'));
  });

  it('replaces what BullMQ forbids in custom ids (":") and anything outside the FHIR id alphabet', () => {
    expect(infusionJobId('a:b')).toBe(`${JOBS.infusionCompleted}-a_b`);
    expect(infusionJobId('a/b c')).toBe(`${JOBS.infusionCompleted}-a_b_c`);
    expect(infusionJobId('x.y-z')).toBe(`${JOBS.infusionCompleted}-x.y-z`);
  });

  it('names one queue per kind of work', () => {
    expect(new Set(Object.values(QUEUES)).size).toBe(Object.values(QUEUES).length);
  });
});
