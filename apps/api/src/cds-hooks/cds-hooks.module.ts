import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { API_REDIS } from '../api-redis.module';
import { CdsClientVerifier } from './cds-client-auth';
import { CdsClientGuard } from './cds-client.guard';
import { CdsCorsMiddleware } from './cds-cors.middleware';
import { CdsCheckMetrics } from './cds-check.metrics';
import { CdsFeedbackMetrics } from './cds-feedback.metrics';
import { CdsHooksController } from './cds-hooks.controller';
import { AppointmentBookService } from './appointment-book.service';
import { OrderSignService } from './order-sign.service';
import { PatientViewService } from './patient-view.service';
import { RedisJtiReplayStore } from './jti-replay-store';
import { PrefetchResolver } from './prefetch';
import { EhrProtocolEligibility } from './ehr-protocol-eligibility';
import { MedicationResolver } from './medication-resolver';
import { EhrFhirServer } from './ehr-fhir-server';

/** CDS Hooks 2.0 services (patient-view, order-sign) for EHRs; see docs/guide/cds-hooks.md. */
@Module({
  controllers: [CdsHooksController],
  providers: [
    {
      provide: CdsClientVerifier,
      inject: [APP_CONFIG, API_REDIS],
      useFactory: (config: AppConfig, redis: Redis) =>
        new CdsClientVerifier(config.cdsClients, new RedisJtiReplayStore(redis, config.queuePrefix)),
    },
    CdsClientGuard,
    PrefetchResolver,
    EhrProtocolEligibility,
    MedicationResolver,
    EhrFhirServer,
    PatientViewService,
    OrderSignService,
    AppointmentBookService,
    CdsFeedbackMetrics,
    CdsCheckMetrics,
  ],
})
export class CdsHooksModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply(CdsCorsMiddleware)
      .forRoutes(
        { path: 'cds-services', method: RequestMethod.ALL },
        { path: 'cds-services/*path', method: RequestMethod.ALL },
      );
  }
}
