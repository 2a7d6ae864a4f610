import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, FhirNotFoundError, matchesOf, searchEach } from '@kc/fhir';
import { BulkExports } from '@kc/queue';
import {
  afterSearch,
  exportSearch,
  NDJSON,
  patientChunks,
  percentDone,
  searchBegunAgain,
  writeBeforeAdding,
  withElements,
  type BulkExport,
  type ExportPosition,
} from '@kc/bulk-data';
import { requiredElements } from './required-elements';
import { BulkExportMetrics } from './bulk-export.metrics';

/** How a run ended: written whole, or stopped because the client cancelled it (or it expired) meanwhile. */
export type ExportRun = 'completed' | 'cancelled';

/** One page of a search, its resources as NDJSON lines, and the link that fetched it (none: the first page). */
interface Page {
  lines: string[];
  bytes: number;
  fetchedBy?: string;
  next?: string;
}

/**
 * Writes a bulk export's NDJSON files: each type's search (per group of patients named), oldest change first, read a
 * page at a time and written to the FHIR server as Binaries of whole pages, the record updated after each file with
 * where to go on. A worker that dies, or a FHIR server that fails a request, costs the file being filled: the job's
 * next attempt goes on from the last file written (no resource twice, none left out).
 */
@Injectable()
export class BulkExportWriter {
  private readonly logger = new Logger(BulkExportWriter.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly exports: BulkExports,
    private readonly metrics: BulkExportMetrics,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'bulkExport'>,
  ) {}

  async write(id: string, progress: (percent: number) => Promise<unknown>): Promise<ExportRun> {
    let exported = await this.exports.get(id);
    if (!exported || exported.status === 'cancelled') return 'cancelled';
    if (exported.status === 'completed' || exported.status === 'failed') return 'completed';
    if (!exported.totals) {
      const totals = await this.count(exported);
      exported = await this.exports.update(id, (e) => ({ ...e, status: 'in-progress', totals }));
      if (!exported) return 'cancelled';
    }
    // An export of nobody's data (a Group with no patient) has no search to write: it is complete, with no file.
    const searches = patientChunks(exported).length ? exported.types.length : 0;
    for (let at = exported.position ?? { type: 0, chunk: 0 }; at.type < searches;) {
      const written = await this.writeSearch(exported, at, progress);
      if (!written) return 'cancelled';
      exported = written;
      at = afterSearch(exported, at);
    }
    const finishedAt = new Date().toISOString();
    const done = await this.exports.update(id, (e) => ({ ...e, status: 'completed', position: undefined, finishedAt }));
    if (!done) return 'cancelled';
    await this.exports.finished(done);
    this.metrics.finished.inc({ result: 'completed' });
    this.logger.log({ msg: 'bulk export written', export: id, files: done.output.length, types: done.types.length });
    return 'completed';
  }

  /** Failed for good (its attempts spent): said so in its record; its files so far go at the retention's end. */
  async failed(id: string, reason: string): Promise<void> {
    const finishedAt = new Date().toISOString();
    const failed = await this.exports.update(id, (e) => ({ ...e, status: 'failed', error: reason, finishedAt }));
    if (!failed) return;
    await this.exports.finished(failed);
    this.metrics.finished.inc({ result: 'failed' });
  }

  /** Every match of every search, counted in one batch before the first file: what progress is measured against. */
  private async count(exported: BulkExport): Promise<Record<string, number>> {
    const chunks = patientChunks(exported);
    const searches = exported.types.flatMap((type) =>
      chunks.map((patients, chunk) => ({
        name: `${type}|${chunk}`,
        resourceType: type,
        params: { ...exportSearch(exported, type, patients, 1), _count: '0', _total: 'accurate' },
      })),
    );
    // A hundred searches a batch: a Group of thousands is searched 50 patients at a time.
    const found: Record<string, Bundle> = {};
    for (let i = 0; i < searches.length; i += 100)
      Object.assign(found, await searchEach(this.fhir, searches.slice(i, i + 100)));
    const totals: Record<string, number> = {};
    for (const search of searches)
      totals[search.resourceType] = (totals[search.resourceType] ?? 0) + (found[search.name].total ?? 0);
    return totals;
  }

