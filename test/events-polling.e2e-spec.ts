import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Bundle, Procedure } from '@medplum/fhirtypes';
import { loadConfig, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { InfusionEventsProducer, JOBS, PatientRecordEventsProducer, QUEUES, redisConnection } from '@kc/queue';
import { getQueueToken } from '@nestjs/bullmq';
import { PollCursors } from '../apps/worker/src/maintenance/change-polls';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import { ProcedurePoller } from '../apps/worker/src/maintenance/procedure-poller';
import { completeInfusion, enrolPatient, followUpTasks, waitFor } from './support/clinic';
import { startFakeServer, type FakeServer } from './support/fake-fhir-servers';
import { startTestService, type TestService } from './support/test-service';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A HAPI-shaped server holding completed Procedures: honours _lastUpdated=ge..., sorts by it, pages two at a time
 * with _getpages links that name HAPI's internal host (as behind a reverse proxy).
 */
function hapiProcedureStore(procedures: Procedure[]) {
  return (req: { url: string }) => {
    const url = new URL(req.url, 'http://x');
    const offset = Number(url.searchParams.get('_getpagesoffset') ?? 0);
    const query = url.searchParams.get('_getpages')
      ? JSON.parse(Buffer.from(url.searchParams.get('_getpages')!, 'base64url').toString())
      : { ge: url.searchParams.get('_lastUpdated')?.slice(2) };
    const matches = procedures
      .filter((p) => Date.parse(p.meta!.lastUpdated!) >= Date.parse(query.ge))
      .sort((a, b) => Date.parse(a.meta!.lastUpdated!) - Date.parse(b.meta!.lastUpdated!));
    const page = matches.slice(offset, offset + 2);
    const next =
      offset + 2 < matches.length
        ? `http://hapi.internal:8080/fhir?_getpages=${Buffer.from(JSON.stringify(query)).toString('base64url')}&_getpagesoffset=${offset + 2}&_count=2`
        : undefined;
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: matches.length,
      entry: page.map((resource) => ({ resource, search: { mode: 'match' } })),
      link: next ? [{ relation: 'next', url: next }] : [],
    };
    return { status: 200, body: bundle };
  };
}

describe('polling fallback against a HAPI-shaped server, cursor in real Redis', () => {
  let server: FakeServer;
  const procedures: Procedure[] = [];
  const queues: Queue[] = [];
  const prefix = `kc-test-${randomUUID().slice(0, 8)}`;
  const config: AppConfig = {
    ...loadConfig({ REDIS_URL }),
    queuePrefix: prefix,
    pollOverlapMs: 10_000,
    pollSince: '2027-01-01T10:00:00.000Z',
  };
  const completed = (id: string, lastUpdated: string) =>
    procedures.push({
      resourceType: 'Procedure',
      id,
      status: 'completed',
      subject: { reference: 'Patient/p' },
      meta: { lastUpdated },
    });

  /** A poller as a freshly started worker process builds it: new Redis connections, same prefix. */
  const newPoller = () => {
    const followups = new Queue(QUEUES.followups, { connection: redisConnection(REDIS_URL), prefix });
    const maintenance = new Queue(QUEUES.maintenance, { connection: redisConnection(REDIS_URL), prefix });
    queues.push(followups, maintenance);
    const cursors = new PollCursors(maintenance, config);
    return {
      poller: new ProcedurePoller(
        new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 }),
        new InfusionEventsProducer(followups, config),
        new PatientRecordEventsProducer(maintenance, config),
        cursors,
        config,
      ),
      cursors,
      followups,
    };
  };
  const queuedIds = async (queue: Queue) => (await queue.getJobs(['waiting'])).map((j) => j.data.procedureId).sort();

  beforeAll(async () => {
    Logger.overrideLogger(false); // built outside Nest: keep the test output quiet
    server = await startFakeServer(hapiProcedureStore(procedures));
  });
  afterAll(async () => {
    await queues[0]?.obliterate({ force: true });
    await Promise.all(queues.map((q) => q.close()));
    await server.close();
  });

  it('queues each completed infusion exactly once across polls, equal timestamps, late commits and a restart', async () => {
    completed('before-start', '2026-12-31T09:00:00.000Z');
    completed('a', '2027-01-02T10:00:00.000Z');
    completed('b', '2027-01-02T10:00:00.000Z');
    completed('c', '2027-01-02T10:00:01.000Z');
    const first = newPoller();
    await first.cursors.start(first.poller);
    expect((await first.poller.poll()).queued).toBe(3);
    expect(server.requests[0].url).toContain('_lastUpdated=ge2027-01-01T09%3A59%3A50.000Z');
    expect(server.requests.some((r) => r.url.includes('_getpagesoffset=2'))).toBe(true); // followed the foreign-host next link
    expect((await first.poller.poll()).queued).toBe(0);

    // Same millisecond as b, and one stamped 4 s before the cursor but committed only now (HAPI stamps at transaction start).
    completed('d', '2027-01-02T10:00:01.000Z');
    completed('late', '2027-01-02T09:59:57.000Z');
    expect((await first.poller.poll()).queued).toBe(2);

    // Restart: a new process resumes from the Redis cursor.
    completed('e', '2027-01-02T11:00:00.000Z');
    const restarted = newPoller();
    await restarted.cursors.start(restarted.poller); // must not reset the stored cursor
    expect((await restarted.poller.poll()).queued).toBe(1);
    expect(await queuedIds(restarted.followups)).toEqual(['a', 'b', 'c', 'd', 'e', 'late']);
    // Queued once each, by job id: even a poll that re-reads everything adds nothing.
    const jobs = await restarted.followups.getJobs(['waiting']);
    expect(jobs.map((j) => j.id).sort()).toEqual(
      ['a', 'b', 'c', 'd', 'e', 'late'].map((id) => `${JOBS.infusionCompleted}-${id}`),
    );
  });
});

