import { DynamicModule, Global, Module } from '@nestjs/common';
import { ConfigModule as NestConfigModule, ConfigService } from '@nestjs/config';
import { APP_CONFIG, type AppConfig } from './app-config';

/** The validated config as @nestjs/config sees it: `ConfigService<AppConfigNamespace, true>.get('app')`. */
export interface AppConfigNamespace {
  app: AppConfig;
}

/**
 * @nestjs/config around the config `loadConfig` validated (or a test built from it): the ConfigService holds it
 * under `app`, and APP_CONFIG, what the services inject, is read from there. No .env file is read: the
 * environment is the only source, validated once before Nest starts so a bad value stops the process with
 * loadConfig's message.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      imports: [NestConfigModule.forRoot({ ignoreEnvFile: true, load: [(): AppConfigNamespace => ({ app: config })] })],
      providers: [
        {
          provide: APP_CONFIG,
          useFactory: (nestConfig: ConfigService<AppConfigNamespace, true>): AppConfig =>
            nestConfig.getOrThrow<AppConfig>('app'),
          inject: [ConfigService],
        },
      ],
      exports: [APP_CONFIG, NestConfigModule],
    };
  }
}
