import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Roles } from '@kc/auth';
import { notFound, OutcomeException } from '@kc/common';
import { FhirClient, FhirNotFoundError } from '@kc/fhir';
import { BulkExports } from '@kc/queue';
import { NDJSON } from '@kc/bulk-data';
import { AuditsPatientAccess } from '../../audit/patient-access.decorator';
import { exportFileAccess } from '../../audit/patient-accesses';
import { ownedExport } from './export-owner';
import { searchableTypes, searchingCaller } from '../searchable-types';

/**
 * One file of a completed bulk export, as NDJSON (the manifest's `requiresAccessToken`: the same token, or an
 * administrator's). Read from the Binary that holds it on the FHIR server; each download audited with the patients
 * whose data it held.
 */
@ApiTags('ehr')
@ApiBearerAuth()
@Controller('fhir/bulk-export')
export class ExportFilesController {
  constructor(
    private readonly exports: BulkExports,
    private readonly fhir: FhirClient,
  ) {}

  @Get(':id/file/:index')
  @Roles('integration')
  @AuditsPatientAccess(exportFileAccess)
  @ApiOperation({ summary: 'A file of a completed bulk export (application/fhir+ndjson)' })
  async file(
    @Param('id') id: string,
    @Param('index') index: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<string> {
    const caller = searchingCaller(req);
    const exported = ownedExport(await this.exports.get(id), caller);
    const file =
      exported.status === 'completed' && /^\d{1,6}$/.test(index) ? exported.output[Number(index)] : undefined;
    if (!file) throw notFound(`Bulk export ${id} has no file ${index}`);
    // Its token's scopes now (narrowed since the kick-off, maybe) must still read the file's type.
    if (!searchableTypes(caller).some((type) => type === file.type))
      throw new OutcomeException(403, 'forbidden', `This token may not read ${file.type}`);
    try {
      const content = await this.fhir.readBinary(file.binary, NDJSON);
      res.type(NDJSON);
      return content;
    } catch (err) {
      if (err instanceof FhirNotFoundError) throw notFound(`Bulk export ${id}'s file ${index} has been deleted`);
      throw err;
    }
  }
}
