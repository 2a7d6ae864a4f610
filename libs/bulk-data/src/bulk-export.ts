import type { ExportRequest } from './export-kick-off';

/**
 * One bulk export as the service keeps it while it runs and until its files expire: what was asked, how far the
 * worker has got, the files written. References and counts only: no patient data.
 */
export interface BulkExport extends ExportRequest {
  id: string;
  /** Who asked (the token's subject): the only caller, with administrators, who may read its status and files. */
  owner: string;
  /** The kick-off URL as the client sent it (the manifest's `request`). */
  requestUrl: string;
  /** The server's time when the export was asked for: nothing changed after it is written. */
  transactionTime: string;
  status: 'queued' | 'in-progress' | 'completed' | 'failed' | 'cancelled';
  /** Matches per type, counted before the first file (for progress). */
  totals?: Record<string, number>;
  /** Resources written per type so far. */
  written: Record<string, number>;
  output: ExportFile[];
  /** Where the worker goes on from after a restart: nothing written after it. */
  position?: ExportPosition;
  /** Why it failed (no patient data: a FHIR server's refusal, by status). */
  error?: string;
  finishedAt?: string;
}

/** One NDJSON file: the Binary on the FHIR server that holds it, its type and how many resources it holds. */
export interface ExportFile {
  type: string;
  binary: string;
  count: number;
}

/**
 * The next page to write: the `type`-th type, its `chunk`-th group of patients (0 with no patients named), and the
 * server's next link to it (none: that search's first page); `fromFile`: the first file that search wrote.
 */
export interface ExportPosition {
  type: number;
  chunk: number;
  next?: string;
  fromFile?: number;
}

/** Patients named per search (`patient=Patient/a,Patient/b,...`), so a search's URL stays short. */
export const PATIENTS_PER_SEARCH = 50;

/**
 * The patient groups each type is searched by: one search over all patients when none are named, none when the export
 * is of nobody (a Group with no patient).
 */
export function patientChunks(exported: Pick<BulkExport, 'patients'>): (string[] | undefined)[] {
  if (exported.patients === undefined) return [undefined];
  const patients = exported.patients;
  const chunks: string[][] = [];
  for (let i = 0; i < patients.length; i += PATIENTS_PER_SEARCH)
    chunks.push(patients.slice(i, i + PATIENTS_PER_SEARCH));
  return chunks;
}

/** Where to go on once a search has been written whole: its next patient group, else the next type's first. */
export function afterSearch(exported: Pick<BulkExport, 'patients'>, at: ExportPosition): ExportPosition {
  return at.chunk + 1 < patientChunks(exported).length
    ? { type: at.type, chunk: at.chunk + 1 }
    : { type: at.type + 1, chunk: 0 };
}

/**
 * A search begun again from its first page, because the server no longer has the next link it was to follow (HAPI
 * forgets a search's pages an hour after it was last read): the files it wrote so far are dropped (the caller deletes
 * them), so no resource is written twice.
 */
export function searchBegunAgain(
  exported: BulkExport,
  at: ExportPosition,
): { exported: BulkExport; dropped: ExportFile[] } {
  const from = Math.min(at.fromFile ?? exported.output.length, exported.output.length);
  const dropped = exported.output.slice(from);
  const written = { ...exported.written };
  for (const file of dropped) written[file.type] = (written[file.type] ?? 0) - file.count;
  return {
    exported: {
      ...exported,
      output: exported.output.slice(0, from),
      written,
      position: { type: at.type, chunk: at.chunk, fromFile: from },
    },
    dropped,
  };
}

/**
 * The search for one type (and patient group): changed after `_since`, not after the transaction time (what changed
 * since is the next export's), oldest first so the server pages by cursor (Medplum, the embedded store) and a resumed
 * export follows the same pages.
 */
export function exportSearch(
  exported: Pick<BulkExport, 'since' | 'transactionTime' | 'filters'>,
  type: string,
  patients: string[] | undefined,
  pageSize: number,
): Record<string, string | string[]> {
  const filter = exported.filters?.[type] ?? {};
  return {
    // The type's _typeFilter first: its `_lastUpdated`, if any, is kept beside the export's own.
    ...filter,
    _lastUpdated: [
      ...(filter._lastUpdated ?? []),
      ...(exported.since ? [`gt${exported.since}`] : []),
      `le${exported.transactionTime}`,
    ],
    _sort: '_lastUpdated',
    _count: String(pageSize),
    ...(patients && { patient: patients.join(',') }),
  };
}

/**
 * Whether the file being filled is written before a page is added to it: it would pass the largest file written
 * (a file holds whole pages, so a resumed export starts at a page; a page larger than that is a file of its own).
 */
export function writeBeforeAdding(fileBytes: number, pageBytes: number, maxFileBytes: number): boolean {
  return fileBytes > 0 && fileBytes + pageBytes > maxFileBytes;
}

/** How far an export has got, for `X-Progress` and the queue dashboard: under 100 until it has finished. */
export function percentDone(exported: Pick<BulkExport, 'totals' | 'written' | 'status'>): number {
  if (exported.status === 'completed') return 100;
  const total = Object.values(exported.totals ?? {}).reduce((a, b) => a + b, 0);
  if (!exported.totals || total === 0) return 0;
  return Math.min(99, Math.floor((100 * resourcesWritten(exported)) / total));
}

/** Resources written to its files so far, every type. */
export function resourcesWritten(exported: Pick<BulkExport, 'written'>): number {
  return Object.values(exported.written).reduce((a, b) => a + b, 0);
}

/**
 * The `X-Progress` text (the IG: a short status such as "50% complete"): how much of what, in words; once it has
 * finished, how it ended (what an operator's list shows).
 */
export function progressText(exported: BulkExport): string {
  if (exported.status === 'completed') return '100% complete';
  if (exported.status === 'failed' || exported.status === 'cancelled') return exported.status;
  if (exported.status === 'queued') return 'queued';
  if (!exported.totals) return 'counting resources';
  const type = exported.types[exported.position?.type ?? 0];
  const now =
    type && exported.totals[type] !== undefined
      ? ` (${type}: ${number(exported.written[type] ?? 0)} of ${number(exported.totals[type])})`
      : '';
  return `${percentDone(exported)}% complete${now}`;
}

/** The Bulk Data manifest of a completed export, its files at the URLs the API serves them from. */
export function manifestOf(exported: BulkExport, fileUrl: (index: number) => string) {
  return {
    transactionTime: exported.transactionTime,
    request: exported.requestUrl,
    requiresAccessToken: true,
    output: exported.output.map((file, index) => ({ type: file.type, url: fileUrl(index), count: file.count })),
    error: [] as { type: string; url: string }[],
  };
}

function number(n: number): string {
  return n.toLocaleString('en-US');
}
