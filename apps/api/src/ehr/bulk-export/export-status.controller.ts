import { Controller, Delete, Get, HttpCode, Inject, Param, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Roles } from '@kc/auth';
import { OutcomeException } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { BulkExports } from '@kc/queue';
import { manifestOf, progressText } from '@kc/bulk-data';
import { ownedExport, statusUrl } from './export-owner';
import { searchingCaller } from '../searchable-types';

/** How soon a client polling a running export asks again. */
const POLL_AGAIN_SECONDS = 2;

/**
 * A bulk export's status (the IG's status request): 202 with `X-Progress` while it is written, 200 with its manifest
 * once it is (its files' URLs, `Expires` when they go), the error as an OperationOutcome if it failed; DELETE cancels
 * it and deletes its files.
 */
@ApiTags('ehr')
@ApiBearerAuth()
@Controller('fhir/bulk-export')
export class ExportStatusController {
  constructor(
    private readonly exports: BulkExports,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'bulkExport'>,
  ) {}

  @Get(':id')
  @Roles('integration')
  @ApiOperation({ summary: 'Status of a bulk export: 202 with X-Progress, or 200 with its manifest' })
  async status(@Param('id') id: string, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const caller = searchingCaller(req);
    const exported = ownedExport(await this.exports.get(id), caller);
    if (exported.status === 'queued' || exported.status === 'in-progress') {
      res.status(202).setHeader('X-Progress', progressText(exported)).setHeader('Retry-After', POLL_AGAIN_SECONDS);
      return undefined;
    }
    if (exported.status === 'failed')
      throw new OutcomeException(
        500,
        'exception',
        `The bulk export failed: ${exported.error ?? 'no reason recorded'}. Ask for it again (files written so far are deleted).`,
      );
    const base = statusUrl(`${req.protocol}://${req.get('host')}`, id);
    if (exported.finishedAt)
      res.setHeader(
        'Expires',
        new Date(Date.parse(exported.finishedAt) + this.config.bulkExport.retentionMs).toUTCString(),
      );
    res.status(200).type('application/json');
    return manifestOf(exported, (index) => `${base}/file/${index}`);
  }

  @Delete(':id')
  @HttpCode(202)
  @Roles('integration')
  @ApiOperation({ summary: 'Cancel a bulk export (or delete a finished one): its files are deleted' })
  async cancel(@Param('id') id: string, @Req() req: Request): Promise<void> {
    const caller = searchingCaller(req);
    ownedExport(await this.exports.get(id), caller);
    await this.exports.cancel(id);
  }
}
