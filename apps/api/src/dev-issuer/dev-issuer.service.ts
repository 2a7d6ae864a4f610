import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { SignJWT, type JWK } from 'jose';
import type { Practitioner } from '@medplum/fhirtypes';
import { APP_CONFIG, PAGE_SCOPE, type AppConfig } from '@kc/config';
import type { Role } from '@kc/auth';
import { FhirClient } from '@kc/fhir';
import { ASSERTION_ALGORITHMS, BackendServiceGrant, GrantRefused } from './backend-service-grant';
import { DevIssuerStore } from './dev-issuer-store';

/** A demo user of the development issuer; its Practitioner is written to the FHIR server at startup. */
export interface DemoUser {
  sub: string;
  roles: Role[];
  practitioner: Practitioner & { id: string };
}

const practitioner = (id: string, given: string, family: string): Practitioner & { id: string } => ({
  resourceType: 'Practitioner',
  id,
  active: true,
  name: [{ prefix: ['Dr'], given: [given], family, text: `Dr ${given} ${family}` }],
  identifier: [{ system: 'urn:ketamine-careplans:dev-issuer', value: id }],
});

export const DEMO_USERS: DemoUser[] = [
  { sub: 'clinician', roles: ['clinician'], practitioner: practitioner('dev-clinician', 'Ada', 'Lovelace') },
  { sub: 'admin', roles: ['admin'], practitioner: practitioner('dev-admin', 'Grace', 'Hopper') },
];

/** Kept in Redis (DevIssuerStore) under the code, for a minute. */
interface PendingCode {
  userSub: string;
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  scope: string;
  nonce?: string;
  launch?: string;
}

/**
 * A signed-in session's refresh token, kept in Redis (DevIssuerStore) under the token: one use, then replaced; the
 * session itself ends at `sessionEnds`.
 */
interface RefreshGrant {
  userSub: string;
  clientId: string;
  scope: string;
  patient?: string;
  sessionEnds: number;
}

/** How long a sign-in lasts through refreshes: a clinic's shift. */
const SESSION_MS = 12 * 3600_000;

export interface AuthorizeRequest {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  scope: string;
  nonce?: string;
  launch?: string;
}

export class DevIssuerError extends Error {
  constructor(
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The built-in development OpenID Connect issuer (DEV_ISSUER): authorization code + PKCE (S256 only) for public
 * clients, rotating refresh tokens for a 12-hour session, RS256 tokens, demo users with Practitioners. Its key,
 * codes and refresh tokens are in Redis (DevIssuerStore), shared by every API replica and kept across restarts
 * (for as long as Redis keeps them). Refused in production.
 */
@Injectable()
export class DevIssuerService implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger('DevIssuer');

  private readonly backendClients: BackendServiceGrant;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly fhir: FhirClient,
    private readonly store: DevIssuerStore,
  ) {
    this.backendClients = new BackendServiceGrant(config.oidc.devClients ?? {});
  }

  get enabled(): boolean {
    return this.config.oidc.devIssuer;
  }

  get issuer(): string {
    if (!this.config.oidc.issuer) throw new Error('the dev issuer URL is set by the composition root');
    return this.config.oidc.issuer;
  }

  onModuleInit(): void {
    if (!this.enabled) return;
    if (this.config.production) throw new Error('The development issuer (DEV_ISSUER) is refused in production');
    // The signing key is read (or made) in Redis at the first sign-in or JWKS request, once Redis is connected.
  }

