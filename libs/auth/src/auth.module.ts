import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Registry } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { AuthGuard } from './auth.guard';
import { TokenIntrospection } from './token-introspection';
import { TokenVerifier } from './token-verifier';

@Global()
@Module({
  providers: [
    {
      provide: TokenVerifier,
      inject: [APP_CONFIG, Registry],
      useFactory: (config: AppConfig, registry: Registry) =>
        new TokenVerifier(
          config.auth,
          config.auth.introspection && new TokenIntrospection(config.auth.introspection, { registry }),
        ),
    },
    { provide: APP_GUARD, useClass: AuthGuard },
  ],
  exports: [TokenVerifier],
})
export class AuthModule {}
