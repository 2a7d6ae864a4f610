import type { DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { raw, type NextFunction, type Request, type Response } from 'express';
import { nestedDeeperThan } from '@kc/common';
import type { AppConfig } from '@kc/config';
import { WEBHOOK_PATH } from './events/fhir-webhook.controller';
import { mountQueueDashboard } from './operations/queue-dashboard';

/**
 * Builds (but does not listen) the HTTP app around `root`, the composition root's module (CoreModule + ApiModule,
 * and the worker's module when it runs in the same process): body parsing, OpenAPI, the queue dashboard.
 */
export async function createApiApp(
  root: DynamicModule,
  config: AppConfig,
  options: { logger?: false } = {},
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(root, {
    bodyParser: false,
    // Nest's own logs go through pino (CoreModule's LoggingModule) once the app exists; `logger: false` silences them.
    ...(options.logger === false ? { logger: false } : { bufferLogs: true }),
  });
  if (options.logger !== false) app.useLogger(app.get(Logger));
  // Webhook bodies stay bytes until their signature is checked; FhirWebhookController parses them afterwards.
  app.use(WEBHOOK_PATH, raw({ type: () => true, limit: '1mb' }));
  // FHIR clients send application/fhir+json; treat it as JSON, and cap bodies well below memory trouble.
  app.useBodyParser('json', {
    type: ['application/json', 'application/fhir+json', 'application/json-patch+json'],
    limit: '1mb',
  });
  app.useBodyParser('urlencoded', { extended: false, limit: '100kb' });
  app.use(refuseDeepBodies);
  app.enableShutdownHooks();
  mountQueueDashboard(app);
  const openApi = new DocumentBuilder()
    .setTitle('ketamine-careplans')
    .setDescription('Ketamine infusion protocols as FHIR PlanDefinitions, $apply, follow-up tasks and clinician review')
    .setVersion('0.1.0')
    .addBearerAuth()
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, openApi));
  return app;
}

/** A parsed body nested absurdly deep (valid JSON, built to exhaust recursive code later) is a 400 here. */
function refuseDeepBodies(req: Request, _res: Response, next: NextFunction): void {
  if (!Buffer.isBuffer(req.body) && nestedDeeperThan(req.body))
    return next(Object.assign(new Error('too deep'), { status: 400, type: 'entity.too.deep' }));
  next();
}
