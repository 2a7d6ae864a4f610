import type { BundleEntry, Parameters, Patient } from '@medplum/fhirtypes';
import { FhirClient, getEntry, searchEach, searchEntries } from '@kc/fhir';
import { appliedEntries, applyPlanDefinition, patientDataQueries, ProtocolCatalog } from '@kc/protocols';
import { loadConfig } from '@kc/config';
import { bloodPressure, bodyWeight } from '../test/fixtures/patient-data';
import { preload, QUICK } from './bench-preload';
import { LoadThread, type LoadRequest } from './bench-load-thread';
import {
  fmt,
  header,
  inRounds,
  medianBy,
  row,
  runConcurrently,
  startBenchService,
  runBench,
  threadClock,
} from './bench-support';

/**
 * $apply throughput, patients per second: the pure engine alone, and the whole HTTP path (read the patient's data
 * from the FHIR server, evaluate, answer). Baseline in the same run: the FHIR reads $apply needs, alone.
 */
async function main(): Promise<void> {
  header('PlanDefinition/$apply throughput');
  // Reads, $apply and persisted $apply alternate in ROUNDS rounds over PATIENTS / ROUNDS patients each; the ratios
  // reported are the medians of the rounds' ratios (a few slow seconds of the shared VM cannot decide them).
  const ROUNDS = QUICK ? 1 : 3;
  const PATIENTS = QUICK ? 40 : 900;
  const PER_ROUND = PATIENTS / ROUNDS;
  // Warm-up patients, each taken through the reads, $apply and persisted $apply before anything is measured: V8
  // tiers a function up after hundreds to thousands of calls, and a running service is past that.
  const WARM_PATIENTS = QUICK ? 10 : 400;
  const CONCURRENCY = 8;
  const ENROLLED = Number(process.env.BENCH_ENROLLED ?? (QUICK ? 500 : 10_000));
  const service = await startBenchService();
  const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, maxAttempts: 1, timeoutMs: 120_000 });
  // Patients already enrolled: a CarePlan each with 4 Tasks, as $apply leaves them.
  const loadStart = performance.now();
  await preload(fhir, { carePlans: ENROLLED, tasks: 4 * ENROLLED });
  row(
    `preloaded ${ENROLLED} enrolled patients (CarePlan + 4 Tasks each)`,
    `${fmt((performance.now() - loadStart) / 1000)} s`,
  );
  const catalog = ProtocolCatalog.fromDirectory(loadConfig().profilesDir);
  const plan = catalog.findPlanDefinition('ketamine-low-dose-series')!;
  const ids = await createPatients(fhir, PATIENTS);
  const warmIds = await createPatients(fhir, WARM_PATIENTS);
  const rawIds = await createPatients(fhir, PATIENTS);
  const data = await searchEach(fhir, patientDataQueries(plan, ids[0]));
  // Like for like (a reference beside the reads baseline): each plan's creates, worked out before the clock starts
  // and sent raw as the one transaction the service sends (its key lookups and read-back left out).
  const planWrites = rawIds.map((id): BundleEntry[] =>
    appliedEntries(
      applyPlanDefinition({
        plan,
        definitions: catalog,
        patient: { resourceType: 'Patient', id },
        patientData: data,
        startDate: new Date('2027-01-01'),
        now: new Date(),
      }),
    ).map((e) => ({
      fullUrl: e.fullUrl,
      resource: e.resource,
      request: { method: 'POST', url: e.resource.resourceType },
    })),
  );

  const ENGINE_RUNS = QUICK ? 500 : 5000;
  const engineStart = performance.now();
  for (let i = 0; i < ENGINE_RUNS; i++)
    applyPlanDefinition({
      plan,
      definitions: catalog,
      patient: { resourceType: 'Patient', id: ids[i % PATIENTS] },
      patientData: data,
      startDate: new Date('2027-01-01'),
      now: new Date(),
    });
  const engineRate = ENGINE_RUNS / ((performance.now() - engineStart) / 1000);

  // The reads exactly as $apply makes them: the Patient and every input's search in one batch.
  const readBatch = (id: string) =>
    fhir.batch([getEntry(`Patient/${id}`), ...searchEntries(patientDataQueries(plan, id))]);
  await runConcurrently(WARM_PATIENTS, CONCURRENCY, (i) => readBatch(warmIds[i]));
  const token = await service.token('clinician');
  const url = `${service.url}/fhir/PlanDefinition/ketamine-low-dose-series/$apply`;
  const applyCalls = (persist: boolean, patients = ids): LoadRequest[] =>
    patients.map((id) => {
      const body: Parameters = {
        resourceType: 'Parameters',
        parameter: [
          { name: 'subject', valueString: `Patient/${id}` },
          { name: 'startDate', valueDate: '2027-01-01' },
          ...(persist ? [{ name: 'persist', valueBoolean: true }] : []),
        ],
      };
      return {
        method: 'POST',
        url,
        headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      };
    });
  // The EHR's calls come from a thread of their own, as from its own machine (bench-load-thread.ts).
  const clients = new LoadThread();
  await clients.run(applyCalls(false, warmIds), CONCURRENCY);
  await clients.run(applyCalls(true, warmIds), CONCURRENCY);
  const rounds = await inRounds(ROUNDS, async (round) => {
    const chunk = ids.slice(round * PER_ROUND, (round + 1) * PER_ROUND);
    let threads = await threadClock(service);
    const reads = await runConcurrently(PER_ROUND, CONCURRENCY, (i) => readBatch(chunk[i]));
    const readsCpu = await threads();
    threads = await threadClock(service);
    const apply = await clients.run(applyCalls(false, chunk), CONCURRENCY);
    const applyCpu = await threads();
    if (apply.statuses[200] !== PER_ROUND) throw new Error(`$apply answered ${JSON.stringify(apply.statuses)}`);
    // Persisted: the whole plan written as plain creates under the plan lock, then read back.
    threads = await threadClock(service);
    const persisted = await clients.run(applyCalls(true, chunk), CONCURRENCY);
    const persistedCpu = await threads();
    if (persisted.statuses[200] !== PER_ROUND)
      throw new Error(`$apply (persist) answered ${JSON.stringify(persisted.statuses)}`);
    threads = await threadClock(service);
    const writesRun = await runConcurrently(PER_ROUND, CONCURRENCY, (i) =>
      fhir.transaction(planWrites[round * PER_ROUND + i]),
    );
    const writesCpu = await threads();
    const rate = (wallMs: number) => PER_ROUND / (wallMs / 1000);
    return {
      writesRate: rate(writesRun.wallMs),
      writesCpu,
      reads,
      readsCpu,
      readRate: rate(reads.wallMs),
      apply,
      applyCpu,
      applyRate: rate(apply.wallMs),
      persisted,
      persistedCpu,
      persistRate: rate(persisted.wallMs),
    };
  });
  await clients.close();
  const persistRatio = (r: (typeof rounds)[number]) => r.persistRate / r.readRate;
  const {
    reads,
    readsCpu,
    readRate,
    apply,
    applyCpu,
    applyRate,
    persisted,
    persistedCpu,
    persistRate,
    writesRate,
    writesCpu,
  } = medianBy(rounds, persistRatio);
  const readsStoreMs = readsCpu.storeMs / PER_ROUND;

  row('pure engine (no I/O)', `${fmt(engineRate, 0)} patients/s`);
  row(`baseline: FHIR reads $apply needs, one batch (${CONCURRENCY} in flight)`, `${fmt(readRate, 0)} patients/s`);
  row(
    `$apply over HTTP (${CONCURRENCY} in flight; round of the median persisted ratio)`,
    `${fmt(applyRate, 0)} patients/s`,
  );
  row('ratio $apply HTTP / baseline reads', fmt(applyRate / readRate, 2));
  row(
    `$apply over HTTP, persisted, ${ENROLLED + WARM_PATIENTS} or more already enrolled`,
    `${fmt(persistRate, 0)} patients/s`,
  );
  row(
    'ratio persisted $apply / baseline reads (target >= 0.9), median of rounds',
    `${fmt(persistRatio(medianBy(rounds, persistRatio)), 2)} (${rounds.map((r) => fmt(persistRatio(r), 2)).join(' / ')})`,
  );
  row(
    '  rounds (reads / $apply / persisted patients/s)',
    rounds.map((r) => [r.readRate, r.applyRate, r.persistRate].map((x) => fmt(x, 0)).join('/')).join('  '),
  );
  row(
    'CPU ms per patient (process): reads / $apply / persisted',
    [reads, apply, persisted].map((r) => fmt(r.cpuMs / PER_ROUND, 2)).join(' / '),
  );
  row(
    'CPU ms per patient, store thread: reads / $apply / persisted',
    [readsStoreMs, applyCpu.storeMs / PER_ROUND, persistedCpu.storeMs / PER_ROUND].map((ms) => fmt(ms, 2)).join(' / '),
  );
  row(
    'CPU ms per patient, service thread: $apply / persisted',
    [applyCpu, persistedCpu].map((b) => fmt(b.serviceMs / PER_ROUND, 2)).join(' / '),
  );
  row(
    'CPU ms per patient, Redis server: reads / $apply / persisted',
    [readsCpu, applyCpu, persistedCpu].map((b) => fmt(b.redisMs / PER_ROUND, 2)).join(' / '),
  );
  // The store's thread does the FHIR work (the read batch; persisted, the transaction of ~12 creates) whoever sends
  // it: no service could beat this ratio with the same FHIR work.
  row(
    '  bound from the store thread alone: reads / persisted store ms',
    fmt(readsStoreMs / (persistedCpu.storeMs / PER_ROUND), 2),
  );
  row(
    `reference: raw transaction of a plan's creates (${planWrites[0].length} resources; same round)`,
    `${fmt(writesRate, 0)} plans/s, store thread ${fmt(writesCpu.storeMs / PER_ROUND, 2)} ms each`,
  );
  row(
    "  ratio to the baseline reads (what a plan's writes alone allow); persisted $apply / these writes",
    `${fmt(writesRate / readRate, 2)}; ${fmt(persistRate / writesRate, 2)}`,
  );
  row('target persisted $apply >= 100 patients/s', persistRate >= 100 ? 'met' : 'MISSED');
  row('ratio pure engine / baseline reads', fmt(engineRate / readRate, 1));
  await service.stop();
}

/** Patients with the data the protocol reads (a body weight, a blood pressure), created one by one. */
async function createPatients(fhir: FhirClient, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { resource } = await fhir.create<Patient>({ resourceType: 'Patient' });
    await fhir.create(bodyWeight(50 + (i % 60), '2026-11-01T09:00:00Z', `Patient/${resource.id}`));
    await fhir.create(bloodPressure(110 + (i % 80), 70 + (i % 45), '2026-11-01T09:00:00Z', `Patient/${resource.id}`));
    ids.push(resource.id!);
  }
  return ids;
}

runBench(main);
