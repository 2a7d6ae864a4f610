import { createHash } from 'node:crypto';

/**
 * A UUID derived from a key: the same CarePlan/Task key always gives the same urn:uuid, so a transaction
 * built twice from the same input is byte-for-byte the same and references between entries stay stable.
 */
export function uuidFromKey(key: string): string {
  const hex = createHash('sha256').update(key).digest('hex');
  // Shape of a version-4 UUID (variant bits set) so servers that validate fullUrl accept it.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function shortHash(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 20);
}
