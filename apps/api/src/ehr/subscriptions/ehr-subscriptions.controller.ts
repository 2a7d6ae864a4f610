import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Bundle, Subscription } from '@medplum/fhirtypes';
import type { Request, Response } from 'express';
import { Roles, type Caller } from '@kc/auth';
import { isResourceId, notFound, OutcomeException } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { AuditsPatientAccess } from '../../audit/patient-access.decorator';
import { subscriptionCreateAccess } from '../../audit/patient-accesses';
import { asShown, isOwnedBy, SUBSCRIPTION_OWNER, subscriptionToWrite } from './subscription-request';
import { searchingCaller } from '../searchable-types';

/** Subscriptions one client may hold here: each is a standing disclosure the FHIR server acts on. */
const MAX_PER_CLIENT = 50;

/**
 * FHIR Subscriptions (R4, rest-hook) for EHR integrations: instead of polling the read API, an integration subscribes
 * to a search it may run (`Task?patient=...`), and the FHIR server posts each matching change to its endpoint (an
 * origin the operator allows), signed with its secret. Created, listed, read and deleted here with the caller's role,
 * scopes and ownership checked; delivered by the FHIR server (Medplum, the embedded store).
 */
@ApiTags('ehr')
@ApiBearerAuth()
@Roles('integration')
@Controller('fhir/Subscription')
export class EhrSubscriptionsController {
  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'subscriptionEndpointOrigins'>,
  ) {}

  @Post()
  @HttpCode(201)
  @AuditsPatientAccess(subscriptionCreateAccess)
  @ApiOperation({ summary: 'Subscribe an endpoint to the changes matching a search (rest-hook)' })
  async create(
    @Body() body: unknown,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<Subscription> {
    const caller = searchingCaller(req);
    const subscription = subscriptionToWrite(body, caller, this.config.subscriptionEndpointOrigins);
    const held = await this.fhir.search('Subscription', { _tag: ownerTag(caller), _summary: 'count' });
    if ((held.total ?? 0) >= MAX_PER_CLIENT)
      throw new OutcomeException(
        422,
        'business-rule',
        `This client holds ${MAX_PER_CLIENT} subscriptions already: delete one it no longer needs`,
      );
    const { resource } = await this.fhir.create<Subscription>(subscription);
    res.setHeader('Location', `${req.protocol}://${req.get('host')}/fhir/Subscription/${resource.id}`);
    return asShown(resource);
  }

  @Get()
  @ApiOperation({ summary: "The caller's Subscriptions (searchset)" })
  async list(@Req() req: Request): Promise<Bundle<Subscription>> {
    const mine = await this.fhir.searchAll<Subscription>('Subscription', {
      _tag: ownerTag(searchingCaller(req)),
      _count: 100,
    });
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      total: mine.length,
      entry: mine.map((s) => ({ resource: asShown(s), search: { mode: 'match' as const } })),
    };
  }

  @Get(':id')
  @ApiOperation({ summary: "One of the caller's Subscriptions" })
  async read(@Param('id') id: string, @Req() req: Request): Promise<Subscription> {
    return asShown(await this.owned(id, searchingCaller(req)));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: "Delete one of the caller's Subscriptions: its notifications stop" })
  async delete(@Param('id') id: string, @Req() req: Request): Promise<void> {
    await this.owned(id, searchingCaller(req));
    await this.fhir.delete('Subscription', id);
  }

  /** The Subscription when the caller owns it; 404 otherwise (another's, the service's own, or none). */
  private async owned(id: string, caller: Caller): Promise<Subscription> {
    if (!isResourceId(id)) throw notFound(`No such Subscription of this client`);
    const subscription = await this.fhir.readIfExists<Subscription>('Subscription', id);
    if (!subscription || !isOwnedBy(subscription, caller)) throw notFound(`No Subscription ${id} of this client`);
    return subscription;
  }
}

function ownerTag(caller: Caller): string {
  return `${SUBSCRIPTION_OWNER}|${caller.id}`;
}
