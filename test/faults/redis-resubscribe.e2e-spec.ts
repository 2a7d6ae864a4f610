import { Redis } from 'ioredis';
import { loadConfig } from '@kc/config';
import { ProtocolChangeBroadcast, type PlanDefinitions } from '@kc/nest-core';
import { waitFor } from '../support/clinic';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

/**
 * The process's one Redis subscriber (protocol changes told to every replica) subscribes again by itself when its
 * connection comes back. A connection that closes for good while that subscription is on its way (the process
 * stopping during a Redis failover) rejected it with no one listening: ioredis 6.0 sent it unguarded, and on Node 24 an
 * unhandled rejection ends the process. It fits what failed the Sentinel failover tests now and then (sessions 38-40:
 * "Connection is closed.", a stack of ioredis's ready check alone, as the resubscribe's is). The shared Redis, behind a proxy of the test's own
 * that cuts the connection and swallows the subscription's second SUBSCRIBE, so that it is pending when the process
 * stops.
 */
describe('Redis: the subscriber stopped while it subscribes again', () => {
  let proxy: TcpProxy;
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    process.on('unhandledRejection', record);
  });
  afterAll(async () => {
    process.off('unhandledRejection', record);
    await proxy?.close();
  });

  it('leaves no unhandled rejection (which would end the process)', async () => {
    const config = loadConfig({
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      QUEUE_PREFIX: `kc-test-resubscribe-${process.pid}`,
    });
    let forgotten = 0;
    const plans = { forgetServerPlans: () => forgotten++ } as unknown as PlanDefinitions;
    const broadcast = new ProtocolChangeBroadcast(config, plans);
    const publisher = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
    await publisher.connect();
    try {
      broadcast.onModuleInit();
      const channel = `${config.queuePrefix}:protocols-changed`;
      await waitFor(async () => (await publisher.publish(channel, 'changed')) > 0 && forgotten > 0, 'the subscription');

      const resubscribing = proxy.withhold('SUBSCRIBE');
      proxy.dropConnections();
      await resubscribing;
      const subscriber = (broadcast as unknown as { subscriber: Redis }).subscriber;
      const ended = new Promise<void>((resolve) => subscriber.once('end', () => resolve()));
      broadcast.onModuleDestroy();
      await ended;
      // An unhandled rejection is reported once the microtasks of the turn that rejected it have run.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      publisher.disconnect();
    }
  });
});
