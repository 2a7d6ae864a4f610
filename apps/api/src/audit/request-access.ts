import { randomUUID } from 'node:crypto';
import type { AuthenticatedRequest } from '@kc/auth';
import type { PatientDataAccess } from './access-audit-event';

/**
 * One access as a request made it, now: what it was about (`what`), the request line, the status sent, and who
 * asked (the verified caller, else `client`) from where.
 */
export function accessOf(
  request: AuthenticatedRequest,
  status: number,
  what: Pick<PatientDataAccess, 'interaction' | 'patients' | 'resource' | 'onBehalfOf'>,
  client?: string,
): PatientDataAccess {
  const { caller } = request;
  return {
    ...what,
    request: `${request.method} ${request.originalUrl}`,
    status,
    agent: { id: caller?.id ?? client, fhirUser: caller?.fhirUser, display: caller?.display, address: request.ip },
    recorded: new Date(),
    id: randomUUID(),
  };
}
