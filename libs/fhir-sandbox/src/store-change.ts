/**
 * A committed create, update or delete (SqliteRepository's `onCommitted`): the version written, or for a deletion the
 * last version, as stored JSON.
 */
export interface StoreChange {
  interaction: 'create' | 'update' | 'delete';
  resourceType: string;
  id: string;
  content: string;
}
