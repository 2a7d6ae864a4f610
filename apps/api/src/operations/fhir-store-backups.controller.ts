import * as path from 'node:path';
import { Controller, Get, HttpCode, Inject, Optional, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Roles } from '@kc/auth';
import { conflict, OutcomeException } from '@kc/common';
import { FHIR_STORE_BACKUPS, type FhirStoreBackupsPort } from './fhir-store-backups.port';

/** Backups of the embedded FHIR store: the ones on disk, and one now (besides the schedule, FHIR_BACKUP_EVERY_HOURS). */
@ApiTags('operations')
@ApiBearerAuth()
@Roles('admin')
@Controller('operations/fhir-store/backups')
export class FhirStoreBackupsController {
  constructor(@Optional() @Inject(FHIR_STORE_BACKUPS) private readonly backups?: FhirStoreBackupsPort | null) {}

  @Get()
  @ApiOperation({ summary: 'The embedded FHIR store’s backups on disk, newest first' })
  list() {
    const backups = this.available();
    return { dir: backups.dir, backups: backups.list() };
  }

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Write a checked backup of the embedded FHIR store now (the store keeps serving)' })
  async create() {
    const backups = this.available();
    try {
      const backup = await backups.backupNow();
      return {
        name: path.basename(backup.file),
        bytes: backup.bytes,
        resources: backup.resources,
        durationMs: backup.durationMs,
      };
    } catch (err) {
      // A full disk or an unwritable directory: the operator's to fix, and the store is untouched.
      throw new OutcomeException(503, 'exception', `The backup failed: ${(err as Error).message}`);
    }
  }

  private available(): FhirStoreBackupsPort {
    if (!this.backups)
      throw conflict(
        'This service has no embedded FHIR store to back up: with FHIR_BASE_URL, back up that server’s database; ' +
          'an in-memory store (FHIR_DATA_DIR=:memory:) is backed up only when FHIR_BACKUP_DIR is set',
      );
    return this.backups;
  }
}
