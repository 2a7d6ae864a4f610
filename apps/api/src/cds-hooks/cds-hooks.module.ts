import { Inject, Module, type OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { CdsClientVerifier } from './cds-client-auth';
import { CdsClientGuard } from './cds-client.guard';
import { CdsHooksController } from './cds-hooks.controller';
import { OrderSignService } from './order-sign.service';
import { PatientViewService } from './patient-view.service';
import { RedisJtiReplayStore } from './jti-replay-store';
import { PrefetchResolver } from './prefetch';

const CDS_REDIS = Symbol('CDS_REDIS');

/** CDS Hooks 2.0 services (patient-view, order-sign) for EHRs; see README "CDS Hooks". */
@Module({
  controllers: [CdsHooksController],
  providers: [
    {
      provide: CDS_REDIS,
      inject: [APP_CONFIG],
      // No offline queue: with Redis down a CDS call fails at once instead of waiting for a reconnect.
      // Connection errors surface as failed checks (503) and in /health, not as unhandled 'error' events.
      useFactory: (config: AppConfig) =>
        new Redis(config.redisUrl, { enableOfflineQueue: false, lazyConnect: false }).on('error', () => undefined),
    },
    {
      provide: CdsClientVerifier,
      inject: [APP_CONFIG, CDS_REDIS],
      useFactory: (config: AppConfig, redis: Redis) =>
        new CdsClientVerifier(config.cdsClients, new RedisJtiReplayStore(redis, config.queuePrefix)),
    },
    CdsClientGuard,
    PrefetchResolver,
    PatientViewService,
    OrderSignService,
  ],
})
export class CdsHooksModule implements OnModuleDestroy {
  constructor(@Inject(CDS_REDIS) private readonly redis: Redis) {}

  onModuleDestroy(): void {
    this.redis.disconnect();
  }
}