  /** The demo users' Practitioners, so a decision's Provenance names someone who exists, with a name. */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    for (const user of DEMO_USERS) {
      try {
        await this.fhir.update(user.practitioner);
      } catch (err) {
        this.logger.warn(`could not write ${user.practitioner.id}: ${(err as Error).message}`);
      }
    }
  }

  /** Read from Redis each time: after Redis lost the key, every replica serves the new one the next sign made. */
  async jwks(): Promise<{ keys: JWK[] }> {
    return { keys: [(await this.store.signingKey()).jwk] };
  }

  discovery(): Record<string, unknown> {
    const issuer = this.issuer;
    return {
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      revocation_endpoint: `${issuer}/revoke`,
      introspection_endpoint: `${issuer}/introspect`,
      jwks_uri: `${issuer}/jwks`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      // Public clients (the page) and SMART backend services (DEV_ISSUER_CLIENTS).
      token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
      code_challenge_methods_supported: ['S256'],
      scopes_supported: [
        ...new Set([
          'openid',
          'fhirUser',
          'profile',
          'launch',
          'launch/patient',
          ...PAGE_SCOPE.split(' '),
          'offline_access',
        ]),
      ],
      claims_supported: ['sub', 'name', 'fhirUser', 'roles'],
    };
  }

  /** SMART App Launch 2.0 discovery (also served at the API's /fhir/.well-known/smart-configuration). */
  smartConfiguration(): Record<string, unknown> {
    const d = this.discovery();
    return {
      issuer: d.issuer,
      jwks_uri: d.jwks_uri,
      authorization_endpoint: d.authorization_endpoint,
      token_endpoint: d.token_endpoint,
      revocation_endpoint: d.revocation_endpoint,
      introspection_endpoint: d.introspection_endpoint,
      grant_types_supported: d.grant_types_supported,
      token_endpoint_auth_methods_supported: d.token_endpoint_auth_methods_supported,
      token_endpoint_auth_signing_alg_values_supported: d.token_endpoint_auth_signing_alg_values_supported,
      scopes_supported: d.scopes_supported,
      response_types_supported: d.response_types_supported,
      code_challenge_methods_supported: d.code_challenge_methods_supported,
      capabilities: [
        'launch-ehr',
        'launch-standalone',
        'client-public',
        'sso-openid-connect',
        'context-ehr-patient',
        'context-standalone-patient',
        'permission-user',
        'permission-patient',
        'permission-v1',
        'permission-v2',
        'client-confidential-asymmetric',
      ],
    };
  }

  validateAuthorize(query: Record<string, unknown>): AuthorizeRequest {
    const get = (name: string) => (typeof query[name] === 'string' ? query[name] : undefined);
    const clientId = get('client_id');
    const redirectUri = get('redirect_uri');
    if (!clientId || clientId !== this.config.oidc.clientId)
      throw new DevIssuerError(
        'unauthorized_client',
        `Unknown client_id; this issuer serves ${this.config.oidc.clientId}`,
      );
    if (!redirectUri || !this.redirectAllowed(redirectUri))
      throw new DevIssuerError('invalid_request', 'redirect_uri must be this service (e.g. /ui)');
    if (get('response_type') !== 'code')
      throw new DevIssuerError('unsupported_response_type', 'response_type must be code');
    const codeChallenge = get('code_challenge');
    if (!codeChallenge || get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43,128}$/.test(codeChallenge))
      throw new DevIssuerError('invalid_request', 'PKCE is required: code_challenge with code_challenge_method=S256');
    const scope = get('scope') ?? 'openid';
    const aud = get('aud');
    if (aud !== undefined && !this.redirectAllowed(aud))
      throw new DevIssuerError('invalid_request', "aud must be this service's FHIR base (…/fhir)");
    return { clientId, redirectUri, codeChallenge, scope, nonce: get('nonce'), launch: get('launch') };
  }

  /** The user signed in on the issuer's page: a one-time code for the client, valid one minute. */
  async issueCode(request: AuthorizeRequest, userSub: string): Promise<string> {
    if (!demoUser(userSub)) throw new DevIssuerError('access_denied', 'Unknown demo user');
    const code = randomBytes(24).toString('base64url');
    await this.store.put<PendingCode>('code', code, { ...request, userSub }, Date.now() + 60_000);
    return code;
  }

  async exchange(form: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (form.grant_type === 'refresh_token') return this.refresh(form);
    if (form.grant_type === 'client_credentials') return this.backendServiceTokens(form);
    if (form.grant_type !== 'authorization_code')
      throw new DevIssuerError(
        'unsupported_grant_type',
        'grant_type must be authorization_code, refresh_token or client_credentials',
      );
    // One use, whatever happens next; Redis drops it after its minute.
    const pending = await this.store.take<PendingCode>('code', typeof form.code === 'string' ? form.code : '');
    if (!pending) throw new DevIssuerError('invalid_grant', 'Unknown, used or expired code');
    if (form.client_id !== pending.clientId) throw new DevIssuerError('invalid_grant', 'client_id does not match');
    if (form.redirect_uri !== pending.redirectUri)
      throw new DevIssuerError('invalid_grant', 'redirect_uri does not match');
    const verifier = typeof form.code_verifier === 'string' ? form.code_verifier : '';
    if (createHash('sha256').update(verifier).digest('base64url') !== pending.codeChallenge)
      throw new DevIssuerError('invalid_grant', 'code_verifier does not match the code_challenge (PKCE)');
    const { userSub, clientId, scope, nonce } = pending;
    const grant = {
      userSub,
      clientId,
      scope,
      patient: launchPatient(pending.launch),
      sessionEnds: Date.now() + SESSION_MS,
    };
    return this.tokens(grant, nonce);
  }

  /**
   * A new access token for a signed-in session, without the user: the refresh token is used once and replaced
   * (rotation: a stolen one stops working at the owner's next refresh), and none outlives the session's 12 hours.
   */
  private async refresh(form: Record<string, unknown>): Promise<Record<string, unknown>> {
    const token = typeof form.refresh_token === 'string' ? form.refresh_token : '';
    const grant = await this.store.take<RefreshGrant>('refresh', token);
    if (!grant || grant.sessionEnds < Date.now())
      throw new DevIssuerError('invalid_grant', 'Unknown, used or expired refresh token; sign in again');
    if (form.client_id !== grant.clientId) throw new DevIssuerError('invalid_grant', 'client_id does not match');
    return this.tokens(grant);
  }

  /**
   * SMART Backend Services (client credentials, `private_key_jwt`): a registered client's access token, for at most
   * five minutes, with the scopes granted and no refresh token; `roles` only when its registration gives some.
   */
  private async backendServiceTokens(form: Record<string, unknown>): Promise<Record<string, unknown>> {
    let grant;
    try {
      grant = await this.backendClients.grant(form, `${this.issuer}/token`);
    } catch (err) {
      if (err instanceof GrantRefused) throw new DevIssuerError(err.error, err.message);
      throw err;
    }
    if (!(await this.store.firstUse('assertion', `${grant.clientId}|${grant.jti}`, grant.assertionExpires)))
      throw new DevIssuerError('invalid_client', 'This client_assertion was used already (its jti)');
    const seconds = Math.min(this.config.oidc.devTokenSeconds, 300);
    const key = await this.store.signingKey();
    const accessToken = await new SignJWT({ scope: grant.scope, ...(grant.roles ? { roles: grant.roles } : {}) })
      .setProtectedHeader({ alg: 'RS256', kid: key.jwk.kid })
      .setIssuer(this.issuer)
      .setSubject(grant.clientId)
      .setIssuedAt()
      .setJti(randomBytes(16).toString('base64url'))
      .setExpirationTime(`${seconds}s`)
      .sign(key.privateKey);
    return { token_type: 'Bearer', expires_in: seconds, scope: grant.scope, access_token: accessToken };
  }

  private async tokens(grant: RefreshGrant, nonce?: string): Promise<Record<string, unknown>> {
    const { clientId, scope, patient } = grant;
    const user = demoUser(grant.userSub);
    if (!user) throw new DevIssuerError('invalid_grant', 'Unknown demo user; sign in again');
    const key = await this.store.signingKey();
    const fhirUser = `Practitioner/${user.practitioner.id}`;
    const name = user.practitioner.name![0].text!;
    const seconds = this.config.oidc.devTokenSeconds;
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: key.jwk.kid })
        .setIssuer(this.issuer)
        .setSubject(user.sub)
        .setAudience(clientId)
        .setIssuedAt()
        // Each token its own (two issued in one second would be the same string, and revoking one would revoke both).
        .setJti(randomBytes(16).toString('base64url'))
        .setExpirationTime(`${seconds}s`)
        .sign(key.privateKey);
    const response: Record<string, unknown> = {
      token_type: 'Bearer',
      expires_in: seconds,
      scope,
      // The launch patient in the token too: what its patient/ scopes are bounded to (the API reads only the token).
      access_token: await sign({ roles: user.roles, fhirUser, name, scope, ...(patient ? { patient } : {}) }),
      refresh_token: await this.newRefreshToken(grant),
    };
    if (scope.split(' ').includes('openid')) response.id_token = await sign({ fhirUser, name, nonce });
    if (patient) response.patient = patient;
    return response;
  }

  private async newRefreshToken(grant: RefreshGrant): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await this.store.put('refresh', token, grant, grant.sessionEnds);
    return token;
  }

  /** This service only: the issuer's origin, or the same port on another loopback name (localhost vs 127.0.0.1). */
  private redirectAllowed(uri: string): boolean {
    try {
      const target = new URL(uri);
      const own = new URL(this.issuer);
      if (target.origin === own.origin) return true;
      const loopback = (h: string) => ['localhost', '127.0.0.1', '[::1]'].includes(h);
      return (
        target.protocol === own.protocol &&
        target.port === own.port &&
        loopback(target.hostname) &&
        loopback(own.hostname)
      );
    } catch {
      return false;
    }
  }
}

function demoUser(sub: string): DemoUser | undefined {
  return DEMO_USERS.find((u) => u.sub === sub);
}

/** The dev issuer's EHR launch contexts: `launch=patient-<id>` opens that patient. */
function launchPatient(launch: string | undefined): string | undefined {
  const id = launch && /^patient-([A-Za-z0-9\-.]{1,64})$/.exec(launch)?.[1];
  return id || undefined;
}
