import { Counter, Histogram, type Registry } from 'prom-client';
import { httpFetch, type HttpFetch } from './http-fetch';

/**
 * A fetch that counts and times every request to the FHIR server: method, status and resource type only
 * (never ids or query strings, which may identify a patient).
 */
export function meteredFetch(registry: Registry, baseUrl: string, inner: HttpFetch = httpFetch()): HttpFetch {
  const requests = new Counter({
    name: 'kc_fhir_requests_total',
    help: 'Requests to the FHIR server',
    labelNames: ['method', 'type', 'status'],
    registers: [registry],
  });
  const seconds = new Histogram({
    name: 'kc_fhir_request_seconds',
    help: 'FHIR request latency (until the response headers)',
    labelNames: ['method', 'type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [registry],
  });
  const base = baseUrl.replace(/\/+$/, '');
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input.href;
    const method = (init?.method ?? 'GET').toUpperCase();
    const type = resourceTypeOf(url, base);
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
  const path = url.startsWith(base) ? url.slice(base.length) : new URL(url).pathname;
  const first = path.replace(/^\/+/, '').split(/[/?]/)[0];
  if (!first) return 'Bundle';
  return /^[A-Z][A-Za-z]{1,63}$/.test(first) || first === 'metadata' ? first : 'other';
}
