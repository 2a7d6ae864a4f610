import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, errors, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import type { CdsClientKey } from '@kc/config';
import { MemoryJtiReplayStore, type JtiReplayStore } from './jti-replay-store';

/**
 * CDS Hooks "Trusting CDS Clients": every service call carries `Authorization: Bearer <JWT>` signed by the CDS
 * client, with iss (the client), aud (the URL of the service endpoint being called), exp, iat and a unique jti.
 * The issuer must be one of the configured CDS_CLIENTS; its JWT is verified against that client's JWK Set URL (the
 * `jku` header is never followed) or, for development, a shared secret. A jti is accepted once.
 */

export class CdsAuthError extends Error {}

export interface CdsClientIdentity {
  issuer: string;
  jti: string;
  tenant?: string;
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const SYMMETRIC = ['HS256', 'HS384', 'HS512'];
/** How old (by iat) a JWT may be: CDS clients mint one per call. */
const MAX_AGE_SECONDS = 300;
const CLOCK_TOLERANCE_SECONDS = 30;
type KeyInput = Uint8Array | ReturnType<typeof createRemoteJWKSet>;

export class CdsClientVerifier {
  private readonly keys = new Map<string, { key: KeyInput; algorithms: string[] }>();
  /**
   * @param replay where used jtis are remembered (Redis in the service, so every replica refuses a replay)
   */
  constructor(
    clients: Record<string, CdsClientKey>,
    private readonly replay: JtiReplayStore = new MemoryJtiReplayStore(),
  ) {
    for (const [issuer, client] of Object.entries(clients)) {
      this.keys.set(
        issuer,
        'jwksUrl' in client
          ? { key: createRemoteJWKSet(new URL(client.jwksUrl)), algorithms: ASYMMETRIC }
          : { key: new TextEncoder().encode(client.secret), algorithms: SYMMETRIC },
      );
    }
  }

  get configured(): boolean {
    return this.keys.size > 0;
  }

  /** Verifies a client's JWT for a call to `audience` (the full endpoint URL); throws CdsAuthError with the reason. */
  async verify(token: string | undefined, audience: string, now = Date.now()): Promise<CdsClientIdentity> {
    if (!token) throw new CdsAuthError('Authorization: Bearer <JWT signed by the CDS client> is required');
    if (!this.configured) throw new CdsAuthError('No CDS clients are configured (CDS_CLIENTS)');
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw new CdsAuthError('The bearer token is not a JWT');
    }
    const issuer = typeof unverified.iss === 'string' ? unverified.iss : undefined;
    const client = issuer ? this.keys.get(issuer) : undefined;
    if (!issuer || !client) throw new CdsAuthError('The JWT issuer (iss) is not a trusted CDS client');
    let payload: JWTPayload;
    try {
      const verifyOptions = {
        issuer,
        audience: [audience, `${audience}/`],
        algorithms: client.algorithms,
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
        maxTokenAge: MAX_AGE_SECONDS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(now),
      };
      payload = (
        client.key instanceof Uint8Array
          ? await jwtVerify(token, client.key, verifyOptions)
          : await jwtVerify(token, client.key, verifyOptions)
      ).payload;
    } catch (err) {
      throw new CdsAuthError(`The JWT was rejected: ${reason(err)}`);
    }
    const jti = String(payload.jti);
    const replayKey = `${issuer}\n${jti}`;
    // Remembered only as long as the token could pass the checks above: until exp or until it is too old by iat.
    const lastValid = Math.min(payload.exp!, payload.iat! + MAX_AGE_SECONDS) + CLOCK_TOLERANCE_SECONDS;
    if (!(await this.replay.claim(replayKey, lastValid * 1000, now)))
      throw new CdsAuthError('The JWT was rejected: its jti was already used');
    return { issuer, jti, tenant: typeof payload.tenant === 'string' ? payload.tenant : undefined };
  }
}

function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return err.claim === 'iat' ? `issued too long ago (iat)` : 'expired';
  if (err instanceof errors.JWTClaimValidationFailed)
    return `claim ${err.claim} ${err.reason === 'check_failed' ? 'does not match' : err.reason}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'signing algorithm not allowed for this client';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key in the client JWK Set matches the kid';
  if (err instanceof errors.JOSEError) return err.code;
  return 'unverifiable';
}

/**
 * Mints a CDS client JWT for one call (what an EHR does per request): for `npm run cds-token`, tests and local
 * integration. A shared secret signs HS256; a private JWK (with kid) signs with its own alg (ES384 recommended).
 */
export async function mintCdsClientJwt(options: {
  issuer: string;
  /** The full URL of the endpoint being called, e.g. http://127.0.0.1:3000/cds-services/ketamine-order-check. */
  audience: string;
  secret?: string;
  privateJwk?: JWK;
  expiresInSeconds?: number;
  jti?: string;
  iat?: number;
  tenant?: string;
}): Promise<string> {
  const iat = options.iat ?? Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(options.tenant ? { tenant: options.tenant } : {})
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.expiresInSeconds ?? 300))
    .setJti(options.jti ?? randomUUID());
  if (options.privateJwk) {
    const alg = options.privateJwk.alg ?? 'ES384';
    return jwt
      .setProtectedHeader({ alg, typ: 'JWT', kid: options.privateJwk.kid })
      .sign(await importJWK(options.privateJwk, alg));
  }
  if (!options.secret) throw new Error('mintCdsClientJwt needs a secret or a private JWK');
  return jwt.setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(options.secret));
}
