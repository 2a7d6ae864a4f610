import { timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { clientBasicAuthorization } from '@kc/auth';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { DevIssuerService } from './dev-issuer.service';
import { DevIssuerStore } from './dev-issuer-store';

/** The introspection endpoint refused its caller (RFC 7662 section 2.1: it must authenticate the resource server). */
export class IntrospectionRefused extends Error {}

/**
 * What the dev issuer says of its tokens, as an EHR's authorization server does: revocation (RFC 7009; the page's
 * sign-out revokes its refresh and access tokens) and introspection (RFC 7662; this service's API asks it with
 * TOKEN_INTROSPECTION_URL, and with TOKEN_INTROSPECTION_FOR=all a revoked access token is refused). Revoked access
 * tokens are kept (by their SHA-256) in Redis until they expire; a refresh token revoked is removed, ending the session.
 */
@Injectable()
export class DevIssuerTokenStatus {
  constructor(
    private readonly issuer: DevIssuerService,
    private readonly store: DevIssuerStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** RFC 7009: the token revoked whatever it is (a refresh token, or one of this issuer's access tokens); else nothing. */
  async revoke(form: Record<string, unknown>): Promise<void> {
    const token = typeof form.token === 'string' ? form.token : '';
    if (!token) return;
    if (form.token_type_hint !== 'access_token' && (await this.store.take('refresh', token))) return;
    const payload = await this.verified(token);
    if (payload?.exp) await this.store.revoke(token, payload.exp * 1000);
  }

  /**
   * RFC 7662: one of this issuer's access tokens, unexpired and not revoked, is active, with its claims; anything else
   * is not. The caller authenticates with TOKEN_INTROSPECTION_CLIENT_ID/_SECRET (HTTP Basic) when they are set.
   */
  async introspect(form: Record<string, unknown>, authorization: string | undefined): Promise<Record<string, unknown>> {
    this.assertCaller(authorization);
    const token = typeof form.token === 'string' ? form.token : '';
    const payload = token ? await this.verified(token) : undefined;
    if (!payload || (await this.store.isRevoked(token))) return { active: false };
    return { ...payload, active: true, client_id: payload.aud, token_type: 'Bearer' };
  }

  private async verified(token: string) {
    try {
      const { jwk } = await this.store.signingKey();
      return (await jwtVerify(token, createLocalJWKSet({ keys: [jwk] }), { issuer: this.issuer.issuer })).payload;
    } catch {
      return undefined;
    }
  }

  private assertCaller(authorization: string | undefined): void {
    const { clientId, clientSecret } = this.config.auth.introspection ?? {};
    if (!clientId || !clientSecret) return;
    const expected = Buffer.from(clientBasicAuthorization(clientId, clientSecret));
    const given = Buffer.from(authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new IntrospectionRefused('The introspection endpoint needs this resource server’s client credentials');
  }
}
