import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public } from '@kc/auth';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import {
  CALCULATED_EXPRESSION_EXTENSION,
  MAX_VALUE_EXTENSION,
  MIN_VALUE_EXTENSION,
  ProtocolCatalog,
} from '@kc/protocols';

/**
 * The page's files (`page/`: plain HTML, CSS and JavaScript, no build step; copied beside the compiled code by
 * `npm run build`), read once.
 */
const PAGE_DIR = join(__dirname, 'page');
const page = (name: string) => readFileSync(join(PAGE_DIR, name), 'utf8');
const PAGE = { html: page('index.html'), css: page('worklist.css'), js: page('worklist.js') };

/**
 * The clinician page (`page/worklist.js` says what it calls). It holds no data, so it is public; everything it shows
 * comes from the API with the token the clinician got by signing in (OpenID Connect, authorization code + PKCE).
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
  html(@Res() res: Response): void {
    // The page talks to this API and to the OpenID issuer (discovery, token endpoint), nothing else; its script and
    // style are files of this origin, so nothing inline runs.
    const connect = ["'self'", origin(this.config.oidc.issuer)].filter(Boolean).join(' ');
    res
      .type('html')
      .set(
        'content-security-policy',
        `default-src 'self'; script-src 'self'; style-src 'self'; connect-src ${connect}; ` +
          "form-action 'self'; frame-ancestors 'self'",
      )
      .set('referrer-policy', 'no-referrer')
      .send(PAGE.html);
  }

  @Get('worklist.js')
  script(@Res() res: Response): void {
    res.type('text/javascript').send(PAGE.js);
  }

  @Get('worklist.css')
  style(@Res() res: Response): void {
    res.type('text/css').send(PAGE.css);
  }

  /**
   * What the page needs to sign in (the issuer, its client id and scopes, the FHIR base it accepts as `iss`), to
   * offer its filters (the kinds of Task the protocols generate: no patient data) and to render a check's questions
   * as the server checks their answers (the Questionnaire extensions it reads), and the clinic's time zone.
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
      questionnaireExtensions: {
        calculated: CALCULATED_EXPRESSION_EXTENSION,
        minValue: MIN_VALUE_EXTENSION,
        maxValue: MAX_VALUE_EXTENSION,
      },
      // The clinic's calendar: the page shows and picks its days and times there.
      timeZone: this.config.clinicTimeZone,
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
