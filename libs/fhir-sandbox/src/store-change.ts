/**
 * A committed create, update or delete (SqliteRepository's `onCommitted`): the version written, or for a deletion the
 * last version, as stored JSON.
 */
export interface StoreChange {
  interaction: 'create' | 'update' | 'delete';
  resourceType: string;
  id: string;
  content: string;
  /**
   * Its row in the store's notification outbox, written in the same commit: kept until its notifications are sent
   * or given up, so that a stop before then has them sent at the next start. Undefined when nobody subscribes to it.
   */
  outboxId?: number;
}
