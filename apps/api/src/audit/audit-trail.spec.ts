import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AuditEvent, Bundle, BundleEntry } from '@medplum/fhirtypes';
import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { FhirUnavailableError, type FhirClient } from '@kc/fhir';
import { AUDIT_KEY_SYSTEM } from '@kc/protocols';
import { AuditSpool } from './audit-spool';
import { AuditTrail } from './audit-trail';

/** The trail's batching and retries against a FHIR client stand-in that fails when told to. */
describe('AuditTrail', () => {
  const event = (n: number): AuditEvent => ({
    resourceType: 'AuditEvent',
    type: { code: 'rest' },
    recorded: new Date(n).toISOString(),
    meta: { tag: [{ system: AUDIT_KEY_SYSTEM, code: `key-${n}` }] },
    agent: [{ requestor: true, altId: `a${n}` }],
    source: { observer: { display: 'test' } },
  });

  /** A trail over a FHIR client stand-in; `spoolDir` as AUDIT_SPOOL_DIR (in memory by default). */
  function trailWith(
    answer: (entries: BundleEntry[]) => Promise<Bundle>,
    spoolDir = ':memory:',
    fhirBaseUrl = 'http://fhir.test/R4',
  ) {
    const batches: string[][] = [];
    const conditions: (string | undefined)[][] = [];
    const fhir = {
      batch: (entries: BundleEntry[]) => {
        batches.push(entries.map((e) => (e.resource as AuditEvent).agent[0].altId!));
        conditions.push(entries.map((e) => e.request?.ifNoneExist));
        return answer(entries);
      },
    } as unknown as FhirClient;
    const registry = new Registry();
    const config = { auditSpoolDir: spoolDir, fhirBaseUrl };
    return { trail: new AuditTrail(fhir, registry, config), batches, conditions, registry };
  }
  const down = () => Promise.reject(new FhirUnavailableError('down'));
  const ok = (entries: BundleEntry[]): Promise<Bundle> =>
    Promise.resolve({
      resourceType: 'Bundle',
      type: 'batch-response',
      entry: entries.map(() => ({ response: { status: '201 Created' } })),
    });
  const metric = async (registry: Registry, name: string) =>
    (await registry.getSingleMetric(name)!.get()).values.map((v): [string, number] => [
      String(v.labels.result ?? ''),
      v.value,
    ]);

  beforeAll(() => {
    Logger.overrideLogger(false);
  });
  afterEach(() => jest.useRealTimers());

  it('writes what arrives while a batch is in flight as the next batch, in order', async () => {
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const { trail, batches, registry } = trailWith(async (entries) => {
      if (calls++ === 0) await first;
      return ok(entries);
    });
    trail.record(event(1));
    trail.record(event(2));
    trail.record(event(3));
    release();
    await trail.settled();
    expect(batches).toEqual([['a1'], ['a2', 'a3']]);
    expect(await metric(registry, 'kc_audit_events_total')).toEqual([['written', 3]]);
  });

  it('keeps the events while the FHIR server cannot take them, and writes them, in order, once it can', async () => {
    jest.useFakeTimers();
    let down = true;
    const { trail, batches, registry } = trailWith((entries) =>
      down ? Promise.reject(new FhirUnavailableError('down')) : ok(entries),
    );
    trail.record(event(1));
    await trail.settled();
    trail.record(event(2));
    await trail.settled();
    expect(await metric(registry, 'kc_audit_events_pending')).toEqual([['', 2]]);
    down = false;
    await jest.advanceTimersByTimeAsync(2_000);
    await trail.settled();
    expect(batches.at(-1)).toEqual(['a1', 'a2']);
    expect(await metric(registry, 'kc_audit_events_pending')).toEqual([['', 0]]);
    expect(await metric(registry, 'kc_audit_events_total')).toEqual([['written', 2]]);
  });

  it('counts what the server refused, and does not write it again', async () => {
    const { trail, batches, registry } = trailWith((entries) =>
      Promise.resolve({
        resourceType: 'Bundle',
        type: 'batch-response',
        entry: entries.map((e) => ({
          response: { status: (e.resource as AuditEvent).agent[0].altId === 'a2' ? '400 Bad Request' : '201 Created' },
        })),
      }),
    );
    trail.record(event(1));
    trail.record(event(2));
    await trail.settled();
    trail.record(event(3));
    await trail.settled();
    expect(batches.flat()).toEqual(['a1', 'a2', 'a3']);
    expect(Object.fromEntries(await metric(registry, 'kc_audit_events_total'))).toEqual({ written: 2, refused: 1 });
  });

  it("writes a batch whose request failed again as conditional creates on each event's audit key", async () => {
    jest.useFakeTimers();
    let fail = true;
    const { trail, conditions } = trailWith((entries) => (fail ? down() : ok(entries)));
    trail.record(event(1));
    await trail.settled();
    fail = false;
    trail.record(event(2));
    await jest.advanceTimersByTimeAsync(2_000);
    await trail.settled();
    const key1 = `_tag=${encodeURIComponent(AUDIT_KEY_SYSTEM)}|key-1`;
    // The failed request may have landed (a lost answer): event 1 is written only if it is not there yet.
    expect(conditions).toEqual([[undefined], [key1, undefined]]);
  });

  describe('with a spool directory', () => {
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-audit-spool-'))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
    const spoolFiles = () => fs.readdirSync(dir).filter((f) => f.endsWith('.sqlite'));

    it('a process that stops while the server is down leaves its events to the next, which writes them once', async () => {
      jest.useFakeTimers();
      const first = trailWith(down, dir);
      first.trail.record(event(1));
      first.trail.record(event(2));
      await first.trail.settled();
      await first.trail.onApplicationShutdown();
      expect(spoolFiles()).toHaveLength(1);

      const next = trailWith(ok, dir);
      next.trail.onApplicationBootstrap();
      await next.trail.settled();
      expect(next.batches).toEqual([['a1', 'a2']]);
      // The first process may have written them just before it stopped: conditional on their keys.
      expect(next.conditions[0].every((c) => c?.startsWith('_tag='))).toBe(true);
      expect(Object.fromEntries(await metric(next.registry, 'kc_audit_events_total'))).toEqual({
        adopted: 2,
        written: 2,
      });
      await next.trail.onApplicationShutdown();
      expect(spoolFiles()).toEqual([]);
    });

    it("does not take a running process's events, nor those bound for another FHIR server", async () => {
      const running = trailWith(down, dir);
      running.trail.record(event(1));
      await running.trail.settled();
      const other = trailWith(down, dir);
      other.trail.onApplicationBootstrap();
      await other.trail.settled();
      expect(other.batches).toEqual([]);
      await running.trail.onApplicationShutdown();

      const elsewhere = trailWith(ok, dir, 'http://another-fhir.test/R4');
      elsewhere.trail.onApplicationBootstrap();
      await elsewhere.trail.settled();
      expect(elsewhere.batches).toEqual([]);
      // What it leaves alone is counted, for an operator to see.
      expect(await metric(elsewhere.registry, 'kc_audit_spool_foreign_events')).toEqual([['', 1]]);
      await elsewhere.trail.onApplicationShutdown();
      await other.trail.onApplicationShutdown();
      // The stopped process's file waits for a process bound for its own server, which takes it.
      expect(spoolFiles()).toHaveLength(1);
      const same = trailWith(ok, dir);
      same.trail.onApplicationBootstrap();
      await same.trail.settled();
      expect(same.batches).toEqual([['a1']]);
      await same.trail.onApplicationShutdown();
    });

    it('fsyncs each event when asked (AUDIT_SPOOL_SYNC=full), else only survives the process dying', () => {
      const full = AuditSpool.open(dir, 'http://fhir.test/R4', { sync: 'full' });
      const normal = AuditSpool.open(dir, 'http://fhir.test/R4');
      expect([full.sync, normal.sync, AuditSpool.open(':memory:', '').sync]).toEqual(['full', 'normal', 'memory']);
      full.close();
      normal.close();
    });

    it('removes its spool file when it stops with nothing waiting', async () => {
      const { trail } = trailWith(ok, dir);
      trail.record(event(1));
      await trail.settled();
      expect(spoolFiles()).toHaveLength(1);
      await trail.onApplicationShutdown();
      expect(spoolFiles()).toEqual([]);
    });
  });

  it('at shutdown, writes what is still waiting', async () => {
    jest.useFakeTimers();
    let down = true;
    const { trail, batches } = trailWith((entries) =>
      down ? Promise.reject(new FhirUnavailableError('down')) : ok(entries),
    );
    trail.record(event(1));
    await trail.settled();
    down = false;
    await trail.onApplicationShutdown();
    expect(batches.at(-1)).toEqual(['a1']);
  });
});