describe('polling runs by itself as a BullMQ job scheduler', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ pollIntervalMs: 300 });
  });
  afterAll(() => service.stop());

  it('registers the poll and overdue-sweep schedulers in Redis', async () => {
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    const schedulers = await queue.getJobSchedulers();
    expect(schedulers.map((s) => s.key).sort()).toEqual([JOBS.overdueSweep, JOBS.pollProcedures]);
    expect(schedulers.find((s) => s.key === JOBS.pollProcedures)?.every).toBe(300);
    expect(schedulers.find((s) => s.key === JOBS.overdueSweep)?.pattern).toBe(service.config.overdueSweepEvery);
  });

  it('the overdue sweep shows its steps on the queue dashboard as it goes', async () => {
    await enrolPatient(service, 'ketamine-low-dose-series');
    const shown: unknown[] = [];
    const job = {
      name: JOBS.overdueSweep,
      data: {},
      updateProgress: (progress: unknown) => Promise.resolve(void shown.push(progress)),
    } as unknown as Job;
    await service.app.get(MaintenanceProcessor).process(job);
    expect(shown).toEqual([10, 30, 40, 80, 90, 100]);
  });

  it('an infusion recorded on the FHIR server, with no webhook and no API call, gets its follow-ups', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await waitFor(
      async () => (await followUpTasks(service, procedureId)).length === 2,
      'follow-ups found by the scheduled poll',
    );
  });

  it('each scheduled poll runs every fallback, each from its own cursor', async () => {
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    let polled: Record<string, { queued: number }> | undefined;
    await waitFor(async () => {
      const done = await queue.getJobs(['completed']);
      polled = done.find((j) => j.name === JOBS.pollProcedures)?.returnvalue as typeof polled;
      return Boolean(polled);
    }, 'a completed poll job');
    // What other systems change, each polled: a fallback dropped from the list would leave its changes unseen.
    expect(Object.keys(polled!).sort()).toEqual(
      [
        'administrations',
        'appointments',
        'checks',
        'clearedIssues',
        'closedOrders',
        'deceasedPatients',
        'infusions',
        'scores',
        'tasksChangedInEhr',
      ].sort(),
    );
    for (const result of Object.values(polled!)) expect(typeof result.queued).toBe('number');
    const redis = (await queue.client) as unknown as Redis;
    const cursors = await redis.keys(`${service.config.queuePrefix}:poll-cursor:*`);
    expect(cursors.map((k) => k.split(':').at(-1)).sort()).toEqual(
      [
        'administrations',
        'appointments',
        'check-answers',
        'cleared-issues',
        'closed-orders',
        'completed-checks',
        'deceased-patients',
        'procedures',
        'scores',
        'tasks-changed-in-ehr',
      ].sort(),
    );
  });
});
