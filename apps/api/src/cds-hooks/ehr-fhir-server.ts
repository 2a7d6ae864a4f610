import { Inject, Injectable, Optional } from '@nestjs/common';
import { Registry } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import {
  FhirClient,
  FhirHttpError,
  FhirOutOfTimeError,
  FhirUnavailableError,
  meteredFetch,
  type FhirClientOptions,
} from '@kc/fhir';
import type { CdsRequest } from './cds-types';

/**
 * Where a CDS call's EHR records are read when it did not prefetch them (the patient's conditions and vitals, the
 * Medications its orders name): the request's `fhirServer` with its `fhirAuthorization` bearer token, when the
 * deployment trusts that server (CDS_FHIR_SERVERS); otherwise the configured FHIR server, which then must hold them.
 * The service's own records (DetectedIssues, Tasks) are always read from the configured server.
 */
@Injectable()
export class EhrFhirServer {
  /** Counted apart from the configured server's requests (kc_ehr_fhir_*): an EHR's latency eats the hook's budget. */
  private readonly fetchImpl: FhirClientOptions['fetchImpl'];

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() registry?: Registry,
  ) {
    if (registry && config.cdsFhirServers.length)
      this.fetchImpl = meteredFetch(registry, config.cdsFhirServers, undefined, 'ehr');
  }

  /**
   * The clients one call reads through: `ehr` for the EHR's records, `own` for the service's; both end their requests
   * when the call's budget runs out, so the EHR gets cards (saying what could not be read) while it still waits.
   */
  clientsFor(request: CdsRequest, budget: AbortSignal): CallClients {
    const own = this.fhir.within(budget);
    const server = typeof request.fhirServer === 'string' ? request.fhirServer.replace(/\/+$/, '') : undefined;
    const token = bearerTokenOf(request.fhirAuthorization);
    if (!server || !token || !this.config.cdsFhirServers.includes(server)) return { ehr: own, own };
    // One call's reads, inside the EHR's wait for cards: no long retries.
    const ehr = new FhirClient({
      baseUrl: server,
      auth: { kind: 'bearer', token },
      fetchImpl: this.fetchImpl,
      maxAttempts: 2,
      timeoutMs: 5000,
    }).within(budget);
    return { ehr, own };
  }
}

/** Where one CDS call reads: the EHR's records (`ehr`, the same client as `own` unless fhirServer is trusted). */
export interface CallClients {
  ehr: FhirClient;
  own: FhirClient;
}

/** fhirAuthorization's access token when it is a bearer token (CDS Hooks 2.0: token_type "Bearer"). */
function bearerTokenOf(authorization: unknown): string | undefined {
  const a = authorization as { access_token?: unknown; token_type?: unknown } | null | undefined;
  if (typeof a?.access_token !== 'string' || !a.access_token) return undefined;
  const type = a.token_type ?? 'Bearer';
  return typeof type === 'string' && type.toLowerCase() === 'bearer' ? a.access_token : undefined;
}

/**
 * Why a CDS call's FHIR read failed, when the server failed it (slow past the call's budget, refusing, down): the
 * check it served did not run and a card says so. Undefined for anything else, which the caller rethrows.
 */
export function readFailure(err: unknown): { why: string; timedOut: boolean } | undefined {
  if (err instanceof FhirOutOfTimeError) return { why: 'the FHIR server did not answer in time', timedOut: true };
  if (err instanceof FhirHttpError) return { why: `the FHIR server answered HTTP ${err.status}`, timedOut: false };
  if (err instanceof FhirUnavailableError) return { why: 'the FHIR server did not answer', timedOut: false };
  return undefined;
}
