import { randomUUID } from 'node:crypto';
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Group, OperationOutcome, Parameters } from '@medplum/fhirtypes';
import type { Request, Response } from 'express';
import { Roles, scopesGranting, type Caller } from '@kc/auth';
import { isResourceId, notFound, operationOutcome, OutcomeException } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { BulkExports } from '@kc/queue';
import { exportRequested, groupPatients, type ExportLevel, type KickOff } from '@kc/bulk-data';
import { AuditsPatientAccess } from '../../audit/patient-access.decorator';
import { exportKickOffAccess, type ExportKickOffRequest } from '../../audit/patient-accesses';
import { exportableTypes } from './exportable-types';
import { statusUrl } from './export-owner';
import { searchingCaller } from '../searchable-types';
import { ExportRequestMetrics } from './export-request.metrics';

/** How long a client waits before asking again when it has as many exports running as it may. */
const BUSY_RETRY_SECONDS = 30;

/**
 * Bulk Data export kick-off (FHIR Bulk Data Access IG): `$export` of everything this API reads, or of every patient's
 * data (`Patient/$export`, POST naming `patient`s for some), written in the background as NDJSON files. Answered 202
 * with the status URL in `Content-Location`.
 */
@ApiTags('ehr')
@ApiBearerAuth()
@Controller('fhir')
export class ExportKickOffController {
  constructor(
    private readonly exports: BulkExports,
    private readonly fhir: FhirClient,
    private readonly metrics: ExportRequestMetrics,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'bulkExport'>,
  ) {}

