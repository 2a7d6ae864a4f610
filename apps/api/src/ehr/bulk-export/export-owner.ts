import type { Caller } from '@kc/auth';
import { notFound, OutcomeException } from '@kc/common';
import type { BulkExport } from '@kc/bulk-data';

/**
 * An export as its owner (or an administrator) may see it; anyone else, and one cancelled or expired, is told it does
 * not exist (404), so an export's id tells nobody else that it is there.
 */
export function ownedExport(exported: BulkExport | undefined, caller: Caller): BulkExport {
  if (!exported || exported.status === 'cancelled' || (exported.owner !== caller.id && !caller.roles.includes('admin')))
    throw notFound('No such bulk export (finished exports are kept for a day, cancelled ones not at all)');
  return exported;
}

/**
 * A caller whose token may read none of the types this API exports has no business with any export (403, before
 * anything is looked up); one that may, is then held to the export being theirs (ownedExport).
 */
export function mayExport(allowed: readonly string[]): void {
  if (!allowed.length)
    throw new OutcomeException(403, 'forbidden', 'This token may read none of the types this server exports');
}

/** Where the API serves an export's status, and its files. */
export function statusUrl(base: string, id: string): string {
  return `${base}/fhir/bulk-export/${id}`;
}
