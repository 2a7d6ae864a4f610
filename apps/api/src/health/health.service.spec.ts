import { getQueueToken } from '@nestjs/bullmq';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { APP_CONFIG } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { QUEUES } from '@kc/queue';
import { HealthService } from './health.service';

/**
 * HealthService over terminus with fake Redis, FHIR server and catalog: which failure gives which answer. Redis
 * `reconnecting`: its client is not connected (ioredis's status); `failing`: connected, but the ping fails.
 */
async function healthWith(state: {
  redis: boolean | 'reconnecting' | 'failing';
  fhir: boolean;
  problems: string[];
  /** CLINIC_ALERT_RECIPIENTS, and those of them the FHIR server has. */
  recipients?: { configured: string[]; onServer: string[] };
}) {
  const moduleRef = await Test.createTestingModule({
    imports: [TerminusModule.forRoot({ logger: false })],
    providers: [
      HealthService,
      {
        provide: FhirClient,
        useValue: {
          ping: () => (state.fhir ? Promise.resolve() : Promise.reject(new Error('ECONNREFUSED'))),
          // Reads by reference in one batch: each recipient found or 404.
          batch: (entries: { request?: { url?: string } }[]) =>
            Promise.resolve({
              resourceType: 'Bundle',
              type: 'batch-response',
              entry: entries.map((e) => {
                const url = e.request?.url ?? '';
                return state.recipients?.onServer.includes(url)
                  ? {
                      resource: { resourceType: url.split('/')[0], id: url.split('/')[1] },
                      response: { status: '200' },
                    }
                  : { response: { status: '404' } };
              }),
            }),
        },
      },
      { provide: APP_CONFIG, useValue: { clinicAlertRecipients: state.recipients?.configured ?? [] } },
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

  it('clinic alert recipients the FHIR server does not have: still ready, degraded, naming them', async () => {
    const configured = ['PractitionerRole/on-call', 'CareTeam/infusion-nurses'];
    const found = await healthWith({
      redis: true,
      fhir: true,
      problems: [],
      recipients: { configured, onServer: configured },
    });
    expect(found.report.status).toBe('ok');
    expect(found.report.checks.alertRecipients).toMatchObject({ status: 'up' });
    const missing = await healthWith({
      redis: true,
      fhir: true,
      problems: [],
      recipients: { configured, onServer: ['CareTeam/infusion-nurses'] },
    });
    expect(missing.ready).toBe(true);
    expect(missing.report.status).toBe('degraded');
    expect(missing.report.checks.alertRecipients).toMatchObject({
      status: 'down',
      error: '1 of CLINIC_ALERT_RECIPIENTS not found on the FHIR server',
      problems: ['PractitionerRole/on-call not found'],
    });
  });
});
