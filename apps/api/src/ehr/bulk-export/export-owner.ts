import type { Caller } from '@kc/auth';
import { notFound } from '@kc/common';
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

/** Where the API serves an export's status, and its files. */
export function statusUrl(base: string, id: string): string {
  return `${base}/fhir/bulk-export/${id}`;
}
