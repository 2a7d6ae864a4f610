import type { Caller } from '@kc/auth';
import type { ExportableTypes, ExportLevel } from '@kc/bulk-data';
import { ADMIN_ONLY_TYPES, READABLE_TYPES, type ReadableType } from '../read-search-params';
import { searchableTypes } from '../searchable-types';

const ALL = Object.keys(READABLE_TYPES) as ReadableType[];
/** A patient's data: the types searched by patient (their compartment here). */
const PATIENT_DATA = ALL.filter((type) => (READABLE_TYPES[type] as readonly string[]).includes('patient'));

/**
 * What a caller may export at a level: the types this API reads, those they may search across patients
 * (searchableTypes), the audit trail for administrators and only when named.
 */
export function exportableTypes(level: ExportLevel, caller: Caller): ExportableTypes {
  // A Group's patients' data is of the same types as every patient's.
  const known = level === 'system' ? ALL : PATIENT_DATA;
  // A _typeFilter searches by what the read API lets an EHR search by.
  return {
    known,
    allowed: searchableTypes(caller, known),
    onlyWhenNamed: ADMIN_ONLY_TYPES,
    searchParams: READABLE_TYPES,
  };
}
