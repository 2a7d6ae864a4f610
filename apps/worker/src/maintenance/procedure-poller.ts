import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { Procedure } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { InfusionEventsProducer, QUEUES } from '@kc/queue';

/** Where polling got to: the newest lastUpdated seen, and the ids already taken at exactly that instant. */
interface PollCursor {
  since: string;
  seenAtSince: string[];
}

const START: PollCursor = { since: '1970-01-01T00:00:00.000Z', seenAtSince: [] };

/**
 * Polling fallback for FHIR servers without subscriptions: completed Procedures by _lastUpdated. The cursor
 * lives in Redis, so a restart resumes where it stopped; `ge` plus the ids seen at the boundary instant means
 * an update landing in the same millisecond is neither missed nor taken twice. The cursor is saved only after
 * the events are queued, so a crash in between re-queues them (deduplicated by job id) instead of losing them.
 */
@Injectable()
export class ProcedurePoller {
  private readonly logger = new Logger(ProcedurePoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: InfusionEventsProducer,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private get cursorKey(): string {
    return `${this.config.queuePrefix}:poll-cursor:procedures`;
  }

  async poll(): Promise<{ enqueued: number; cursor: PollCursor }> {
    const redis = await this.queue.client;
    const cursor: PollCursor = JSON.parse((await redis.get(this.cursorKey)) ?? 'null') ?? START;
    const changed = await this.fhir.searchAll<Procedure>('Procedure', { status: 'completed', _lastUpdated: `ge${cursor.since}`, _sort: '_lastUpdated', _count: 100 });
    const seen = new Set(cursor.seenAtSince);
    const fresh = changed.filter((p) => p.id && !(p.meta?.lastUpdated === cursor.since && seen.has(p.id)));
    for (const procedure of fresh) await this.producer.enqueue(procedure.id!, 'poll');
    const next = advance(cursor, changed);
    await redis.set(this.cursorKey, JSON.stringify(next));
    if (fresh.length) this.logger.log({ msg: 'poll queued infusion events', count: fresh.length });
    return { enqueued: fresh.length, cursor: next };
  }
}

function advance(cursor: PollCursor, changed: Procedure[]): PollCursor {
  let next = cursor;
  for (const procedure of changed) {
    const at = procedure.meta?.lastUpdated;
    if (!at || !procedure.id) continue;
    if (Date.parse(at) > Date.parse(next.since)) next = { since: at, seenAtSince: [procedure.id] };
    else if (at === next.since && !next.seenAtSince.includes(procedure.id)) next = { since: at, seenAtSince: [...next.seenAtSince, procedure.id] };
  }
  return next;
}
