import type { FhirAuthConfig } from '@kc/config';
import type { HttpFetch } from './http-fetch';

interface CachedToken {
  value: string;
  expiresAt: number;
}

/** Produces the Authorization header for each FHIR request; caches OAuth2 client-credentials tokens. */
export class FhirAuthorizer {
  private cached?: CachedToken;

  constructor(
    private readonly config: FhirAuthConfig,
    private readonly fetchImpl: HttpFetch = fetch,
  ) {}

  async header(): Promise<string | undefined> {
    switch (this.config.kind) {
      case 'none':
        return undefined;
      case 'basic':
        return 'Basic ' + Buffer.from(`${this.config.username}:${this.config.password}`).toString('base64');
      case 'bearer':
        return `Bearer ${this.config.token}`;
      case 'client-credentials':
        return `Bearer ${await this.clientCredentialsToken()}`;
    }
  }

  /** Whether a 401 may be cured by fetching a new token. */
  get canRefresh(): boolean {
    return this.config.kind === 'client-credentials';
  }

  /** Forget the token, e.g. after a 401, so the next request fetches a fresh one. */
  invalidate(): void {
    this.cached = undefined;
  }

  private async clientCredentialsToken(): Promise<string> {
    if (this.config.kind !== 'client-credentials') throw new Error('not a client-credentials config');
    // Refresh 30 s early so a token never expires between header() and the server reading it.
    if (this.cached && this.cached.expiresAt - 30_000 > Date.now()) return this.cached.value;
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.config.clientId,
      client_secret: this.config.clientSecret,
    });
    if (this.config.scope) form.set('scope', this.config.scope);
    const response = await this.fetchImpl(this.config.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
    });
    if (!response.ok) throw new Error(`OAuth2 token endpoint answered ${response.status}`);
    const body = (await response.json()) as { access_token?: string; expires_in?: number };
    if (!body.access_token) throw new Error('OAuth2 token endpoint sent no access_token');
    this.cached = { value: body.access_token, expiresAt: Date.now() + (body.expires_in ?? 300) * 1000 };
    return this.cached.value;
  }
}
