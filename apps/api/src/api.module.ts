import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuthModule } from '@kc/auth';
import { ApiRedisModule } from './api-redis.module';
import { AuditModule } from './audit/audit.module';
import { OperationOutcomeFilter } from './errors/operation-outcome.filter';
import { HealthModule } from './health/health.module';
import { ProtocolsModule } from './protocols/protocols.module';
import { EventsModule } from './events/events.module';
import { ReviewModule } from './review/review.module';
import { EhrModule } from './ehr/ehr.module';
import { OperationsModule } from './operations/operations.module';
import { CdsHooksModule } from './cds-hooks/cds-hooks.module';
import { DevIssuerModule } from './dev-issuer/dev-issuer.module';
import { ClinicianUiModule } from './clinician-ui/clinician-ui.module';

/**
 * The HTTP API's feature modules. Needs CoreModule (@kc/nest-core) beside it; the composition root (service/)
 * adds the worker's module to the same process when config.runWorker is true.
 */
@Module({
  imports: [
    ApiRedisModule,
    AuthModule,
    AuditModule,
    HealthModule,
    ProtocolsModule,
    EventsModule,
    ReviewModule,
    // Before EhrModule: /fhir/.well-known/smart-configuration must win over /fhir/:type/:id.
    DevIssuerModule,
    ClinicianUiModule,
    EhrModule,
    OperationsModule,
    CdsHooksModule,
  ],
  providers: [{ provide: APP_FILTER, useClass: OperationOutcomeFilter }],
})
export class ApiModule {}