  @Get('\\$export')
  @HttpCode(202)
  @Roles('integration')
  @AuditsPatientAccess(exportKickOffAccess)
  @ApiOperation({ summary: 'Bulk Data export of every resource this API reads (Prefer: respond-async)' })
  systemGet(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<OperationOutcome> {
    return this.kickOff('system', 'GET', () => queryParams(req), req, res);
  }

  @Post('\\$export')
  @HttpCode(202)
  @Roles('integration')
  @AuditsPatientAccess(exportKickOffAccess)
  @ApiOperation({ summary: 'Bulk Data export, parameters as a FHIR Parameters resource' })
  systemPost(
    @Body() body: unknown,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<OperationOutcome> {
    return this.kickOff('system', 'POST', () => parametersOf(body), req, res);
  }

  @Get('Patient/\\$export')
  @HttpCode(202)
  @Roles('integration')
  @AuditsPatientAccess(exportKickOffAccess)
  @ApiOperation({ summary: "Bulk Data export of every patient's data (Prefer: respond-async)" })
  patientGet(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<OperationOutcome> {
    return this.kickOff('patient', 'GET', () => queryParams(req), req, res);
  }

  @Post('Patient/\\$export')
  @HttpCode(202)
  @Roles('integration')
  @AuditsPatientAccess(exportKickOffAccess)
  @ApiOperation({ summary: "Bulk Data export of every patient's data, or of the patients named (Parameters)" })
  patientPost(
    @Body() body: unknown,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<OperationOutcome> {
    return this.kickOff('patient', 'POST', () => parametersOf(body), req, res);
  }

  @Get('Group/:id/\\$export')
  @HttpCode(202)
  @Roles('integration')
  @AuditsPatientAccess(exportKickOffAccess)
  @ApiOperation({ summary: "Bulk Data export of a Group's patients' data (a cohort the EHR keeps on the FHIR server)" })
  groupGet(
    @Param('id') id: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<OperationOutcome> {
    return this.kickOff('group', 'GET', () => queryParams(req), req, res, id);
  }

  @Post('Group/:id/\\$export')
  @HttpCode(202)
  @Roles('integration')
  @AuditsPatientAccess(exportKickOffAccess)
  @ApiOperation({ summary: "Bulk Data export of a Group's patients' data, or of those of them named (Parameters)" })
  groupPost(
    @Param('id') id: string,
    @Body() body: unknown,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<OperationOutcome> {
    return this.kickOff('group', 'POST', () => parametersOf(body), req, res, id);
  }

  /** A kick-off, counted by what came of it (kc_bulk_export_requests_total). */
  private async kickOff(
    level: ExportLevel,
    method: 'GET' | 'POST',
    params: () => Record<string, string[]>,
    req: Request,
    res: Response,
    groupId?: string,
  ): Promise<OperationOutcome> {
    try {
      const accepted = await this.begin(level, method, params, req, res, groupId);
      this.metrics.requests.inc({ level, result: 'accepted' });
      return accepted;
    } catch (err) {
      const status = err instanceof OutcomeException ? err.getStatus() : 0;
      if (status >= 400 && status < 500)
        this.metrics.requests.inc({ level, result: status === 429 ? 'throttled' : 'refused' });
      throw err;
    }
  }

  private async begin(
    level: ExportLevel,
    method: 'GET' | 'POST',
    params: () => Record<string, string[]>,
    req: Request,
    res: Response,
    groupId?: string,
  ): Promise<OperationOutcome> {
    const caller = searchingCaller(req);
    const types = exportableTypes(level, caller);
    const kickOff: KickOff = { level, method, params: params(), prefer: req.get('prefer'), accept: req.get('accept') };
    // The request checked first; then, at Group level, whose data it is (the Group read once it is worth reading).
    let answer = exportRequested(kickOff, types);
    if (answer.accepted && groupId !== undefined)
      answer = exportRequested({ ...kickOff, groupMembers: await this.groupMembers(groupId, caller) }, types);
    if (!answer.accepted)
      throw new OutcomeException(answer.status, answer.status === 403 ? 'forbidden' : 'invalid', answer.reason);
    if ((await this.exports.runningFor(caller.id)) >= this.config.bulkExport.perClient) {
      res.setHeader('Retry-After', String(BUSY_RETRY_SECONDS));
      throw new OutcomeException(
        429,
        'throttled',
        `This client has ${this.config.bulkExport.perClient} bulk exports running already; ask again when one has finished (or cancel one)`,
      );
    }
    (req as ExportKickOffRequest).exportPatients = answer.request.patients;
    const id = randomUUID();
    const base = `${req.protocol}://${req.get('host')}`;
    await this.exports.begin({
      ...answer.request,
      id,
      owner: caller.id,
      requestUrl: `${base}${req.originalUrl}`,
      transactionTime: new Date().toISOString(),
      status: 'queued',
      written: {},
      output: [],
    });
    res.setHeader('Content-Location', statusUrl(base, id));
    const accepted = operationOutcome(
      'information',
      'informational',
      `Bulk export accepted: ${answer.request.types.join(', ')}. Ask its status at the Content-Location.`,
    );
    if (!answer.ignored.length) return accepted;
    // Prefer: handling=lenient: what was left out is said, so the client knows the files are not filtered by it.
    const ignored = operationOutcome(
      'warning',
      'not-supported',
      `Ignored, not supported: ${answer.ignored.join(', ')}`,
    );
    return { ...accepted, issue: [...accepted.issue, ...ignored.issue] };
  }

  /** The Group's patients, as the FHIR server has it now (404 when it has none such). */
  private async groupMembers(id: string, caller: Caller): Promise<string[]> {
    if (!isResourceId(id)) throw new OutcomeException(400, 'invalid', 'Malformed Group id');
    if (
      caller.scopes &&
      !scopesGranting(caller.scopes, { resourceType: 'Group', interaction: 'r', params: {} }, ['user', 'system']).length
    )
      throw new OutcomeException(
        403,
        'forbidden',
        'A Group export needs a scope that reads the Group (system/Group.r)',
      );
    const group = await this.fhir.readIfExists<Group>('Group', id);
    if (!group) throw notFound(`Group/${id} is not found on the FHIR server`);
    return groupPatients(group);
  }
}

/** A query's parameters, each with every value it was given. */
function queryParams(req: Request): Record<string, string[]> {
  const params: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const [name, value] of new URL(req.originalUrl, 'http://here').searchParams) (params[name] ??= []).push(value);
  return params;
}

/** A POSTed Parameters resource's values by name (strings, instants, references), as a query would give them. */
function parametersOf(body: unknown): Record<string, string[]> {
  const parameters = body as Parameters | undefined;
  if (parameters?.resourceType !== 'Parameters')
    throw new OutcomeException(400, 'invalid', 'POST $export takes a FHIR Parameters resource');
  const params: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const p of Array.isArray(parameters.parameter) ? parameters.parameter : []) {
    const value =
      p.valueString ?? p.valueInstant ?? p.valueDateTime ?? p.valueCode ?? p.valueUri ?? p.valueReference?.reference;
    if (!p.name || value === undefined)
      throw new OutcomeException(400, 'invalid', `Parameter "${p.name ?? ''}" has no value this server reads`);
    (params[p.name] ??= []).push(value);
  }
  return params;
}
