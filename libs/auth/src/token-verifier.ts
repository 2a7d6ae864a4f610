import { LRUCache } from '@medplum/core';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { AppConfig, SmartRoles } from '@kc/config';
import { ROLES, type Caller, type Role } from './roles';
import { smartScopesOf, type SmartScope } from './smart-scopes';
import { TokenIntrospection } from './token-introspection';

/** Used only when JWT_SECRET and JWT_JWKS_URL are both unset and NODE_ENV is not production. */
export const DEV_JWT_SECRET = 'dev-only-insecure-secret-change-me';

const SYMMETRIC = ['HS256', 'HS384', 'HS512'];
const DEFAULT_MAX_LIFETIME_SECONDS = 24 * 3600;
/** Clock skew allowed between this service and the token's issuer. */
const CLOCK_TOLERANCE_SECONDS = 60;
/** Tokens remembered as verified: about one per signed-in clinician and integration. */
const VERIFIED_TOKENS = 10_000;
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/**
 * Verifies bearer JWTs: HS256/384/512 with JWT_SECRET (or the development secret when neither JWT_SECRET nor
 * JWT_JWKS_URL is set: `npm run token`), asymmetric ones with JWT_JWKS_URL, and tokens of each trusted OpenID
 * issuer (the built-in dev issuer) with that issuer's JWKS, chosen by the token's `iss`.
 */
export class TokenVerifier {
  private readonly jwks?: ReturnType<typeof createRemoteJWKSet>;
  private readonly secret?: Uint8Array;
  private readonly trusted = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  /**
   * Tokens that verified, by the whole token (signature included, so no other token can hit an entry), until they
   * expire: a clinician's page sends the same token on every call, and checking its signature was ~7% of the API's
   * CPU per worklist read. Only the time bounds are checked again on a hit. A token stays accepted until it expires
   * even if its signing key leaves the JWKS meanwhile, as it would in any API that caches verified tokens.
   */
  private readonly verified = new LRUCache<{
    caller: Caller;
    notBefore: number;
    expires: number;
    /** When the authorization server is asked again (an introspected token: it may have been revoked since). */
    askAgainAt?: number;
  }>(VERIFIED_TOKENS);
  private readonly introspection?: TokenIntrospection;

  constructor(
    private readonly config: AppConfig['auth'],
    introspection?: TokenIntrospection,
  ) {
    this.introspection =
      introspection ?? (config.introspection ? new TokenIntrospection(config.introspection) : undefined);
    if (config.jwksUrl) this.jwks = createRemoteJWKSet(new URL(config.jwksUrl));
    const secret = config.jwtSecret ?? (config.jwksUrl ? undefined : DEV_JWT_SECRET);
    if (secret) this.secret = new TextEncoder().encode(secret);
    for (const { issuer, jwksUrl } of config.trustedIssuers ?? [])
      this.trusted.set(issuer, createRemoteJWKSet(new URL(jwksUrl)));
  }

  static usesDevSecret(config: AppConfig['auth']): boolean {
    return !config.jwksUrl && !config.jwtSecret;
  }

  /**
   * Verifies signature, expiry, issuer and audience; returns undefined for any invalid token. A token must expire
   * (`exp`), within the configured lifetime of when it was issued, and may not be issued or valid only in the future.
   * A token that is no JWT is asked about at the authorization server (TOKEN_INTROSPECTION_URL), and so is a JWT when
   * TOKEN_INTROSPECTION_FOR=all; its answer is kept TOKEN_INTROSPECTION_CACHE_SECONDS. Throws
   * IntrospectionUnavailable when that server cannot be asked.
   */
  async verify(token: string, now = Date.now()): Promise<Caller | undefined> {
    const known = this.verified.get(token);
    if (known && !(known.askAgainAt !== undefined && now >= known.askAgainAt)) {
      const nowSeconds = now / 1000;
      const current =
        nowSeconds >= known.notBefore - CLOCK_TOLERANCE_SECONDS && nowSeconds < known.expires + CLOCK_TOLERANCE_SECONDS;
      return current ? known.caller : undefined;
    }
    if (known) this.verified.delete(token);
    const jwt = isJwt(token);
    const verified = jwt ? await this.verifySignedToken(token, now) : await this.introspected(token, now);
    if (!verified) return undefined;
    // A JWT whose signature verified is asked about too when revocations are to be seen (TOKEN_INTROSPECTION_FOR=all).
    const askJwt = jwt && this.introspection?.checksJwts === true;
    if (askJwt && (await this.introspection.introspect(token)) === 'inactive') return undefined;
    const asked = !jwt || askJwt;
    const { payload, caller } = verified;
    const notBefore = Math.max(payload.iat ?? 0, payload.nbf ?? 0);
    const askAgainAt = asked ? now + this.introspection!.cacheSeconds * 1000 : undefined;
    // An introspected token with no `exp`: good while the server says so (asked again after the cache time).
    const expires = payload.exp ?? (askAgainAt ?? now) / 1000;
    this.verified.set(token, { caller, notBefore, expires, askAgainAt });
    return caller;
  }

