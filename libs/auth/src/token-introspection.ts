import type { JWTPayload } from 'jose';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { TokenIntrospectionConfig } from '@kc/config';

/** How long the authorization server has to answer before the request is answered 503. */
const INTROSPECTION_TIMEOUT_MS = 5000;

/**
 * The authorization server could not say whether a token is active (down, slow, an answer that is not RFC 7662's):
 * the request is answered 503, not 401, so a client keeps its token and tries again.
 */
export class IntrospectionUnavailable extends Error {}

/**
 * What an authorization server says of an active token (RFC 7662 section 2.2, with SMART's `fhirUser`, `patient`,
 * `scope`): read as the claims of a JWT would be. `sub` falls back to `client_id` (a backend service's token may name
 * no subject), then `username`.
 */
export type IntrospectedClaims = JWTPayload & { active: true };

/**
 * Asks an authorization server whether an access token is active (RFC 7662): a form POST of the token, with this
 * service's client credentials (HTTP Basic) when configured. `inactive` for a token it does not vouch for (expired,
 * revoked, unknown); throws IntrospectionUnavailable when it cannot be asked.
 */
export class TokenIntrospection {
  private readonly answers?: Counter<'result'>;
  private readonly seconds?: Histogram;

  private readonly send: typeof fetch;

  /**
   * `registry`: where its answers are counted and timed (`kc_token_introspections_total`, `..._seconds`); `send`: the
   * HTTP client (a test's stand-in; fetch by default).
   */
  constructor(
    private readonly config: TokenIntrospectionConfig,
    { registry, send }: { registry?: Registry; send?: typeof fetch } = {},
  ) {
    this.send = send ?? fetch;
    if (!registry) return;
    this.answers = new Counter({
      name: 'kc_token_introspections_total',
      help: 'Tokens asked about at the authorization server (TOKEN_INTROSPECTION_URL), by its answer: active, inactive (refused, 401), unavailable (it could not be asked: 503; alert on it)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'kc_token_introspection_seconds',
      help: 'Time the authorization server took to answer a token introspection',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  }

  get cacheSeconds(): number {
    return this.config.cacheSeconds;
  }

  get checksJwts(): boolean {
    return this.config.checkJwts;
  }

  async introspect(token: string): Promise<IntrospectedClaims | 'inactive'> {
    const stop = this.seconds?.startTimer();
    try {
      const answer = await this.ask(token);
      this.answers?.inc({ result: answer === 'inactive' ? 'inactive' : 'active' });
      return answer;
    } catch (err) {
      this.answers?.inc({ result: 'unavailable' });
      throw err;
    } finally {
      stop?.();
    }
  }

  private async ask(token: string): Promise<IntrospectedClaims | 'inactive'> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    const { clientId, clientSecret } = this.config;
    if (clientId && clientSecret) headers.authorization = clientBasicAuthorization(clientId, clientSecret);
    let answer: Response;
    try {
      answer = await this.send(this.config.url, {
        method: 'POST',
        headers,
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(INTROSPECTION_TIMEOUT_MS),
      });
    } catch (err) {
      throw new IntrospectionUnavailable(`the authorization server could not be asked: ${(err as Error).message}`);
    }
    if (!answer.ok) throw new IntrospectionUnavailable(`the authorization server answered ${answer.status}`);
    const body = (await answer.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!body || typeof body.active !== 'boolean')
      throw new IntrospectionUnavailable('the authorization server answered no RFC 7662 response');
    if (!body.active) return 'inactive';
    const sub = [body.sub, body.client_id, body.username].find((v): v is string => typeof v === 'string' && v !== '');
    return { ...body, active: true, sub };
  }
}

/**
 * A client's credentials as an HTTP Basic `Authorization` value, form-encoded first (RFC 6749 section 2.3.1): what
 * this service sends to an introspection endpoint, and what the dev issuer's expects.
 */
export function clientBasicAuthorization(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
}

function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}
