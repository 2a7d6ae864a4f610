import { SetMetadata } from '@nestjs/common';

export const ROLES = ['clinician', 'integration', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The authenticated caller, from a verified JWT. `id` is the token's sub: a user or client id, never patient data. */
export interface Caller {
  id: string;
  roles: Role[];
  /** FHIR reference for Provenance.agent.who, from the token's `fhirUser` claim when present. */
  fhirUser?: string;
  display?: string;
}

export const ROLES_KEY = 'kc:roles';
export const PUBLIC_KEY = 'kc:public';

/** Which roles may call a handler; admin may call anything. */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);
/** Opt out of authentication (health checks only). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
