import { CanActivate, ExecutionContext, Inject, Injectable, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { bearerToken, OutcomeException } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { CdsAuthError, CdsClientVerifier, type CdsClientIdentity } from './cds-client-auth';

export type CdsRequestWithClient = Request & { cdsClient?: CdsClientIdentity };

/** The base URL a client addresses this service by: CDS_PUBLIC_URL, else the request's own scheme and Host. */
export function publicBaseUrl(config: AppConfig, request: Request): string {
  return config.cdsPublicUrl ?? `${request.protocol}://${request.get('host')}`;
}

/** Service calls need the CDS client's JWT, with aud = this endpoint's URL; missing or invalid: 401. */
@Injectable()
export class CdsClientGuard implements CanActivate {
  private readonly logger = new Logger('CdsHooks');

  constructor(
    @Inject(CdsClientVerifier) private readonly verifier: CdsClientVerifier,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<CdsRequestWithClient>();
    const token = bearerToken(request.headers.authorization);
    const audience = `${publicBaseUrl(this.config, request)}${request.baseUrl}${request.path}`.replace(/\/+$/, '');
    try {
      request.cdsClient = await this.verifier.verify(token, audience);
      return true;
    } catch (err) {
      // The replay store (Redis) unreachable: the token cannot be checked for reuse, so it is not accepted.
      if (!(err instanceof CdsAuthError)) {
        // The OperationOutcome filter adds Retry-After to every 503.
        this.logger.warn({ msg: 'cds-hooks: replay store unavailable', error: (err as Error).message });
        throw new OutcomeException(503, 'transient', 'CDS client tokens cannot be checked right now; retry shortly');
      }
      this.logger.warn({ msg: 'cds-hooks: client JWT rejected', reason: err.message });
      context.switchToHttp().getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="cds-services"');
      throw new OutcomeException(401, 'login', err.message);
    }
  }
}
