import { RestHookDeliveries, type ActiveSubscription, type Delivery } from './rest-hook-deliveries';

const subscription: ActiveSubscription = {
  resourceType: 'Subscription',
  id: 'sub-1',
  status: 'active',
  reason: 'test',
  criteria: 'Task',
  channel: { type: 'rest-hook', endpoint: 'https://example.org/hook' },
};

const delivery = (id: string): Delivery => ({
  subscriptionId: 'sub-1',
  change: { interaction: 'create', resourceType: 'Task', id, content: `{"resourceType":"Task","id":"${id}"}` },
  versionId: 'v1',
  attempt: 1,
});

describe('RestHookDeliveries', () => {
  it('keeps at most maxPending notifications: past it a new one is dropped, counted and logged once', async () => {
    const answers: (() => void)[] = [];
    const fetch = jest.fn(
      () => new Promise<Response>((resolve) => answers.push(() => resolve(new Response(null, { status: 200 })))),
    );
    const log = jest.fn<void, [string, string, Record<string, unknown>]>();
    const deliveries = new RestHookDeliveries({
      repo: { readResource: jest.fn() },
      subscription: () => subscription,
      log,
      fetch,
      concurrency: 1,
      maxPending: 2,
    });
    for (const id of ['a', 'b', 'c', 'd']) deliveries.add(delivery(id));
    expect(deliveries.stats()).toMatchObject({ pending: 2, dropped: 2, delivered: 0 });
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0][1]).toBe('Subscription notifications dropped: the queue is full');
    // Both kept are sent, one at a time, in the order they came.
    answers.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
    answers.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(deliveries.stats()).toMatchObject({ pending: 0, delivered: 2, dropped: 2 });
    expect(fetch.mock.calls.map((c) => (c as unknown as [string, { body: string }])[1].body)).toEqual([
      '{"resourceType":"Task","id":"a"}',
      '{"resourceType":"Task","id":"b"}',
    ]);
    deliveries.close();
  });

  it('sends nothing to a Subscription gone since the change was matched', async () => {
    const fetch = jest.fn();
    const deliveries = new RestHookDeliveries({
      repo: { readResource: jest.fn() },
      subscription: () => undefined,
      log: jest.fn(),
      fetch,
    });
    deliveries.add(delivery('a'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(fetch).not.toHaveBeenCalled();
    expect(deliveries.stats()).toMatchObject({ pending: 0, delivered: 0, dropped: 0 });
  });
});
