import type { AuditEvent, Bundle, BundleEntry } from '@medplum/fhirtypes';
import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { FhirUnavailableError, type FhirClient } from '@kc/fhir';
import { AuditTrail } from './audit-trail';

/** The trail's batching and retries against a FHIR client stand-in that fails when told to. */
describe('AuditTrail', () => {
  const event = (n: number): AuditEvent => ({
    resourceType: 'AuditEvent',
    type: { code: 'rest' },
    recorded: new Date(n).toISOString(),
    agent: [{ requestor: true, altId: `a${n}` }],
    source: { observer: { display: 'test' } },
  });

  function trailWith(answer: (entries: BundleEntry[]) => Promise<Bundle>) {
    const batches: string[][] = [];
    const fhir = {
      batch: (entries: BundleEntry[]) => {
        batches.push(entries.map((e) => (e.resource as AuditEvent).agent[0].altId!));
        return answer(entries);
      },
    } as unknown as FhirClient;
    const registry = new Registry();
    return { trail: new AuditTrail(fhir, registry), batches, registry };
  }
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
