import { Module } from '@nestjs/common';
import { DevIssuerController, SmartConfigurationController } from './dev-issuer.controller';
import { DevIssuerService } from './dev-issuer.service';

/** The built-in development OpenID issuer (DEV_ISSUER); its endpoints answer 404 when it is off. */
@Module({ controllers: [SmartConfigurationController, DevIssuerController], providers: [DevIssuerService] })
export class DevIssuerModule {}