  /**
   * One search written from `at` to its last page, a file each time the next page would make it too large. The record
   * as updated after its last file, or undefined when the export was cancelled meanwhile. A next link the server no
   * longer has (404/410: HAPI's `_getpages` expire) begins the search again, its files so far dropped; once.
   */
  private async writeSearch(
    exported: BulkExport,
    at: ExportPosition,
    progress: (percent: number) => Promise<unknown>,
    begunAgain = false,
  ): Promise<BulkExport | undefined> {
    const from: ExportPosition = at.next ? at : { ...at, fromFile: exported.output.length };
    try {
      return await this.writePages(exported, from, progress);
    } catch (err) {
      if (!(err instanceof PageLinkGone) || begunAgain) throw err;
      let dropped: string[] = [];
      const again = await this.exports.update(exported.id, (current) => {
        const begun = searchBegunAgain(current, from);
        dropped = begun.dropped.map((file) => file.binary);
        return begun.exported;
      });
      if (!again) return undefined;
      for (const binary of dropped) await this.fhir.delete('Binary', binary);
      this.logger.warn({ msg: 'bulk export search begun again: its page link was gone', export: exported.id });
      return this.writeSearch(again, again.position!, progress, true);
    }
  }

  private async writePages(
    exported: BulkExport,
    at: ExportPosition,
    progress: (percent: number) => Promise<unknown>,
  ): Promise<BulkExport | undefined> {
    const type = exported.types[at.type];
    const patients = patientChunks(exported)[at.chunk];
    const { maxFileBytes } = this.config.bulkExport;
    let file: Page = { lines: [], bytes: 0 };
    let current = exported;
    const shape = shapeOf(exported);
    for (let page = await this.firstPage(exported, type, patients, at.next, shape); ;) {
      if (writeBeforeAdding(file.bytes, page.bytes, maxFileBytes)) {
        const updated = await this.writeFile(current, type, file.lines, { ...at, next: page.fetchedBy });
        if (!updated) return undefined;
        current = updated;
        await progress(percentDone(current));
        file = { lines: [], bytes: 0 };
      }
      file.lines.push(...page.lines);
      file.bytes += page.bytes;
      if (!page.next) break;
      page = await this.pageAt(page.next, shape);
    }
    return this.writeFile(current, type, file.lines, afterSearch(exported, at));
  }

  /** The page a next link names; the server no longer having it is PageLinkGone. */
  private async pageAt(next: string, shape: Shape): Promise<Page> {
    try {
      return pageOf(await this.fhir.searchPageAt(next), shape, next);
    } catch (err) {
      if (err instanceof FhirNotFoundError) throw new PageLinkGone();
      throw err;
    }
  }

  private async firstPage(
    exported: BulkExport,
    type: string,
    patients: string[] | undefined,
    next: string | undefined,
    shape: Shape,
  ): Promise<Page> {
    if (next) return this.pageAt(next, shape);
    const search = exportSearch(exported, type, patients, this.config.bulkExport.pageSize);
    return pageOf(await this.fhir.search(type as ResourceType, search), shape);
  }

  /**
   * A file written as a Binary and named in the record with where to go on after it (an empty one only moves the
   * position). Undefined when the export was cancelled while it was being written: the Binary is deleted again.
   */
  private async writeFile(
    exported: BulkExport,
    type: string,
    lines: string[],
    position: ExportPosition,
  ): Promise<BulkExport | undefined> {
    const binary = lines.length ? await this.fhir.createBinary(NDJSON, lines.join('\n') + '\n') : undefined;
    const updated = await this.exports.update(exported.id, (e) => ({
      ...e,
      position,
      ...(binary && {
        output: [...e.output, { type, binary, count: lines.length }],
        written: { ...e.written, [type]: (e.written[type] ?? 0) + lines.length },
      }),
    }));
    if (binary) {
      if (!updated) await this.fhir.delete('Binary', binary);
      else this.metrics.resources.inc({ type }, lines.length);
    }
    return updated;
  }
}

/** How each resource is written: as read, or with the elements `_elements` asked (and those it must keep). */
type Shape = (resource: Resource) => Resource;

function shapeOf(exported: BulkExport): Shape {
  const { elements } = exported;
  return elements ? (resource) => withElements(resource, elements, requiredElements) : (resource) => resource;
}

/** A search's next link the server no longer has (HAPI's answer to an expired `_getpages`: 410). */
class PageLinkGone extends Error {}

function pageOf(bundle: Bundle, shape: Shape, fetchedBy?: string): Page {
  const lines = matchesOf<Resource>(bundle).map((resource) => JSON.stringify(shape(resource)));
  const next = (bundle.entry ?? []).length ? bundle.link?.find((l) => l.relation === 'next')?.url : undefined;
  return { lines, bytes: lines.reduce((n, line) => n + Buffer.byteLength(line) + 1, 0), fetchedBy, next };
}
