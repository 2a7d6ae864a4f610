import type { AuthenticatedRequest } from '@kc/auth';
import type { PatientDataAccess } from './access-audit-event';

/** Who made a request, as an AuditEvent names them: the verified caller (else `client`), and their address. */
export function requestAgent(request: AuthenticatedRequest, client?: string): PatientDataAccess['agent'] {
  const { caller } = request;
  return { id: caller?.id ?? client, fhirUser: caller?.fhirUser, display: caller?.display, address: request.ip };
}
