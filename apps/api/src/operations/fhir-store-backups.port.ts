/**
 * The embedded FHIR store's backups, when this process holds the store (the composition root provides them from
 * libs/fhir-sandbox; the API knows only this port). Absent with an external FHIR server: its database is backed up
 * where it runs.
 */
export interface FhirStoreBackupsPort {
  /** Where the backups are written (FHIR_BACKUP_DIR). */
  readonly dir: string;
  backupNow(): Promise<{ file: string; bytes: number; resources: number; durationMs: number }>;
  /** Newest first. */
  list(): { name: string; bytes: number; createdAt: string }[];
}

export const FHIR_STORE_BACKUPS = Symbol('FHIR_STORE_BACKUPS');
