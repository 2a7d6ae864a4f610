import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { AppConfig } from '@kc/config';
import { ROLES, type Caller, type Role } from './roles';

/** Used only when JWT_SECRET and JWT_JWKS_URL are both unset and NODE_ENV is not production. */
export const DEV_JWT_SECRET = 'dev-only-insecure-secret-change-me';

export class TokenVerifier {
  private readonly jwks?: ReturnType<typeof createRemoteJWKSet>;
  private readonly secret: Uint8Array;

  constructor(private readonly config: AppConfig['auth']) {
    if (config.jwksUrl) this.jwks = createRemoteJWKSet(new URL(config.jwksUrl));
    this.secret = new TextEncoder().encode(config.jwtSecret ?? DEV_JWT_SECRET);
  }

  static usesDevSecret(config: AppConfig['auth']): boolean {
    return !config.jwksUrl && !config.jwtSecret;
  }

  /** Verifies signature, expiry, issuer and audience; returns undefined for any invalid token. */
  async verify(token: string): Promise<Caller | undefined> {
    try {
      const options = { issuer: this.config.issuer, audience: this.config.audience };
      const { payload } = this.jwks
        ? await jwtVerify(token, this.jwks, options)
        : await jwtVerify(token, this.secret, options);
      return callerFrom(payload);
    } catch {
      return undefined;
    }
  }
}

function callerFrom(payload: JWTPayload): Caller | undefined {
  if (!payload.sub) return undefined;
  const claimed = Array.isArray(payload.roles) ? payload.roles : typeof payload.role === 'string' ? [payload.role] : [];
  const roles = claimed.filter((r): r is Role => (ROLES as readonly string[]).includes(r as string));
  return {
    id: payload.sub,
    roles,
    fhirUser: typeof payload.fhirUser === 'string' ? payload.fhirUser : undefined,
    display: typeof payload.name === 'string' ? payload.name : undefined,
  };
}

/** Mints an HS256 token: for `npm run token` and tests. */
export async function mintToken(
  claims: { sub: string; roles: Role[]; fhirUser?: string; name?: string },
  options: { secret?: string; issuer?: string; audience?: string; expiresIn?: string } = {},
): Promise<string> {
  let jwt = new SignJWT({ roles: claims.roles, fhirUser: claims.fhirUser, name: claims.name })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '8h');
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret ?? DEV_JWT_SECRET));
}
