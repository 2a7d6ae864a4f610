import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { PlanDefinition } from '@medplum/fhirtypes';
import type { AppConfig } from '@kc/config';
import type { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { PlanDefinitions } from './plan-definitions';
import { ProtocolChangeBroadcast } from './protocol-change-broadcast';

const catalog = ProtocolCatalog.fromDirectory(join(__dirname, '../../../fhir-profiles'));
const URL = 'http://ehr.example/PlanDefinition/broadcast-series';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('ProtocolChangeBroadcast', () => {
  const prefix = `kc-test-broadcast-${randomUUID()}`;
  const config = { queuePrefix: prefix, redisUrl: REDIS_URL } as unknown as AppConfig;
  const started: ProtocolChangeBroadcast[] = [];
  const redis = new Redis(REDIS_URL);
  afterAll(() => {
    for (const b of started) b.onModuleDestroy();
    redis.disconnect();
  });

  /** A replica: its own protocols read from a FHIR server holding `stored` (reads counted), and its broadcast. */
  function replica(stored: PlanDefinition[]) {
    let reads = 0;
    const fhir = {
      searchAll: () => {
        reads++;
        return Promise.resolve(stored.filter((p) => p.url === URL));
      },
    } as unknown as FhirClient;
    const protocols = new PlanDefinitions(catalog, fhir);
    const broadcast = new ProtocolChangeBroadcast(config, protocols);
    broadcast.onModuleInit();
    started.push(broadcast);
    return { protocols, broadcast, reads: () => reads };
  }

  it('a protocol change heard by one replica has every other read it again at once, not 30 s later', async () => {
    const stored: PlanDefinition[] = [
      { resourceType: 'PlanDefinition', id: 'v1', url: URL, version: '1', status: 'active', action: [] },
    ];
    const notified = replica(stored);
    const other = replica(stored);
    const channel = `${prefix}:protocols-changed`;
    await waitUntil(async () => ((await redis.pubsub('NUMSUB', channel)) as [string, number])[1] === 2);
    expect((await other.protocols.ofCanonical(`${URL}|1`))?.plan.status).toBe('active');
    const readsBefore = other.reads();
    // Kept: asked again, the other replica does not read it again.
    await other.protocols.ofCanonical(`${URL}|1`);
    expect(other.reads()).toBe(readsBefore);

    stored[0] = { ...stored[0], status: 'retired' };
    await notified.broadcast.changed();
    // The other replica reads it again, and sees the change.
    await waitUntil(async () => (await other.protocols.ofCanonical(`${URL}|1`))?.plan.status === 'retired');
    expect(other.reads()).toBeGreaterThan(readsBefore);
  });
});

async function waitUntil(probe: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
