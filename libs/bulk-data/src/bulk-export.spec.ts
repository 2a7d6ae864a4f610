import {
  afterSearch,
  exportSearch,
  manifestOf,
  patientChunks,
  percentDone,
  searchBegunAgain,
  progressText,
  writeBeforeAdding,
  type BulkExport,
} from './bulk-export';

const exported = (more: Partial<BulkExport> = {}): BulkExport => ({
  id: 'e1',
  owner: 'ehr',
  requestUrl: 'https://api.test/fhir/$export',
  level: 'system',
  types: ['CarePlan', 'Task'],
  transactionTime: '2026-12-07T10:00:00.000Z',
  status: 'in-progress',
  written: {},
  output: [],
  ...more,
});

describe('bulk export rules', () => {
  it('searches each type changed after _since and not after the transaction time, oldest first (cursor paging)', () => {
    expect(exportSearch(exported(), 'Task', undefined, 1000)).toEqual({
      _lastUpdated: ['le2026-12-07T10:00:00.000Z'],
      _sort: '_lastUpdated',
      _count: '1000',
    });
    expect(
      exportSearch(exported({ since: '2026-12-01T00:00:00.000Z' }), 'Task', ['Patient/a', 'Patient/b'], 20),
    ).toEqual({
      _lastUpdated: ['gt2026-12-01T00:00:00.000Z', 'le2026-12-07T10:00:00.000Z'],
      _sort: '_lastUpdated',
      _count: '20',
      patient: 'Patient/a,Patient/b',
    });
  });

  it("adds a type's _typeFilter to its search, its _lastUpdated beside the export's own", () => {
    const filtered = exported({ filters: { Task: { status: ['draft'], _lastUpdated: ['ge2026-01-01'] } } });
    expect(exportSearch(filtered, 'Task', undefined, 20)).toEqual({
      status: ['draft'],
      _lastUpdated: ['ge2026-01-01', 'le2026-12-07T10:00:00.000Z'],
      _sort: '_lastUpdated',
      _count: '20',
    });
    expect(exportSearch(filtered, 'CarePlan', undefined, 20)).not.toHaveProperty('status');
  });

  it('groups named patients 50 to a search, and goes on group by group, then type by type', () => {
    const patients = Array.from({ length: 120 }, (_, i) => `Patient/${i}`);
    expect(patientChunks(exported({ patients })).map((c) => c?.length)).toEqual([50, 50, 20]);
    expect(patientChunks(exported())).toEqual([undefined]);
    expect(patientChunks(exported({ patients: [] }))).toEqual([]);
    expect(afterSearch(exported({ patients }), { type: 0, chunk: 1, next: 'x' })).toEqual({ type: 0, chunk: 2 });
    expect(afterSearch(exported({ patients }), { type: 0, chunk: 2 })).toEqual({ type: 1, chunk: 0 });
    expect(afterSearch(exported(), { type: 1, chunk: 0 })).toEqual({ type: 2, chunk: 0 });
  });

  it('begins a search again without the files it wrote, counting them out', () => {
    const before = exported({
      written: { CarePlan: 3, Task: 50 },
      output: [
        { type: 'CarePlan', binary: 'b1', count: 3 },
        { type: 'Task', binary: 'b2', count: 20 },
        { type: 'Task', binary: 'b3', count: 30 },
      ],
    });
    const { exported: again, dropped } = searchBegunAgain(before, { type: 1, chunk: 0, next: 'gone', fromFile: 1 });
    expect(dropped.map((f) => f.binary)).toEqual(['b2', 'b3']);
    expect(again.output.map((f) => f.binary)).toEqual(['b1']);
    expect(again.written).toEqual({ CarePlan: 3, Task: 0 });
    expect(again.position).toEqual({ type: 1, chunk: 0, fromFile: 1 });
  });

  it('writes a file before the page that would pass the largest size; a larger page is a file of its own', () => {
    expect(writeBeforeAdding(0, 10_000, 8_000)).toBe(false);
    expect(writeBeforeAdding(5_000, 3_000, 8_000)).toBe(false);
    expect(writeBeforeAdding(5_000, 3_001, 8_000)).toBe(true);
  });

  it('says how far it has got: queued, counting, then a share of every match and the type being written', () => {
    expect(progressText(exported({ status: 'queued' }))).toBe('queued');
    expect(progressText(exported())).toBe('counting resources');
    const half = exported({
      totals: { CarePlan: 10, Task: 2_000 },
      written: { CarePlan: 10, Task: 995 },
      position: { type: 1, chunk: 0 },
    });
    expect(progressText(half)).toBe('50% complete (Task: 995 of 2,000)');
    // Never 100 until it has finished; nothing to write is no progress yet.
    expect(percentDone({ ...half, written: { CarePlan: 10, Task: 2_000 } })).toBe(99);
    expect(percentDone({ ...half, totals: { CarePlan: 0, Task: 0 } })).toBe(0);
    expect(percentDone({ ...half, status: 'completed' })).toBe(100);
    // Finished: how it ended, not the type it was at.
    expect(progressText({ ...half, status: 'completed', position: undefined })).toBe('100% complete');
    expect(progressText({ ...half, status: 'failed' })).toBe('failed');
  });

  it("names each file at the API's URL with its type and count, the request and its transaction time", () => {
    const done = exported({
      status: 'completed',
      output: [
        { type: 'CarePlan', binary: 'b1', count: 3 },
        { type: 'Task', binary: 'b2', count: 40 },
      ],
    });
    expect(manifestOf(done, (i) => `https://api.test/fhir/bulk-export/e1/file/${i}`)).toEqual({
      transactionTime: '2026-12-07T10:00:00.000Z',
      request: 'https://api.test/fhir/$export',
      requiresAccessToken: true,
      output: [
        { type: 'CarePlan', url: 'https://api.test/fhir/bulk-export/e1/file/0', count: 3 },
        { type: 'Task', url: 'https://api.test/fhir/bulk-export/e1/file/1', count: 40 },
      ],
      error: [],
    });
  });
});
