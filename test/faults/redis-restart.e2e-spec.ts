import request from 'supertest';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { Task } from '@medplum/fhirtypes';
import { JOBS, QUEUES } from '@kc/queue';
import { completeInfusion, enrolPatient, followUpTasks, waitFor } from '../support/clinic';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { startTestService, type TestService } from '../support/test-service';

/**
 * Issue 12 item 2: 100 accepted events, then Redis killed before the worker took them. Without persistence the
 * queued jobs (and the schedulers, and the poll cursor) are gone: the schedulers come back on reconnect by
 * themselves and the reconciliation sweep finds every completed infusion, so none is lost and none doubled. With
 * AOF (as docker-compose.yml ships Redis) the queued jobs themselves survive.
 */
const PATIENTS = 25;
const INFUSIONS_EACH = 4;

async function hundredInfusions(service: TestService): Promise<string[]> {
  const ids: string[] = [];
  const enrolments = await Promise.all(
    Array.from({ length: PATIENTS }, () => enrolPatient(service, 'ketamine-low-dose-series')),
  );
  for (const enrolment of enrolments)
    for (let i = 0; i < INFUSIONS_EACH; i++)
      ids.push(
        await completeInfusion(service, enrolment, `2027-01-${String(4 + 3 * i).padStart(2, '0')}T10:00:00.000Z`),
      );
  return ids;
}

async function acceptAll(service: TestService, procedureIds: string[]): Promise<void> {
  for (const id of procedureIds)
    await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${id}` })
      .expect(202);
}

/** Every infusion has its follow-ups, and no Task key appears twice. */
async function expectEveryInfusionFollowedUpOnce(service: TestService, procedureIds: string[]): Promise<void> {
  await waitFor(
    async () => {
      for (const id of procedureIds) if ((await followUpTasks(service, id)).length === 0) return false;
      return true;
    },
    'every infusion to have its follow-up Tasks',
    60_000,
  );
  const tasks = await service.fhir.searchAll<Task>('Task', { _count: 1000 });
  const keys = tasks.flatMap((t) => t.identifier?.map((i) => `${i.system}|${i.value}`) ?? []);
  expect(keys.length).toBeGreaterThan(procedureIds.length);
  expect(keys.length - new Set(keys).size).toBe(0);
}

describe.each([
  { appendonly: false, what: 'without persistence: the sweep recovers every lost event' },
  { appendonly: true, what: 'with AOF: the queued jobs survive the kill' },
])('Redis killed with 100 accepted events queued, $what', ({ appendonly }) => {
  let redis: PrivateRedis;
  let service: TestService;
  beforeAll(async () => {
    redis = await startPrivateRedis({ appendonly });
    // With AOF the sweep is off, so only the surviving jobs can do the work.
    service = await startTestService({ redisUrl: redis.url, reconcileEveryMs: appendonly ? 0 : 500 });
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await redis?.close();
  });

  it('0 lost, 0 duplicated, schedulers back without a service restart', async () => {
    const followups = service.app.get<Queue>(getQueueToken(QUEUES.followups));
    await followups.pause(); // the events wait in Redis, as under load
    const procedureIds = await hundredInfusions(service);
    await acceptAll(service, procedureIds);
    const queued = async () => {
      const counts = await followups.getJobCounts('waiting', 'paused');
      return counts.waiting + counts.paused;
    };
    expect(await queued()).toBe(procedureIds.length);

    await redis.kill();
    await redis.start();
    const maintenance = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    const schedulers = await waitFor(async () => {
      const keys = (await maintenance.getJobSchedulers()).map((s) => s.key);
      return keys.includes(JOBS.overdueSweep) && keys;
    }, 'the schedulers to be re-created after the restart');
    if (!appendonly) {
      expect(schedulers).toContain(JOBS.reconcileProcedures);
      expect(await queued()).toBeLessThan(procedureIds.length); // the queued jobs are gone
    } else {
      expect(await queued()).toBe(procedureIds.length);
    }

    await followups.resume();
    await expectEveryInfusionFollowedUpOnce(service, procedureIds);
  }, 180_000);
});
