import { Body, Controller, Get, Header, Headers, HttpCode, NotFoundException, Post, Query, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '@kc/auth';
import { DEMO_USERS, DevIssuerError, DevIssuerService, type AuthorizeRequest } from './dev-issuer.service';
import { DevIssuerTokenStatus, IntrospectionRefused } from './token-status';

const html = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The development issuer's endpoints under /dev-issuer; 404 unless DEV_ISSUER is on. */
@ApiExcludeController()
@Public()
@Controller('dev-issuer')
export class DevIssuerController {
  constructor(
    private readonly issuer: DevIssuerService,
    private readonly tokens: DevIssuerTokenStatus,
  ) {}

  @Get('.well-known/openid-configuration')
  discovery() {
    this.assertEnabled();
    return this.issuer.discovery();
  }

  @Get('.well-known/smart-configuration')
  smart() {
    this.assertEnabled();
    return this.issuer.smartConfiguration();
  }

  @Get('jwks')
  async jwks() {
    this.assertEnabled();
    return this.issuer.jwks();
  }

  /** The sign-in page: pick a demo user. */
  @Get('authorize')
  @Header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
  authorize(@Query() query: Record<string, unknown>, @Res() res: Response): void {
    this.assertEnabled();
    let request: AuthorizeRequest;
    try {
      request = this.issuer.validateAuthorize(query);
    } catch (err) {
      return void res.status(400).type('text/plain').send(describe(err));
    }
    const hidden = Object.entries({ ...query })
      .filter(([, v]) => typeof v === 'string')
      .map(([k, v]) => `<input type="hidden" name="${html(k)}" value="${html(v as string)}">`)
      .join('\n');
    const users = DEMO_USERS.map(
      (u, i) =>
        `<label><input type="radio" name="user" value="${html(u.sub)}"${i === 0 ? ' checked' : ''}> ` +
        `${html(u.practitioner.name![0].text!)} (${html(u.roles.join(', '))}, Practitioner/${html(u.practitioner.id)})</label>`,
    ).join('<br>\n');
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development sign-in</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#1d2433}fieldset{border:1px solid #c5cedb;padding:1rem}
.warn{background:#fff4ce;padding:.5rem .8rem;border-left:4px solid #c19c00}button{margin-top:1rem;font-size:1rem}</style></head>
<body><main><h1>Development sign-in</h1>
<p class="warn">Built-in development issuer (DEV_ISSUER): demo users only, never in production.</p>
<p>Client <code>${html(request.clientId)}</code> asks for <code>${html(request.scope)}</code>.</p>
<form method="post" action="authorize">
${hidden}
<fieldset><legend>Sign in as</legend>
${users}
</fieldset>
<button type="submit" id="sign-in">Sign in</button>
</form></main></body></html>`);
  }

  @Post('authorize')
  async signIn(@Body() form: Record<string, unknown>, @Res() res: Response): Promise<void> {
    this.assertEnabled();
    let redirect: URL;
    try {
      const request = this.issuer.validateAuthorize(form);
      const code = await this.issuer.issueCode(request, typeof form.user === 'string' ? form.user : '');
      redirect = new URL(request.redirectUri);
      redirect.searchParams.set('code', code);
    } catch (err) {
      return void res.status(400).type('text/plain').send(describe(err));
    }
    if (typeof form.state === 'string') redirect.searchParams.set('state', form.state);
    res.redirect(303, redirect.toString());
  }

  @Post('token')
  @HttpCode(200)
  @Header('cache-control', 'no-store')
  async token(@Body() form: Record<string, unknown>, @Res() res: Response): Promise<void> {
    this.assertEnabled();
    try {
      res.json(await this.issuer.exchange(form ?? {}));
    } catch (err) {
      if (!(err instanceof DevIssuerError)) throw err;
      res.status(400).json({ error: err.error, error_description: err.message });
    }
  }

  /** RFC 7009: always 200 (an unknown token is no error); the page's sign-out revokes its tokens here. */
  @Post('revoke')
  @HttpCode(200)
  @Header('cache-control', 'no-store')
  async revoke(@Body() form: Record<string, unknown>): Promise<Record<string, never>> {
    this.assertEnabled();
    await this.tokens.revoke(form ?? {});
    return {};
  }

  /** RFC 7662, for TOKEN_INTROSPECTION_URL: whether one of this issuer's access tokens is active, and its claims. */
  @Post('introspect')
  @HttpCode(200)
  @Header('cache-control', 'no-store')
  async introspect(
    @Body() form: Record<string, unknown>,
    @Headers('authorization') authorization: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    this.assertEnabled();
    try {
      res.json(await this.tokens.introspect(form ?? {}, authorization));
    } catch (err) {
      if (!(err instanceof IntrospectionRefused)) throw err;
      res.status(401).setHeader('www-authenticate', 'Basic realm="dev-issuer"');
      res.json({ error: 'invalid_client', error_description: err.message });
    }
  }

  private assertEnabled(): void {
    if (!this.issuer.enabled) throw new NotFoundException('The development issuer is off (DEV_ISSUER)');
  }
}

/** SMART discovery on the API's FHIR base, for a standalone launch with iss=<service>/fhir. */
@ApiExcludeController()
@Public()
@Controller('fhir/.well-known')
export class SmartConfigurationController {
  constructor(private readonly issuer: DevIssuerService) {}

  @Get('smart-configuration')
  smart() {
    if (!this.issuer.enabled) throw new NotFoundException('No SMART authorization server is configured here');
    return this.issuer.smartConfiguration();
  }
}

function describe(err: unknown): string {
  if (err instanceof DevIssuerError) return `${err.error}: ${err.message}`;
  throw err;
}
