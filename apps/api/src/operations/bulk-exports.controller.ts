import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Roles } from '@kc/auth';
import { BulkExports } from '@kc/queue';
import { percentDone, progressText, resourcesWritten } from '@kc/bulk-data';

/**
 * The bulk exports on record, for an operator: who is taking which data out, how far each has got, and when it ends.
 * References and counts only (the owner is a token's subject: a client or user id).
 */
@ApiTags('operations')
@ApiBearerAuth()
@Roles('admin')
@Controller('operations/bulk-exports')
export class BulkExportsController {
  constructor(private readonly exports: BulkExports) {}

  @Get()
  @ApiOperation({ summary: 'Bulk exports queued, running or finished and not yet expired, newest first (200 at most)' })
  async list() {
    return (await this.exports.all()).map((e) => ({
      id: e.id,
      owner: e.owner,
      level: e.level,
      types: e.types,
      since: e.since,
      patients: e.patients?.length,
      requested: e.transactionTime,
      status: e.status,
      progress: progressText(e),
      percent: percentDone(e),
      files: e.output.length,
      resources: resourcesWritten(e),
      finished: e.finishedAt,
      error: e.error,
    }));
  }
}
