import type { NextFunction, Request, Response } from 'express';
import type { AppConfig } from '@kc/config';
import { CdsCorsMiddleware } from './cds-cors.middleware';

/** What the middleware answered: its headers, its status when it answered itself, and whether it passed on. */
function run(allowed: AppConfig['cdsCorsOrigins'], method: string, origin?: string) {
  const headers: Record<string, string> = {};
  const seen = { status: 0, passedOn: false, vary: [] as string[] };
  const res = {
    setHeader: (name: string, value: string) => (headers[name] = value),
    vary: (field: string) => seen.vary.push(field),
    status: (code: number) => {
      seen.status = code;
      return { end: () => undefined };
    },
  } as unknown as Response;
  const req = { method, headers: origin ? { origin } : {} } as Request;
  const next: NextFunction = () => (seen.passedOn = true);
  new CdsCorsMiddleware({ cdsCorsOrigins: allowed } as AppConfig).use(req, res, next);
  return { headers, ...seen };
}

describe('CORS for the CDS services', () => {
  const SANDBOX = 'https://sandbox.cds-hooks.org';

  it('a listed origin is echoed (varying by Origin) and its preflight answered 204 without reaching the guard', () => {
    const call = run([SANDBOX], 'POST', SANDBOX);
    expect(call).toMatchObject({ passedOn: true, vary: ['Origin'] });
    expect(call.headers['Access-Control-Allow-Origin']).toBe(SANDBOX);
    const preflight = run([SANDBOX], 'OPTIONS', SANDBOX);
    expect(preflight).toMatchObject({ passedOn: false, status: 204 });
    expect(preflight.headers).toMatchObject({
      'Access-Control-Allow-Origin': SANDBOX,
      'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
      'Access-Control-Allow-Headers': 'Authorization, Content-Type',
    });
    expect(preflight.headers['Access-Control-Allow-Credentials']).toBeUndefined();
  });

  it('another origin, or none configured, gets no CORS headers and its preflight goes on (to a 404)', () => {
    for (const [allowed, origin] of [
      [[SANDBOX], 'https://evil.example'],
      [[], SANDBOX],
    ] as const) {
      const preflight = run([...allowed], 'OPTIONS', origin);
      expect(preflight).toMatchObject({ passedOn: true, status: 0, headers: {} });
    }
  });

  it('* allows any origin without echoing it; a request without Origin (an EHR server) is untouched', () => {
    expect(run('*', 'GET', 'https://ehr-app.example').headers['Access-Control-Allow-Origin']).toBe('*');
    expect(run('*', 'POST')).toMatchObject({ passedOn: true, headers: {}, vary: [] });
  });
});
