import { randomUUID } from 'node:crypto';
import type { Task } from '@medplum/fhirtypes';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { FhirClient } from '@kc/fhir';
import { getQueueToken } from '@nestjs/bullmq';
import { QUEUES, redisConnection } from '@kc/queue';
import { completeInfusionFor, enrolForBench } from './bench-clinic';
import { fmt, header, row, startBenchService, runBench } from './bench-support';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Infusion events -> follow-up Tasks through the real queue and worker against the embedded FHIR server,
 * compared in the same run with raw BullMQ (no-op jobs) and raw FHIR writes (one Task create per call).
 */
async function main(): Promise<void> {
  header('Follow-up generation throughput (events -> tasks)');
  const EVENTS = Number(process.env.BENCH_EVENTS ?? 120);

  // Baseline 1: raw BullMQ, no-op processor, same concurrency as the follow-up worker.
  const prefix = `kc-bench-raw-${randomUUID().slice(0, 8)}`;
  const rawQueue = new Queue('noop', { connection: redisConnection(REDIS_URL), prefix });
  const rawEvents = new QueueEvents('noop', { connection: redisConnection(REDIS_URL), prefix });
  await rawEvents.waitUntilReady();
  let rawDone = 0;
  const rawFinished = new Promise<void>((resolve) => rawEvents.on('completed', () => ++rawDone === EVENTS && resolve()));
  const rawStart = performance.now();
  await rawQueue.addBulk(Array.from({ length: EVENTS }, (_, i) => ({ name: 'noop', data: { i } })));
  const rawWorker = new Worker('noop', async () => undefined, { connection: redisConnection(REDIS_URL), prefix, concurrency: 4 });
  await rawFinished;
  const rawRate = EVENTS / ((performance.now() - rawStart) / 1000);
  await rawWorker.close();
  await rawEvents.close();
  await rawQueue.obliterate({ force: true });
  await rawQueue.close();

  const service = await startBenchService();
  const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, maxAttempts: 1 });

  // Baseline 2: raw FHIR writes, 4 in flight (the worker's concurrency), one Task per write.
  const WRITES = 2 * EVENTS;
  const writeStart = performance.now();
  let written = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (written < WRITES) {
        written++;
        await fhir.create<Task>({ resourceType: 'Task', status: 'requested', intent: 'plan' });
      }
    }),
  );
  const writeRate = WRITES / ((performance.now() - writeStart) / 1000);

  // The real thing: enrol patients, record infusions, send the events, wait for every follow-up Task.
  const integration = await service.token('integration');
  const clinician = await service.token('clinician');
  const enrolments = await enrolForBench(service.url, fhir, clinician, 30);
  const procedures: string[] = [];
  for (let i = 0; i < EVENTS; i++) procedures.push(await completeInfusionFor(fhir, enrolments[i % enrolments.length], i));
  const start = performance.now();
  for (const id of procedures) {
    const res = await fetch(`${service.url}/events/infusion-completed`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${integration}` }, body: JSON.stringify({ procedure: `Procedure/${id}` }) });
    if (res.status !== 202) throw new Error(`event answered ${res.status}`);
  }
  let lastReport = 0;
  for (;;) {
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
    const { completed = 0, failed = 0 } = await queue.getJobCounts('completed', 'failed');
    if (performance.now() - lastReport > 2000) {
      process.stdout.write(`  progress: ${completed}/${EVENTS} events processed\n`);
      lastReport = performance.now();
    }
    if (failed) throw new Error(`${failed} follow-up jobs failed`);
    if (completed >= EVENTS) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const rate = EVENTS / ((performance.now() - start) / 1000);
  const tasks = await fhir.search('Task', { focus: `Procedure/${procedures[0]}`, _summary: 'count' });

  row('raw BullMQ no-op jobs (concurrency 4)', `${fmt(rawRate, 0)} jobs/s`);
  row('raw FHIR Task creates (4 in flight)', `${fmt(writeRate, 0)} writes/s`);
  row('infusion events -> follow-up tasks (end to end)', `${fmt(rate, 1)} events/s (${(tasks.total ?? 0) > 0 ? 'tasks verified' : 'NO TASKS'})`);
  row('ratio to raw BullMQ', fmt(rate / rawRate, 3));
  row('ratio to raw FHIR writes (2 tasks + reads per event)', fmt(rate / writeRate, 3));
  await service.stop();
}

runBench(main);
