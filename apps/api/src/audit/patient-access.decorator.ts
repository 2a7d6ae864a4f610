import { SetMetadata } from '@nestjs/common';
import type { AuthenticatedRequest } from '@kc/auth';
import type { PatientDataAccess } from './access-audit-event';

export const PATIENT_ACCESS_KEY = 'kc:patient-access';

/** What a route's access was about: from the request and, when it answered, its body (undefined: nothing to audit). */
export type DescribeAccess = (
  request: AuthenticatedRequest,
  answer: unknown,
) =>
  | (Pick<PatientDataAccess, 'interaction' | 'patients' | 'resource' | 'onBehalfOf'> & {
      /** Who called when it is not a user's token (a CDS client, by its JWT issuer). */
      client?: string;
    })
  | undefined;

/**
 * Marks a route that shows or uses a patient's data: each call leaves an AuditEvent (AccessAuditInterceptor) naming
 * who, from where, which patients (as `describe` finds them) and how it went.
 */
export const AuditsPatientAccess = (describe: DescribeAccess) => SetMetadata(PATIENT_ACCESS_KEY, describe);
