import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { startServiceProcess, type ServiceProcess } from '../support/service-process';
import { TEST_JWT_SECRET } from '../support/test-service';

/**
 * SIGTERM right after Redis came back: BullMQ's Worker.close() waits for ever on a blocking client still
 * reconnecting (taskforcesh/bullmq#4656), so the graceful shutdown never ended and the process never exited. It
 * exits at SHUTDOWN_TIMEOUT_MS now.
 */
describe('shutdown when a graceful close hangs', () => {
  let redis: PrivateRedis;
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    redis = await startPrivateRedis({ appendonly: false });
  });
  afterAll(async () => {
    await service?.kill();
    await redis?.close();
  });

  it('SIGTERM just after a Redis restart: the process exits by SHUTDOWN_TIMEOUT_MS', async () => {
    service = await startServiceProcess({
      REDIS_URL: redis.url,
      FHIR_DATA_DIR: ':memory:',
      JWT_SECRET: TEST_JWT_SECRET,
      QUEUE_PREFIX: `kc-shutdown-${process.pid}`,
      POLL_INTERVAL_MS: '0',
      WORKLIST_RECONCILE_MS: '0',
      DEV_ISSUER: 'false',
      SHUTDOWN_TIMEOUT_MS: '2000',
    });
    await redis.kill();
    await redis.start();
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      service.stop().then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 15_000))),
    ]);
    clearTimeout(timer);
    expect(exited).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);
});
