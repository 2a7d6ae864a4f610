import type { Subscription } from '@medplum/fhirtypes';
import { ownSubscriptionChanges, SUBSCRIPTION_OWNER, subscriptionsFor } from './fhir-subscriptions';

describe('ownSubscriptionChanges (the embedded store brought to the Subscriptions wanted)', () => {
  const wanted = subscriptionsFor({
    endpoint: 'http://127.0.0.1:3000/webhooks/fhir',
    secret: 's1',
    flavour: 'medplum',
  });
  const stored = (subscriptions: Subscription[]) =>
    subscriptions.map((s, i) => ({ ...s, id: `sub-${i}`, meta: { versionId: `v${i}` } }));

  it('creates them all on an empty store, and then has nothing to change', () => {
    expect(ownSubscriptionChanges([], wanted)).toEqual({ create: wanted, update: [], remove: [] });
    expect(ownSubscriptionChanges(stored(wanted), wanted)).toEqual({ create: [], update: [], remove: [] });
  });

  it('points the ones of an earlier start at the new endpoint and secret, and deletes copies and dropped criteria', () => {
    const earlier = subscriptionsFor({
      endpoint: 'http://127.0.0.1:4000/webhooks/fhir',
      secret: 's0',
      flavour: 'medplum',
    });
    const dropped = { ...earlier[0], criteria: 'Encounter' };
    const existing = stored([...earlier, earlier[1], dropped]);
    const { create, update, remove } = ownSubscriptionChanges(existing, wanted);
    expect(create).toEqual([]);
    expect(update).toHaveLength(wanted.length);
    expect(update.map((s) => [s.id, s.channel.endpoint, s.extension?.[0].valueString])).toEqual(
      wanted.map((_, i) => [`sub-${i}`, 'http://127.0.0.1:3000/webhooks/fhir', 's1']),
    );
    expect(remove).toEqual([`sub-${earlier.length}`, `sub-${earlier.length + 1}`]);
  });

  it('leaves Subscriptions it did not write alone', () => {
    const ehrs: Subscription = {
      resourceType: 'Subscription',
      status: 'active',
      reason: "The EHR's own",
      criteria: 'Task',
      channel: { type: 'rest-hook', endpoint: 'https://ehr.example/hook' },
    };
    const { remove, update } = ownSubscriptionChanges(stored([ehrs, ...wanted]), wanted);
    expect(remove).toEqual([]);
    expect(update).toEqual([]);
  });

  it("leaves an EHR integration's alone even if its reason reads like the service's (tagged with its owner)", () => {
    const integrations = {
      ...wanted[0],
      channel: { type: 'rest-hook' as const, endpoint: 'https://ehr.example/hook' },
      meta: { tag: [{ system: SUBSCRIPTION_OWNER, code: 'ehr-1' }] },
    };
    const { remove, update } = ownSubscriptionChanges([{ ...integrations, id: 'theirs' }], wanted);
    expect(remove).toEqual([]);
    expect(update).toEqual([]);
  });
});
