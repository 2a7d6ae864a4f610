import { SetMetadata } from '@nestjs/common';
import type { FhirAccess, SmartScope } from './smart-scopes';

export const ROLES = ['clinician', 'integration', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The authenticated caller, from a verified JWT. `id` is the token's sub: a user or client id, never patient data. */
export interface Caller {
  id: string;
  roles: Role[];
  /** FHIR reference for Provenance.agent.who, from the token's `fhirUser` claim when present. */
  fhirUser?: string;
  display?: string;
  /**
   * The SMART resource scopes the token grants (smartScopesOf): what it may do with FHIR data, within its roles.
   * Undefined when it names none: its roles alone bound it.
   */
  scopes?: SmartScope[];
  /** The launch patient (`patient` claim, `Patient/<id>`): what `patient/` scopes are bounded to. */
  patient?: string;
}

export const ROLES_KEY = 'kc:roles';
export const PUBLIC_KEY = 'kc:public';

/** Which roles may call a handler; admin may call anything. */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);
/**
 * What a handler does with FHIR data, as SMART scopes name it: a token that carries scopes must grant each (in the
 * `user/` or `system/` context; a `patient/` scope does not cover an action on any patient's data). A token with none
 * is bounded by its roles alone.
 */
export const SCOPES_KEY = 'kc:scopes';
export const FhirScopes = (...accesses: FhirAccess[]) => SetMetadata(SCOPES_KEY, accesses);
/** Opt out of authentication (health checks only). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
