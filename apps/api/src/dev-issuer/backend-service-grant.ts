import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { DevBackendClient } from '@kc/config';

/** SMART Backend Services: the client authenticates with a JWT it signed (RFC 7523), never a shared secret. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** What SMART asks a server to accept (RS384, ES384) and their siblings. */
export const ASSERTION_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];
/** SMART: an assertion lives at most five minutes. */
const MAX_ASSERTION_SECONDS = 300;

/** Why a client-credentials request is refused, as RFC 6749 names it. */
export class GrantRefused extends Error {
  constructor(
    readonly error: 'invalid_client' | 'invalid_grant' | 'invalid_scope' | 'invalid_request',
    message: string,
  ) {
    super(message);
  }
}

/** What a verified backend client is granted: its id, the scopes asked for that it may have, and its roles. */
export interface BackendGrant {
  clientId: string;
  scope: string;
  roles?: DevBackendClient['roles'];
  /** The assertion's `jti` and when it expires: used once (the caller keeps it until then). */
  jti: string;
  assertionExpires: number;
}

/**
 * The dev issuer's client-credentials grant for SMART Backend Services (DEV_ISSUER_CLIENTS): the client's assertion
 * (`iss` = `sub` = its id, `aud` the token endpoint, `exp` within five minutes, a `jti`) verified with its registered
 * keys, and the scopes it asked for that it is registered for (all of them when it asks for none). Replay of a `jti`
 * is the caller's to refuse (DevIssuerStore). What an EHR's authorization server does for its backend clients, so an
 * integration can be built and tested against the service alone.
 */
export class BackendServiceGrant {
  private readonly keys = new Map<string, JWTVerifyGetKey>();

  constructor(private readonly clients: Record<string, DevBackendClient>) {}

  async grant(form: Record<string, unknown>, tokenEndpoint: string, now = Date.now()): Promise<BackendGrant> {
    if (form.client_assertion_type !== CLIENT_ASSERTION_TYPE || typeof form.client_assertion !== 'string')
      throw new GrantRefused(
        'invalid_request',
        `client_assertion_type must be ${CLIENT_ASSERTION_TYPE}, with a client_assertion`,
      );
    const assertion = form.client_assertion;
    let clientId: string | undefined;
    try {
      clientId = decodeJwt(assertion).iss;
    } catch {
      throw new GrantRefused('invalid_client', 'client_assertion is not a JWT');
    }
    const client = clientId ? this.clients[clientId] : undefined;
    if (!clientId || !client) throw new GrantRefused('invalid_client', 'Unknown client (DEV_ISSUER_CLIENTS)');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, this.keysOf(clientId, client), {
        issuer: clientId,
        subject: clientId,
        audience: tokenEndpoint,
        algorithms: ASSERTION_ALGORITHMS,
        requiredClaims: ['exp', 'jti'],
        currentDate: new Date(now),
        clockTolerance: 60,
      }));
    } catch (err) {
      throw new GrantRefused('invalid_client', `client_assertion refused: ${(err as Error).message}`);
    }
    if (payload.exp! - now / 1000 > MAX_ASSERTION_SECONDS)
      throw new GrantRefused('invalid_client', 'client_assertion must expire within five minutes');
    return {
      clientId,
      scope: grantedScope(typeof form.scope === 'string' ? form.scope : '', client.scope),
      roles: client.roles,
      jti: payload.jti!,
      assertionExpires: payload.exp! * 1000,
    };
  }

  private keysOf(clientId: string, client: DevBackendClient): JWTVerifyGetKey {
    let keys = this.keys.get(clientId);
    if (!keys) {
      keys = client.jwks
        ? createLocalJWKSet(client.jwks as unknown as Parameters<typeof createLocalJWKSet>[0])
        : createRemoteJWKSet(new URL(client.jwksUrl!));
      this.keys.set(clientId, keys);
    }
    return keys;
  }
}

/**
 * The scopes asked for that the client is registered for, each as written (a server may grant less than asked, and
 * says what it granted); all it is registered for when it asks for none. None of them: refused.
 */
export function grantedScope(asked: string, registered: string): string {
  const allowed = new Set(registered.split(/\s+/).filter(Boolean));
  const wanted = asked.split(/\s+/).filter(Boolean);
  if (!wanted.length) return [...allowed].join(' ');
  const granted = wanted.filter((s) => allowed.has(s));
  if (!granted.length)
    throw new GrantRefused(
      'invalid_scope',
      `None of the scopes asked for is registered for this client: ${registered}`,
    );
  return granted.join(' ');
}
