import { Counter, Histogram, type Registry } from 'prom-client';
import { httpFetch, type HttpFetch } from './http-fetch';

/** Which servers a metered fetch counts: the configured FHIR server (`kc_fhir_*`), or EHRs' (`kc_ehr_fhir_*`). */
const METERED = {
  fhir: { prefix: 'kc_fhir', what: 'the FHIR server' },
  ehr: { prefix: 'kc_ehr_fhir', what: "EHRs' FHIR servers (CDS Hooks fhirServer)" },
} as const;

/**
 * A fetch that counts and times every request to the FHIR server (or servers): method, status and resource type
 * only (never ids or query strings, which may identify a patient).
 */
export function meteredFetch(
  registry: Registry,
  baseUrls: string | string[],
  inner: HttpFetch = httpFetch(),
  servers: keyof typeof METERED = 'fhir',
): HttpFetch {
  const { prefix, what } = METERED[servers];
  const requests = new Counter({
    name: `${prefix}_requests_total`,
    help: `Requests to ${what}`,
    labelNames: ['method', 'type', 'status'],
    registers: [registry],
  });
  const seconds = new Histogram({
    name: `${prefix}_request_seconds`,
    help: `Latency of requests to ${what} (until the response headers)`,
    labelNames: ['method', 'type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [registry],
  });
  const bases = (Array.isArray(baseUrls) ? baseUrls : [baseUrls]).map((b) => b.replace(/\/+$/, ''));
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input.href;
    const method = (init?.method ?? 'GET').toUpperCase();
    const type = resourceTypeOf(url, bases.find((b) => url.startsWith(b)) ?? '');
    const stop = seconds.startTimer({ method, type });
    try {
      const response = await inner(input, init);
      requests.inc({ method, type, status: String(response.status) });
      return response;
    } catch (err) {
      requests.inc({ method, type, status: 'error' });
      throw err;
    } finally {
      stop();
    }
  };
}

function resourceTypeOf(url: string, base: string): string {
  const path = base && url.startsWith(base) ? url.slice(base.length) : new URL(url).pathname;
  const first = path.replace(/^\/+/, '').split(/[/?]/)[0];
  if (!first) return 'Bundle';
  return /^[A-Z][A-Za-z]{1,63}$/.test(first) || first === 'metadata' ? first : 'other';
}
