import { randomUUID } from 'node:crypto';
import type { Task } from '@medplum/fhirtypes';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Registry, type RegistryContentType } from 'prom-client';
import { FhirClient } from '@kc/fhir';
import { getQueueToken } from '@nestjs/bullmq';
import { QUEUES, redisConnection } from '@kc/queue';
import { completeInfusionFor, enrolForBench } from './bench-clinic';
import { fmt, header, percentile, row, runBench, runConcurrently, startBenchService } from './bench-support';

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
  const rawFinished = new Promise<void>((resolve) =>
    rawEvents.on('completed', () => ++rawDone === EVENTS && resolve()),
  );
  const rawStart = performance.now();
  await rawQueue.addBulk(Array.from({ length: EVENTS }, (_, i) => ({ name: 'noop', data: { i } })));
  const rawWorker = new Worker('noop', () => Promise.resolve(undefined), {
    connection: redisConnection(REDIS_URL),
    prefix,
    concurrency: 4,
  });
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
        await fhir.create<Task>({ resourceType: 'Task', status: 'draft', intent: 'plan' });
      }
    }),
  );
  const writeRate = WRITES / ((performance.now() - writeStart) / 1000);

  // The real thing: enrol patients, record infusions, send the events, wait for every follow-up Task.
  const integration = await service.token('integration');
  const clinician = await service.token('clinician');
  const enrolments = await enrolForBench(service.url, fhir, clinician, 30);
  const procedures: string[] = [];
  for (let i = 0; i < EVENTS; i++)
    procedures.push(await completeInfusionFor(fhir, enrolments[i % enrolments.length], i));
  const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
  // The processor reports each job's progress (read, history, written); count those reports as they stream in.
  const events = new QueueEvents(QUEUES.followups, {
    connection: redisConnection(REDIS_URL),
    prefix: service.config.queuePrefix,
  });
  await events.waitUntilReady();
  let progressReports = 0;
  events.on('progress', () => progressReports++);
  const registry = service.app.get(Registry);
  const fhirBefore = await fhirTimeByType(registry);
  const start = performance.now();
  const printProgress = async () => {
    const { completed = 0, active = 0, waiting = 0 } = await queue.getJobCounts('completed', 'active', 'waiting');
    process.stdout.write(
      `  progress: ${completed}/${EVENTS} events done, ${active} active, ${waiting} waiting, ${progressReports} job progress reports (${fmt((performance.now() - start) / 1000)} s)\n`,
    );
  };
  const report = setInterval(() => void printProgress(), 2000);
  // A burst of events, as a clinic's EHR would send at the end of a session block: 8 in flight.
  await runConcurrently(procedures.length, 8, async (i) => {
    const res = await fetch(`${service.url}/events/infusion-completed`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${integration}` },
      body: JSON.stringify({ procedure: `Procedure/${procedures[i]}` }),
    });
    if (res.status !== 202) throw new Error(`event answered ${res.status}`);
  });
  for (;;) {
    const { completed = 0, failed = 0 } = await queue.getJobCounts('completed', 'failed');
    if (failed) throw new Error(`${failed} follow-up jobs failed`);
    if (completed >= EVENTS) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const rate = EVENTS / ((performance.now() - start) / 1000);
  clearInterval(report);
  await events.close();
  const fhirAfter = await fhirTimeByType(registry);
  const finished = await queue.getJobs(['completed'], 0, EVENTS);
  const latencies = finished.map((j) => j.finishedOn! - j.timestamp).sort((a, b) => a - b);
  // Spot check: the first and the last infusion each got their two follow-up Tasks.
  const counts = await Promise.all(
    [procedures[0], procedures.at(-1)!].map(
      async (id) =>
        (await fhir.searchAll<Task>('Task', { status: 'draft', _count: 1000 })).filter(
          (t) => t.reasonReference?.reference === `Procedure/${id}`,
        ).length,
    ),
  );
  const verified = counts.every((n) => n === 2);

  row('raw BullMQ no-op jobs (concurrency 4)', `${fmt(rawRate, 0)} jobs/s`);
  row('raw FHIR Task creates (4 in flight)', `${fmt(writeRate, 0)} writes/s`);
  row(
    'infusion events -> follow-up tasks (end to end)',
    `${fmt(rate, 1)} events/s (${verified ? 'tasks verified' : `TASKS MISSING: ${counts.join(',')}`})`,
  );
  row(
    'event -> tasks latency under the burst (p50 / p95)',
    `${fmt(percentile(latencies, 50), 0)} ms / ${fmt(percentile(latencies, 95), 0)} ms`,
  );
  // Where an event's time goes: the worker's own FHIR requests, per resource type (from kc_fhir_request_seconds).
  for (const [type, after] of Object.entries(fhirAfter)) {
    const count = after.count - (fhirBefore[type]?.count ?? 0);
    const seconds = after.sum - (fhirBefore[type]?.sum ?? 0);
    if (count)
      row(
        `  FHIR ${type} requests per event, mean latency`,
        `${fmt(count / EVENTS, 1)} x ${fmt((seconds / count) * 1000, 1)} ms`,
      );
  }
  row('ratio to raw BullMQ', fmt(rate / rawRate, 3));
  row('ratio to raw FHIR writes (2 tasks + reads per event)', fmt(rate / writeRate, 3));
  await service.stop();
}

async function fhirTimeByType(
  registry: Registry<RegistryContentType>,
): Promise<Record<string, { count: number; sum: number }>> {
  const metric = await registry.getSingleMetric('kc_fhir_request_seconds')?.get();
  const byType: Record<string, { count: number; sum: number }> = {};
  for (const value of metric?.values ?? []) {
    const type = String(value.labels.type);
    const entry = (byType[type] ??= { count: 0, sum: 0 });
    if ((value as { metricName?: string }).metricName === 'kc_fhir_request_seconds_count') entry.count += value.value;
    if ((value as { metricName?: string }).metricName === 'kc_fhir_request_seconds_sum') entry.sum += value.value;
  }
  return byType;
}

runBench(main);
