import { Logger } from '@nestjs/common';
import type { Resource } from '@medplum/fhirtypes';
import type { ChangePoll, PollCursors } from './change-polls';
import { queueChangedSince } from './cursor-poll';

/**
 * A poll of one cursor that queues each resource changed since it for its job (queueChangedSince): the polling fallbacks
 * for what other systems write (appointments, closed orders, administrations, resolved issues, Tasks changed in the
 * EHR, deaths). A subclass says what it searches, which job it queues and which resources have one; this keeps the
 * cursor, the count and the log line (ids and counts only).
 */
export abstract class QueuingPoll<T extends Resource> implements ChangePoll {
  abstract readonly name: string;
  /** Its cursor's key in Redis (under `<prefix>:poll-cursor:`). */
  protected abstract readonly cursor: string;
  /** What it queues, as the log line says it ("closed orders"). */
  protected abstract readonly queuedWhat: string;
  private readonly logger = new Logger(this.constructor.name);

  protected constructor(private readonly pollCursors: PollCursors) {}

  get cursors(): readonly string[] {
    return [this.cursor];
  }

  /** The resources changed since `from` (inclusive), by `_lastUpdated`. */
  protected abstract changedSince(from: string): Promise<T[]>;

  /** Its job, queued (by id: the job reads it again and decides). */
  protected abstract enqueue(id: string, resource: T): Promise<unknown>;

  /** Whether it has a job; the others still move the cursor. */
  protected keep(_resource: T): boolean {
    return true;
  }

  async poll(): Promise<{ queued: number }> {
    const queued = await queueChangedSince(
      await this.pollCursors.of(this.cursor),
      (from) => this.changedSince(from),
      (id, resource) => this.enqueue(id, resource),
      (resource) => this.keep(resource),
    );
    if (queued) this.logger.log({ msg: `poll queued ${this.queuedWhat}`, count: queued });
    return { queued };
  }
}
