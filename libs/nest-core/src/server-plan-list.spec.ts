import type { PlanDefinition } from '@medplum/fhirtypes';
import { ServerPlanList } from './server-plan-list';

const plan = (id: string, lastUpdated: string): PlanDefinition => ({
  resourceType: 'PlanDefinition',
  id,
  status: 'active',
  meta: { lastUpdated },
});

/** A server's PlanDefinitions, answering "every one" or "updated at or after", with the reads it was asked for. */
function server(...stored: PlanDefinition[]) {
  const asked: (string | undefined)[] = [];
  const read = (since?: string) => {
    asked.push(since);
    return Promise.resolve(stored.filter((p) => !since || p.meta!.lastUpdated! >= since));
  };
  return { stored, asked, read };
}

describe('the FHIR server’s PlanDefinitions, kept up to date', () => {
  it('reads them whole once, then only what changed since the newest, at most every 30 s', async () => {
    const fhir = server(plan('a', '2027-01-01T00:00:00Z'), plan('b', '2027-01-02T00:00:00Z'));
    const list = new ServerPlanList(fhir.read);
    expect((await list.get(0)).map((p) => p.id)).toEqual(['a', 'b']);
    expect((await list.get(10_000)).map((p) => p.id)).toEqual(['a', 'b']);
    expect(fhir.asked).toEqual([undefined]);

    fhir.stored.push(plan('c', '2027-01-03T00:00:00Z'));
    fhir.stored[0] = plan('a', '2027-01-04T00:00:00Z');
    expect((await list.get(30_000)).map((p) => p.id).sort()).toEqual(['a', 'b', 'c']);
    // Before session 38 every check read the whole list.
    expect(fhir.asked).toEqual([undefined, '2027-01-02T00:00:00Z']);
    expect((await list.get(60_000)).map((p) => p.meta?.lastUpdated).sort()).toEqual([
      '2027-01-02T00:00:00Z',
      '2027-01-03T00:00:00Z',
      '2027-01-04T00:00:00Z',
    ]);
    expect(fhir.asked[2]).toBe('2027-01-04T00:00:00Z');
  });

  it('reads them whole every 15 min and after clear(): a deletion nobody told leaves the list', async () => {
    const fhir = server(plan('a', '2027-01-01T00:00:00Z'), plan('b', '2027-01-02T00:00:00Z'));
    const list = new ServerPlanList(fhir.read);
    await list.get(0);
    fhir.stored.splice(0, 1);
    expect((await list.get(15 * 60_000)).map((p) => p.id)).toEqual(['b']);
    fhir.stored.splice(0, 1);
    list.clear();
    expect(await list.get(15 * 60_000 + 1)).toEqual([]);
    expect(fhir.asked).toEqual([undefined, undefined, undefined]);
  });

  it('one read for callers asking at once', async () => {
    const fhir = server(plan('a', '2027-01-01T00:00:00Z'));
    const list = new ServerPlanList(fhir.read);
    await Promise.all([list.get(0), list.get(0), list.get(0)]);
    expect(fhir.asked).toHaveLength(1);
  });
});
