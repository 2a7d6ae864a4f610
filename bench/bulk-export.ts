import type { Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, matchesOf } from '@kc/fhir';
import { preload, QUICK } from './bench-preload';
import { fmt, header, profiled, row, runBench, startBenchService, timed } from './bench-support';

/**
 * Bulk Data export (`$export`) of every Task of a store holding 100,000 (BENCH_QUICK: 2,000), over HTTP as an EHR
 * integration runs it: kick-off, the worker's pages and files, the client's polls until the manifest, then the
 * downloads. Against the same work sent raw to the FHIR server in the same run: reading every page of the same search
 * (the reads an export needs), and those reads plus writing the same NDJSON as Binaries (everything it needs).
 */
async function main(): Promise<void> {
  header('Bulk Data export of every Task');
  const TASKS = Number(process.env.BENCH_EXPORT_TASKS ?? (QUICK ? 2_000 : 100_000));
  const service = await startBenchService();
  const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, maxAttempts: 1, timeoutMs: 120_000 });
  await preload(fhir, { tasks: TASKS, carePlans: Math.ceil(TASKS / 10) });
  const { maxFileBytes, pageSize } = service.config.bulkExport;
  row('Tasks stored', String(TASKS));
  row('page size, largest file', `${pageSize}, ${fmt(maxFileBytes / 1024 / 1024)} MiB`);

  // Raw: every page of the export's own search, as NDJSON lines, then the same lines written as Binaries.
  const now = new Date().toISOString();
  const raw = await timed(async () => {
    const lines: string[] = [];
    for await (const page of fhir.searchPages<Task>('Task', {
      _lastUpdated: `le${now}`,
      _sort: '_lastUpdated',
      _count: String(pageSize),
    }))
      for (const task of matchesOf(page)) lines.push(JSON.stringify(task));
    return lines;
  });
  const files = inFiles(raw.value, maxFileBytes);
  const rawWrites = await timed(async () => {
    const ids: string[] = [];
    for (const file of files) ids.push(await fhir.createBinary('application/fhir+ndjson', file));
    return ids;
  });
  const rawReadRate = raw.value.length / (raw.ms / 1000);
  const rawAllRate = raw.value.length / ((raw.ms + rawWrites.ms) / 1000);
  row('raw: search pages read', `${fmt(rawReadRate, 0)} resources/s (${fmt(raw.ms / 1000, 2)} s)`);
  row('raw: pages read + NDJSON written as Binaries', `${fmt(rawAllRate, 0)} resources/s (${files.length} files)`);

  const token = await service.token('integration');
  const headers = { authorization: `Bearer ${token}`, prefer: 'respond-async', accept: 'application/fhir+json' };
  let polls = 0;
  let peakRss = 0;
  const exported = await timed(async () => {
    const kickOff = await fetch(`${service.url}/fhir/$export?_type=Task`, { headers });
    if (kickOff.status !== 202) throw new Error(`kick-off answered ${kickOff.status}: ${await kickOff.text()}`);
    const status = kickOff.headers.get('content-location')!;
    for (;;) {
      const answer = await fetch(status, { headers });
      polls++;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      if (answer.status === 200)
        return (await answer.json()) as { output: { url: string; count: number }[]; transactionTime: string };
      if (answer.status !== 202) throw new Error(`status answered ${answer.status}: ${await answer.text()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  const count = exported.value.output.reduce((n, f) => n + f.count, 0);
  if (count !== TASKS) throw new Error(`exported ${count} Tasks of ${TASKS}`);
  const exportRate = count / (exported.ms / 1000);
  row(
    'export: kick-off to manifest',
    `${fmt(exportRate, 0)} resources/s (${fmt(exported.ms / 1000, 2)} s, ${exported.value.output.length} files, ${polls} polls)`,
  );
  row('  ratio to the raw reads', fmt(exportRate / rawReadRate, 2));
  row('  ratio to the raw reads + Binary writes', fmt(exportRate / rawAllRate, 2));
  row('  service RSS at its peak (API + worker + store)', `${fmt(peakRss / 1024 / 1024, 0)} MB`);

  // Downloads: each file through the API (its owner check, the Binary read, the access audit of its patients).
  const download = await profiled('bulk-download', () =>
    timed(async () => {
      let bytes = 0;
      const resources: Resource[] = [];
      for (const file of exported.value.output) {
        const answer = await fetch(file.url, { headers: { authorization: `Bearer ${token}` } });
        const text = await answer.text();
        bytes += Buffer.byteLength(text);
        if (QUICK) for (const line of text.split('\n').filter(Boolean)) resources.push(JSON.parse(line) as Resource);
      }
      return bytes;
    }),
  );
  const rawDownload = await timed(async () => {
    for (const id of rawWrites.value) await fhir.readBinary(id, 'application/fhir+ndjson');
  });
  row(
    'download: every file through the API',
    `${fmt(download.value / 1024 / 1024 / (download.ms / 1000), 1)} MB/s (${fmt(download.value / 1024 / 1024, 1)} MB)`,
  );
  row('  ratio to raw Binary reads of the same files', fmt(rawDownload.ms / download.ms, 2));
  await service.stop();
}

/** Lines as the export cuts them: whole pages up to the largest file (one page more when a file is empty). */
function inFiles(lines: string[], maxBytes: number): string[] {
  const files: string[] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const line of lines) {
    const size = Buffer.byteLength(line) + 1;
    if (current.length && bytes + size > maxBytes) {
      files.push(current.join('\n') + '\n');
      current = [];
      bytes = 0;
    }
    current.push(line);
    bytes += size;
  }
  if (current.length) files.push(current.join('\n') + '\n');
  return files;
}

runBench(main);
