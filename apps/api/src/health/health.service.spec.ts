import { getQueueToken } from '@nestjs/bullmq';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { QUEUES } from '@kc/queue';
import { HealthService } from './health.service';

/**
 * HealthService over terminus with fake Redis, FHIR server and catalog: which failure gives which answer. Redis
 * `reconnecting`: its client is not connected (ioredis's status); `failing`: connected, but the ping fails.
 */
async function healthWith(state: { redis: boolean | 'reconnecting' | 'failing'; fhir: boolean; problems: string[] }) {
  const moduleRef = await Test.createTestingModule({
    imports: [TerminusModule.forRoot({ logger: false })],
    providers: [
      HealthService,
      {
        provide: FhirClient,
        useValue: { ping: () => (state.fhir ? Promise.resolve() : Promise.reject(new Error('ECONNREFUSED'))) },
      },
      {
        provide: getQueueToken(QUEUES.followups),
        useValue: {
          client: Promise.resolve({
            status: state.redis === 'reconnecting' ? 'reconnecting' : 'ready',
            ping: () =>
              state.redis === true ? Promise.resolve('PONG') : Promise.reject(new Error('Connection is closed.')),
          }),
        },
      },
      { provide: ProtocolCatalog, useValue: { problems: state.problems, unavailable: state.problems } },
    ],
  }).compile();
  return moduleRef.get(HealthService).check();
}

describe('HealthService', () => {
  it('all up: ready, ok', async () => {
    const { ready, report } = await healthWith({ redis: true, fhir: true, problems: [] });
    expect(ready).toBe(true);
    expect(report).toEqual({
      status: 'ok',
      checks: {
        redis: { status: 'up', latencyMs: expect.any(Number) as number },
        fhir: { status: 'up', latencyMs: expect.any(Number) as number },
        profiles: { status: 'up', latencyMs: 0 },
      },
    });
  });

  it('Redis down: not ready (503), degraded, with the error', async () => {
    const { ready, report } = await healthWith({ redis: 'failing', fhir: true, problems: [] });
    expect(ready).toBe(false);
    expect(report.status).toBe('degraded');
    expect(report.checks.redis).toMatchObject({ status: 'down', error: 'Connection is closed.' });
    expect(report.checks.fhir.status).toBe('up');
  });

  it('Redis not connected: down at once, without a ping that would wait in the offline queue', async () => {
    const { ready, report } = await healthWith({ redis: 'reconnecting', fhir: true, problems: [] });
    expect(ready).toBe(false);
    expect(report.checks.redis).toMatchObject({ status: 'down', error: 'not connected (reconnecting)' });
  });

  it('FHIR server down: not ready (503)', async () => {
    const { ready, report } = await healthWith({ redis: true, fhir: false, problems: [] });
    expect(ready).toBe(false);
    expect(report.checks.fhir).toMatchObject({ status: 'down', error: 'ECONNREFUSED' });
  });

  it('only protocol files unavailable: still ready (200), degraded, with the problems', async () => {
    const { ready, report } = await healthWith({ redis: true, fhir: true, problems: ['a.json: status missing'] });
    expect(ready).toBe(true);
    expect(report.status).toBe('degraded');
    expect(report.checks.profiles).toEqual({
      status: 'down',
      latencyMs: 0,
      error: '1 file(s) in fhir-profiles unavailable',
      problems: ['a.json: status missing'],
    });
  });
});