  /**
   * An opaque token, as the authorization server describes it (RFC 7662): active, within its lifetime when it says
   * when it was issued and expires, for this service when it names an audience. Undefined otherwise, or with no
   * introspection configured.
   */
  private async introspected(token: string, now: number): Promise<{ payload: JWTPayload; caller: Caller } | undefined> {
    if (!this.introspection) return undefined;
    const claims = await this.introspection.introspect(token);
    if (claims === 'inactive') return undefined;
    const audience = this.config.audience;
    const aud = claims.aud === undefined ? undefined : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (audience && aud && !aud.includes(audience)) return undefined;
    const nowSeconds = Math.floor(now / 1000);
    if (typeof claims.exp === 'number' && claims.exp + CLOCK_TOLERANCE_SECONDS <= nowSeconds) return undefined;
    return typeof claims.exp === 'number' ? this.withinLifetime(claims, now) : this.callerOf(claims);
  }

  private async verifySignedToken(
    token: string,
    now: number,
  ): Promise<{ payload: JWTPayload; caller: Caller } | undefined> {
    try {
      const options = {
        issuer: this.config.issuer,
        audience: this.config.audience,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(now),
      };
      const { alg } = decodeProtectedHeader(token);
      if (alg && SYMMETRIC.includes(alg)) {
        if (!this.secret) return undefined;
        const { payload } = await jwtVerify(token, this.secret, { ...options, algorithms: SYMMETRIC });
        return this.withinLifetime(payload, now);
      }
      const iss = decodeJwt(token).iss;
      const issuerKeys = iss ? this.trusted.get(iss) : undefined;
      if (issuerKeys) {
        const { payload } = await jwtVerify(token, issuerKeys, {
          ...options,
          issuer: iss,
          audience: undefined,
          algorithms: ASYMMETRIC,
        });
        return this.withinLifetime(payload, now);
      }
      if (!this.jwks) return undefined;
      const { payload } = await jwtVerify(token, this.jwks, { ...options, algorithms: ASYMMETRIC });
      return this.withinLifetime(payload, now);
    } catch {
      return undefined;
    }
  }

  private withinLifetime(payload: JWTPayload, now: number): { payload: JWTPayload; caller: Caller } | undefined {
    const max = this.config.maxTokenLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS;
    const nowSeconds = Math.floor(now / 1000);
    const issued = typeof payload.iat === 'number' ? payload.iat : nowSeconds;
    if (issued > nowSeconds + CLOCK_TOLERANCE_SECONDS) return undefined;
    // Without iat, the time left is what must be bounded.
    if (payload.exp! - issued > max) return undefined;
    return this.callerOf(payload);
  }

  private callerOf(payload: JWTPayload): { payload: JWTPayload; caller: Caller } | undefined {
    const caller = callerFrom(payload, this.config.smartRoles ?? {});
    return caller && { payload, caller };
  }
}

/** A compact JWS (three base64url parts, a header that decodes); anything else is an opaque token. */
function isJwt(token: string): boolean {
  if (token.split('.').length !== 3) return false;
  try {
    decodeProtectedHeader(token);
    return true;
  } catch {
    return false;
  }
}

function callerFrom(payload: JWTPayload, smartRoles: SmartRoles): Caller | undefined {
  if (!payload.sub) return undefined;
  const fhirUser = typeof payload.fhirUser === 'string' ? payload.fhirUser : undefined;
  const scopes = smartScopesOf({ scope: payload.scope, scp: payload.scp });
  const hasRolesClaim = payload.roles !== undefined || payload.role !== undefined;
  const claimed = Array.isArray(payload.roles) ? payload.roles : typeof payload.role === 'string' ? [payload.role] : [];
  const roles = hasRolesClaim
    ? claimed.filter((r): r is Role => (ROLES as readonly string[]).includes(r as string))
    : rolesFromSmart(scopes, fhirUser, smartRoles);
  const patient = typeof payload.patient === 'string' && payload.patient ? payload.patient : undefined;
  return {
    id: payload.sub,
    roles,
    fhirUser,
    display: typeof payload.name === 'string' ? payload.name : undefined,
    scopes,
    patient: patient && !patient.startsWith('Patient/') ? `Patient/${patient}` : patient,
  };
}

/**
 * The role of a token with no `roles` claim (an EHR's authorization server issues none), as SMART_ROLES says: a
 * backend service's (it grants `system/` scopes) or a user's by the type of its `fhirUser`. Its scopes still bound it.
 */
function rolesFromSmart(
  scopes: SmartScope[] | undefined,
  fhirUser: string | undefined,
  smartRoles: SmartRoles,
): Role[] {
  if (!scopes?.length) return [];
  if (scopes.some((s) => s.context === 'system')) return smartRoles.system ? [smartRoles.system] : [];
  const type = fhirUser?.split('/').at(-2);
  const role = type === 'Practitioner' || type === 'PractitionerRole' ? smartRoles[type] : undefined;
  return role && scopes.some((s) => s.context === 'user') ? [role] : [];
}

/** Mints an HS256 token: for `npm run token` and tests. */
export async function mintToken(
  claims: { sub: string; roles: Role[]; fhirUser?: string; name?: string; scope?: string },
  options: { secret?: string; issuer?: string; audience?: string; expiresIn?: string } = {},
): Promise<string> {
  let jwt = new SignJWT({ roles: claims.roles, fhirUser: claims.fhirUser, name: claims.name, scope: claims.scope })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '8h');
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret ?? DEV_JWT_SECRET));
}
