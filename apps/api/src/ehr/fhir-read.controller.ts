import { Controller, Get, Param, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Bundle, CapabilityStatement, Resource } from '@medplum/fhirtypes';
import type { Request } from 'express';
import { Public, Roles, type AuthenticatedRequest } from '@kc/auth';
import { badRequest, isResourceId, OutcomeException } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { apiCapabilityStatement } from './api-capability-statement';
import { readScope, type ReadScope } from './read-scopes';
import {
  ADMIN_ONLY_TYPES,
  exactlyTheUrlAsked,
  onlyEntriesOf,
  readableType,
  readSearchParams,
  type ReadableType,
} from './read-search-params';
import { AuditsPatientAccess } from '../audit/patient-access.decorator';
import { ehrReadAccess, ehrSearchAccess } from '../audit/patient-accesses';

/**
 * Ordinary FHIR search and read of CarePlans and Tasks for EHR integrations, served from the FHIR server with
 * parameters allow-listed and paging links rewritten to point here.
 */
@ApiTags('ehr')
@ApiBearerAuth()
@Controller('fhir')
export class FhirReadController {
  constructor(
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
  ) {}

  @Public()
  @Get('metadata')
  @ApiOperation({ summary: 'CapabilityStatement of this API' })
  metadata(@Req() req: Request): CapabilityStatement {
    return apiCapabilityStatement(
      `${req.protocol}://${req.get('host')}/fhir`,
      this.catalog.planDefinitions().map((p) => `${p.url}|${p.version}`),
      this.catalog.resourceProfiles(),
    );
  }

  @Get(':type')
  @AuditsPatientAccess(ehrSearchAccess)
  @Roles('integration', 'clinician')
  @ApiOperation({ summary: 'Search CarePlan or Task (searchset Bundle, paged with next links)' })
  async search(
    @Param('type') type: string,
    @Query() query: Record<string, unknown>,
    @Req() req: Request,
  ): Promise<Bundle> {
    const resourceType = readableType(type);
    onlyAdminsRead(resourceType, req);
    const params = readSearchParams(resourceType, query);
    withinScopes(readScope((req as AuthenticatedRequest).caller!, resourceType, 's', params));
    // HAPI pages through the base URL (?_getpages=...), not the type.
    const bundle = exactlyTheUrlAsked(
      onlyEntriesOf(
        params._getpages
          ? await this.fhir.operation<Bundle>(`?${new URLSearchParams(params).toString()}`)
          : await this.fhir.search(resourceType, params),
        resourceType,
      ),
      params.url,
    );
    const here = `${req.protocol}://${req.get('host')}/fhir/${resourceType}`;
    return {
      ...bundle,
      link: bundle.link?.map((link) => ({ ...link, url: link.url ? `${here}${new URL(link.url).search}` : link.url })),
    };
  }

  @Get(':type/:id')
  @AuditsPatientAccess(ehrReadAccess)
  @Roles('integration', 'clinician')
  @ApiOperation({ summary: 'Read a CarePlan or Task' })
  async read(@Param('type') type: string, @Param('id') id: string, @Req() req: Request): Promise<Resource> {
    const resourceType = readableType(type);
    onlyAdminsRead(resourceType, req);
    if (!isResourceId(id)) throw badRequest('Malformed resource id');
    const scope = withinScopes(readScope((req as AuthenticatedRequest).caller!, resourceType, 'r'));
    return scope.patient ? this.readInRecordOf(scope.patient, resourceType, id) : this.fhir.read(resourceType, id);
  }

  /**
   * Under a `patient/` scope, a resource by id only as the FHIR server finds it in that patient's record: 404 for one
   * outside it as for one that does not exist, so the scope does not tell another patient's ids from none.
   */
  private async readInRecordOf(patient: string, resourceType: ReadableType, id: string): Promise<Resource> {
    const found = await this.fhir.search(resourceType, { _id: id, patient, _count: '1', _total: 'none' });
    const resource = found.entry?.find((e) => e.resource?.id === id)?.resource;
    if (!resource)
      throw new OutcomeException(404, 'not-found', `${resourceType}/${id} is not found in the launch patient's record`);
    return resource;
  }
}

function withinScopes(scope: ReadScope): Extract<ReadScope, { allowed: true }> {
  if (!scope.allowed) throw new OutcomeException(403, 'forbidden', scope.reason);
  return scope;
}

/** The audit trail is the administrators' (403 for anyone else, itself recorded as a refused access). */
function onlyAdminsRead(type: string, req: AuthenticatedRequest): void {
  if (ADMIN_ONLY_TYPES.has(type) && !req.caller?.roles.includes('admin'))
    throw new OutcomeException(403, 'forbidden', `${type} is for administrators only`);
}
