import { Body, Controller, Get, HttpCode, Inject, Logger, Param, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Public } from '@kc/auth';
import { badRequest, notFound } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type { CdsRequest, CdsResponse, CdsServiceDefinition } from './cds-types';
import { CdsClientGuard, publicBaseUrl, type CdsRequestWithClient } from './cds-client.guard';
import { CdsCheckMetrics } from './cds-check.metrics';
import { CdsFeedbackMetrics } from './cds-feedback.metrics';
import { parseFeedback } from './feedback';
import { AppointmentBookService } from './appointment-book.service';
import { OrderSignService } from './order-sign.service';
import { PatientViewService } from './patient-view.service';
import { AuditsPatientAccess } from '../audit/patient-access.decorator';
import { cdsHookAccess } from '../audit/patient-accesses';

const SOURCE_LABEL = 'Ketamine care plans';

/**
 * CDS Hooks 2.0: discovery at GET /cds-services (open: it lists services, no patient data) and the services at
 * POST /cds-services/{id} (CDS client JWT required), and their feedback at POST /cds-services/{id}/feedback. Logs
 * carry ids, counts and durations, never patient data.
 */
@ApiTags('cds-hooks')
@Public() // not the API's user JWTs: service calls are checked by CdsClientGuard
@Controller('cds-services')
export class CdsHooksController {
  private readonly logger = new Logger('CdsHooks');

  constructor(
    private readonly patientView: PatientViewService,
    private readonly orderSign: OrderSignService,
    private readonly appointmentBook: AppointmentBookService,
    private readonly feedbackMetrics: CdsFeedbackMetrics,
    private readonly checkMetrics: CdsCheckMetrics,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private services(): CdsServiceDefinition[] {
    return [this.patientView.definition, this.orderSign.definition, this.appointmentBook.definition];
  }

  @Get()
  @ApiOperation({ summary: 'CDS Hooks discovery' })
  discovery(): { services: CdsServiceDefinition[] } {
    return { services: this.services() };
  }

  @Post(':id')
  @HttpCode(200)
  @UseGuards(CdsClientGuard)
  @AuditsPatientAccess(cdsHookAccess)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Call a CDS service (Authorization: Bearer <JWT signed by the CDS client>)' })
  async call(
    @Param('id') id: string,
    @Body() body: CdsRequest,
    @Req() req: CdsRequestWithClient,
  ): Promise<CdsResponse> {
    const service = this.services().find((s) => s.id === id);
    if (!service) throw notFound(`No CDS service ${id.slice(0, 64)}; GET /cds-services lists them`);
    checkRequest(body, service);
    const started = performance.now();
    const options = {
      sourceLabel: SOURCE_LABEL,
      worklistUrl: `${publicBaseUrl(this.config, req)}/ui`,
      zone: this.config.clinicTimeZone,
    };
    // The EHR waits a few seconds for cards: FHIR reads stop at the budget, so an answer comes while it waits.
    const budget = AbortSignal.timeout(this.config.cdsReadBudgetMs);
    let result;
    if (service.hook === 'patient-view') result = await this.patientView.call(body, options, budget);
    else if (service.hook === 'appointment-book') result = await this.appointmentBook.call(body, options, budget);
    else {
      result = await this.orderSign.call(body, options, budget);
      const { timedOut, unreadable, unresolved } = result.counts;
      this.checkMetrics.record(id, {
        records_timeout: timedOut,
        records_unreadable: unreadable,
        medication_unresolved: unresolved,
      });
    }
    // Whose records the call read (the orders' patients, the records theirs link): the access audit names them all.
    (req as CdsRequestWithClient & { patientsRead?: string[] }).patientsRead = result.patientsRead;
    this.logger.log({
      msg: 'cds-hooks call',
      service: id,
      client: req.cdsClient?.issuer,
      hookInstance: body.hookInstance,
      cards: result.cards.length,
      indicators: result.cards.map((c) => c.indicator).join(','),
      ...result.counts,
      ms: Math.round(performance.now() - started),
    });
    return { cards: result.cards };
  }

  /**
   * CDS Hooks feedback: what the clinician did with a card (accepted its suggestion, or overrode it and why).
   * Counted per service, outcome and override reason code (kc_cds_feedback_total) and logged with the card uuids;
   * a clinician's comment is free text and is neither logged nor counted.
   */
  @Post(':id/feedback')
  @HttpCode(200)
  @UseGuards(CdsClientGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Report what the user did with cards (Authorization: Bearer <JWT signed by the CDS client>)',
  })
  feedback(@Param('id') id: string, @Body() body: unknown, @Req() req: CdsRequestWithClient): Record<string, never> {
    if (!this.services().some((s) => s.id === id))
      throw notFound(`No CDS service ${id.slice(0, 64)}; GET /cds-services lists them`);
    const feedback = parseFeedback(body);
    this.feedbackMetrics.record(id, feedback);
    this.logger.log({
      msg: 'cds-hooks feedback',
      service: id,
      client: req.cdsClient?.issuer,
      accepted: feedback.filter((f) => f.outcome === 'accepted').map((f) => f.card),
      overridden: feedback.filter((f) => f.outcome === 'overridden').map((f) => f.card),
    });
    return {};
  }
}

function checkRequest(body: CdsRequest, service: CdsServiceDefinition): void {
  if (!body || typeof body !== 'object') throw badRequest('The body must be a CDS Hooks request (JSON object)');
  if (body.hook !== service.hook)
    throw badRequest(`Service ${service.id} answers the ${service.hook} hook, not ${String(body.hook).slice(0, 40)}`, [
      'hook',
    ]);
  if (typeof body.hookInstance !== 'string' || !body.hookInstance)
    throw badRequest('hookInstance is required', ['hookInstance']);
  if (!body.context || typeof body.context !== 'object') throw badRequest('context is required', ['context']);
  if (body.prefetch !== undefined && (typeof body.prefetch !== 'object' || Array.isArray(body.prefetch)))
    throw badRequest('prefetch must be an object of key -> FHIR resource', ['prefetch']);
}
