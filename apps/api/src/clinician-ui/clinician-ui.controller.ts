import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public } from '@kc/auth';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { ProtocolCatalog } from '@kc/protocols';
import { WORKLIST_PAGE } from './worklist-page';

/**
 * The page itself holds no data, so it is public; everything it shows comes from the API with the token the
 * clinician got by signing in (OpenID Connect, authorization code + PKCE).
 */
@ApiExcludeController()
@Public()
@Controller('ui')
export class ClinicianUiController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly catalog: ProtocolCatalog,
  ) {}

  @Get()
  page(@Res() res: Response): void {
    // The page talks to this API and to the OpenID issuer (discovery, token endpoint), nothing else.
    const connect = ["'self'", origin(this.config.oidc.issuer)].filter(Boolean).join(' ');
    res
      .type('html')
      .set(
        'content-security-policy',
        `default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src ${connect}; ` +
          "form-action 'self'; frame-ancestors 'self'",
      )
      .set('referrer-policy', 'no-referrer')
      .send(WORKLIST_PAGE);
  }

  /**
   * What the page needs to sign in (the issuer, its client id and scopes, the FHIR base it accepts as `iss`) and to
   * offer its filters (the kinds of Task the protocols generate: no patient data).
   */
  @Get('config')
  settings(@Req() req: Request) {
    return {
      issuer: this.config.oidc.issuer ?? null,
      clientId: this.config.oidc.clientId,
      scope: this.config.oidc.scope,
      devIssuer: this.config.oidc.devIssuer,
      fhirBase: `${req.protocol}://${req.get('host') ?? 'localhost'}/fhir`,
      taskKinds: this.catalog.taskKinds(),
    };
  }
}

function origin(url: string | undefined): string | undefined {
  try {
    return url ? new URL(url).origin : undefined;
  } catch {
    return undefined;
  }
}
