import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { QUEUES } from '@kc/queue';
import { FhirClient } from '@kc/fhir';
import { completeInfusionFor, enrolForBench, type BenchEnrolment } from './bench-clinic';
import { fmt, header, median, row, runBench, runConcurrently, startBenchService } from './bench-support';

/**
 * Infusions heard from the embedded store's Subscriptions (session 35) against infusions told through the events API,
 * each with the same clinic in the same process: an EHR writes each infusion's Procedure to the FHIR server, and
 * either posts the event itself (`told`, the store notifying nothing) or leaves the store to notify the service
 * (`notified`: FHIR_SANDBOX_SUBSCRIPTIONS on, as `npm start` runs, so the service also hears every Task, CarePlan and
 * issue it writes itself, as it does from Medplum). Each round: the time from the first Procedure written to the last
 * infusion's follow-ups written.
 */
const QUICK = process.env.BENCH_QUICK === '1';
const EVENTS = QUICK ? 20 : 300;
const ROUNDS = QUICK ? 1 : 3;
const PATIENTS = QUICK ? 5 : 30;
const CONCURRENCY = 8;

type Way = 'told' | 'notified';

async function measureWay(way: Way): Promise<{ rates: number[]; notificationsPerEvent?: number }> {
  const service = await startBenchService({ fhirSandboxSubscriptions: way === 'notified' });
  try {
    const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, maxAttempts: 1 });
    const enrolments = await enrolForBench(service.url, fhir, await service.token('clinician'), PATIENTS);
    const integration = await service.token('integration');
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
    const rates: number[] = [];
    let deliveredBefore = (await service.sandbox?.storageStats?.())?.notifications?.delivered ?? 0;
    let notifications = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { completed: doneBefore = 0 } = await queue.getJobCounts('completed');
      const start = performance.now();
      await runConcurrently(EVENTS, CONCURRENCY, async (i) => {
        const enrolment: BenchEnrolment = enrolments[i % enrolments.length];
        const procedure = await completeInfusionFor(fhir, enrolment, round * EVENTS + i);
        if (way === 'told') await tell(service.url, integration, procedure);
      });
      for (;;) {
        const { completed = 0, failed = 0 } = await queue.getJobCounts('completed', 'failed');
        if (failed) throw new Error(`${failed} follow-up jobs failed`);
        if (completed - doneBefore >= EVENTS) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      rates.push(EVENTS / ((performance.now() - start) / 1000));
      const delivered = (await service.sandbox?.storageStats?.())?.notifications?.delivered ?? 0;
      notifications += delivered - deliveredBefore;
      deliveredBefore = delivered;
    }
    return { rates, notificationsPerEvent: way === 'notified' ? notifications / (EVENTS * ROUNDS) : undefined };
  } finally {
    await service.stop();
  }
}

async function tell(apiUrl: string, token: string, procedure: string): Promise<void> {
  const res = await fetch(`${apiUrl}/events/infusion-completed`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ procedure: `Procedure/${procedure}` }),
  });
  await res.arrayBuffer();
  if (res.status !== 202) throw new Error(`the event was answered ${res.status}`);
}

async function main(): Promise<void> {
  header('Infusions notified by the embedded store against infusions told through the events API');
  row('events per round, rounds, patients', `${EVENTS}, ${ROUNDS}, ${PATIENTS} (${CONCURRENCY} written at once)`);
  const told = await measureWay('told');
  row('told (Procedure written, then POST /events): events/s', told.rates.map((r) => fmt(r)).join(' / '));
  const notified = await measureWay('notified');
  row('notified (Procedure written, nothing else): events/s', notified.rates.map((r) => fmt(r)).join(' / '));
  row('notifications delivered per event (all kinds)', fmt(notified.notificationsPerEvent ?? 0, 2));
  row('ratio notified / told, median of rounds', fmt(median(notified.rates) / median(told.rates), 3));
}

runBench(main);
