import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type { BulkExport } from '@kc/bulk-data';
import { JOBS, retryOptions } from './jobs';
import { whileQueueConnected } from './infusion-events.producer';
import { QUEUES } from './queue-names';
import { queueRedis } from './redis-connection';

const SWAP = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1 end return 0`;

/** An export job's payload: the export's id (what to write is in its record). */
export interface BulkExportJob {
  exportId: string;
}

/**
 * Bulk exports as the API and the worker share them: each export's record in Redis (`<prefix>:bulk-export:<id>`,
 * JSON: what was asked, how far it got, the Binaries holding its files; no patient data) and its jobs on the exports
 * queue: one that writes the files, one that deletes them when they expire or the client cancels. Any replica answers
 * a status request; the FHIR server holds the files.
 */
@Injectable()
export class BulkExports {
  constructor(
    @InjectQueue(QUEUES.exports) private readonly queue: Queue<BulkExportJob>,
    @Inject(APP_CONFIG)
    private readonly config: Pick<AppConfig, 'queuePrefix' | 'bulkExport' | 'jobAttempts' | 'jobBackoffMs'>,
  ) {}

  /** Keeps the export's record and queues its job. */
  async begin(exported: BulkExport): Promise<void> {
    await whileQueueConnected(this.queue, () => this.keep(exported));
  }

  private async keep(exported: BulkExport): Promise<void> {
    const redis = await this.redis();
    await redis
      .multi()
      .set(this.key(exported.id), JSON.stringify(exported), 'PX', this.recordLifetimeMs())
      .sadd(this.ownerKey(exported.owner), exported.id)
      .pexpire(this.ownerKey(exported.owner), this.recordLifetimeMs())
      .exec();
    await this.queue.add(
      JOBS.writeBulkExport,
      { exportId: exported.id },
      this.jobOptions(`${JOBS.writeBulkExport}-${exported.id}`),
    );
  }

  /** The export's record; Redis not connected: QueueUnavailableError at once (a status request answers 503). */
  async get(id: string): Promise<BulkExport | undefined> {
    const stored = await whileQueueConnected(this.queue, async () => (await this.redis()).get(this.key(id)));
    return stored ? (JSON.parse(stored) as BulkExport) : undefined;
  }

  /**
   * Changes the record as `change` says, unless the client has cancelled it (or it is gone): then undefined, and the
   * caller stops (the worker deletes what it wrote since). Optimistic: tried again when the record changed meanwhile.
   */
  async update(id: string, change: (exported: BulkExport) => BulkExport): Promise<BulkExport | undefined> {
    return this.changed(id, (current) => (current.status === 'cancelled' ? undefined : change(current)));
  }

  /** Finished (completed or failed): its files are deleted once the retention has passed. */
  async finished(exported: BulkExport): Promise<void> {
    await this.queueDeletion(exported.id, this.config.bulkExport.retentionMs);
  }

  /**
   * Cancelled by the client (DELETE of its status URL): marked so at once (its status is then 404, and the worker
   * stops at its next page), and its files deleted now. False when there was no such export.
   */
  async cancel(id: string): Promise<boolean> {
    return whileQueueConnected(this.queue, () => this.markCancelled(id));
  }

  private async markCancelled(id: string): Promise<boolean> {
    if (!(await this.changed(id, (current) => ({ ...current, status: 'cancelled' })))) return false;
    await this.queueDeletion(id, 0);
    return true;
  }

  /**
   * The record changed as `change` says (undefined: left as it is), by compare and set: written only if it is still
   * as read (a Lua script, atomic on a connection BullMQ shares; WATCH would be that connection's state), else read
   * and changed again. Undefined when there is none, or `change` left it.
   */
  private async changed(
    id: string,
    change: (current: BulkExport) => BulkExport | undefined,
  ): Promise<BulkExport | undefined> {
    const redis = await this.redis();
    for (;;) {
      const stored = await redis.get(this.key(id));
      const next = stored ? change(JSON.parse(stored) as BulkExport) : undefined;
      if (!stored || !next) return undefined;
      if ((await redis.eval(SWAP, 1, this.key(id), stored, JSON.stringify(next))) === 1) return next;
    }
  }

  /**
   * Every export on record (queued, running, or finished and not yet expired), newest first, at most `limit`: for an
   * operator, who sees who is taking which data out. Redis not connected: QueueUnavailableError at once.
   */
  async all(limit = 200): Promise<BulkExport[]> {
    return whileQueueConnected(this.queue, async () => {
      const redis = await this.redis();
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', this.key('*'), 'COUNT', 500);
        keys.push(...found);
        cursor = next;
      } while (cursor !== '0');
      const stored = keys.length ? await redis.mget(keys) : [];
      return stored
        .flatMap((s) => (s ? [JSON.parse(s) as BulkExport] : []))
        .filter((e) => e.status !== 'cancelled')
        .sort((a, b) => b.transactionTime.localeCompare(a.transactionTime))
        .slice(0, limit);
    });
  }

  /** The record and its owner's note of it, once its files are deleted. */
  async forget(exported: Pick<BulkExport, 'id' | 'owner'>): Promise<void> {
    await (
      await this.redis()
    )
      .multi()
      .del(this.key(exported.id))
      .srem(this.ownerKey(exported.owner), exported.id)
      .exec();
  }

  /** How many of the owner's exports are queued or being written now. */
  async runningFor(owner: string): Promise<number> {
    return whileQueueConnected(this.queue, () => this.countRunning(owner));
  }

  private async countRunning(owner: string): Promise<number> {
    const redis = await this.redis();
    const ids = await redis.smembers(this.ownerKey(owner));
    if (!ids.length) return 0;
    const stored = await redis.mget(ids.map((id) => this.key(id)));
    const gone = ids.filter((_, i) => !stored[i]);
    if (gone.length) await redis.srem(this.ownerKey(owner), ...gone);
    return stored.filter((s) => s && ['queued', 'in-progress'].includes((JSON.parse(s) as BulkExport).status)).length;
  }

  /** The deletion job of an export, after `delayMs`; one already waiting (a finished export cancelled) runs now. */
  private async queueDeletion(id: string, delayMs: number): Promise<void> {
    const jobId = `${JOBS.deleteBulkExport}-${id}`;
    const waiting = await this.queue.getJob(jobId);
    if (waiting && (await waiting.isDelayed())) {
      if (delayMs === 0) await waiting.promote();
      return;
    }
    if (waiting && (await waiting.isFailed())) await waiting.remove();
    await this.queue.add(JOBS.deleteBulkExport, { exportId: id }, { ...this.jobOptions(jobId), delay: delayMs });
  }

  /** Both jobs of an export: keyed by it, retried as every job is, a failed one kept a week for the operator. */
  private jobOptions(jobId: string) {
    return { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600 } };
  }

  /** Long enough to outlive its deletion job (which deletes it), short enough that a lost one goes by itself. */
  private recordLifetimeMs(): number {
    return this.config.bulkExport.retentionMs + 7 * 24 * 3600_000;
  }

  private redis(): Promise<Redis> {
    return queueRedis(this.queue);
  }

  private key(id: string): string {
    return `${this.config.queuePrefix}:bulk-export:${id}`;
  }

  private ownerKey(owner: string): string {
    return `${this.config.queuePrefix}:bulk-exports-of:${owner}`;
  }
}
