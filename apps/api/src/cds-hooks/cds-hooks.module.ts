import { Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { CdsClientVerifier } from './cds-client-auth';
import { CdsClientGuard } from './cds-client.guard';
import { CdsHooksController } from './cds-hooks.controller';
import { OrderSignService } from './order-sign.service';
import { PatientViewService } from './patient-view.service';
import { PrefetchResolver } from './prefetch';

/** CDS Hooks 2.0 services (patient-view, order-sign) for EHRs; see README "CDS Hooks". */
@Module({
  controllers: [CdsHooksController],
  providers: [
    {
      provide: CdsClientVerifier,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new CdsClientVerifier(config.cdsClients),
    },
    CdsClientGuard,
    PrefetchResolver,
    PatientViewService,
    OrderSignService,
  ],
})
export class CdsHooksModule {}
