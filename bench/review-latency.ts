import type { Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { completeInfusionFor, enrolForBench } from './bench-clinic';
import { fmt, header, percentile, row, runConcurrently, startBenchService, runBench } from './bench-support';
import { FollowUpService } from '../apps/worker/src/followups/follow-up.service';

/**
 * Clinician review under 100 concurrent clients: worklist reads and approvals, p50/p99 and requests/s, with
 * the raw FHIR calls underneath (Task search, Task update) at the same concurrency as the baseline.
 */
async function main(): Promise<void> {
  header('Clinician review latency, 100 concurrent clients');
  const CLIENTS = 100;
  const READS = 500;
  const service = await startBenchService();
  const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, maxAttempts: 1 });
  const clinician = await service.token('clinician');
  const enrolments = await enrolForBench(service.url, fhir, clinician, 25);
  const followUps = service.app.get(FollowUpService);
  for (let i = 0; i < 50; i++)
    await followUps.handle(await completeInfusionFor(fhir, enrolments[i % enrolments.length], i));
  const open = await fhir.searchAll<Task>('Task', { status: 'draft', _count: 200 });
  process.stdout.write(`  ${open.length} tasks awaiting approval\n`);

  const auth = { authorization: `Bearer ${clinician}`, 'content-type': 'application/json' };
  const rawSearch = await runConcurrently(READS, CLIENTS, () => fhir.search('Task', { status: 'draft', _count: 20 }));
  const worklist = await runConcurrently(READS, CLIENTS, async (i) => {
    const res = await fetch(`${service.url}/worklist?count=20&page=${1 + (i % 3)}`, { headers: auth });
    if (res.status !== 200) throw new Error(`worklist answered ${res.status}`);
    await res.arrayBuffer();
  });

  const half = Math.floor(open.length / 2);
  const rawTargets = open.slice(0, half);
  const apiTargets = open.slice(half, 2 * half);
  const rawUpdate = await runConcurrently(rawTargets.length, CLIENTS, (i) =>
    fhir.update({ ...rawTargets[i], status: 'ready' }, { ifMatch: rawTargets[i].meta!.versionId }),
  );
  let refused = 0;
  const approve = await runConcurrently(apiTargets.length, CLIENTS, async (i) => {
    const task = apiTargets[i];
    const res = await fetch(`${service.url}/tasks/${task.id}/$approve`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ versionId: task.meta!.versionId }),
    });
    if (res.status !== 200) refused++;
    await res.arrayBuffer();
  });

  const report = (label: string, r: { latencies: number[]; wallMs: number }) =>
    row(
      label,
      `p50 ${fmt(percentile(r.latencies, 50))} ms  p99 ${fmt(percentile(r.latencies, 99))} ms  ${fmt(r.latencies.length / (r.wallMs / 1000), 0)} req/s`,
    );
  report('baseline: raw FHIR Task search (20/page)', rawSearch);
  report('GET /worklist (20/page)', worklist);
  row('ratio worklist / raw search throughput', fmt(worklist.wallMs ? rawSearch.wallMs / worklist.wallMs : NaN, 3));
  report('baseline: raw FHIR Task update with If-Match', rawUpdate);
  report(`POST /tasks/:id/$approve (${apiTargets.length} tasks)`, approve);
  row(
    'ratio approve / raw update throughput',
    fmt(rawUpdate.wallMs / rawTargets.length / (approve.wallMs / apiTargets.length), 3),
  );
  row('approvals refused (should be 0)', String(refused));
  await service.stop();
}

runBench(main);
