import type { Request } from 'express';
import { scopesGranting, type AuthenticatedRequest, type Caller } from '@kc/auth';
import { OutcomeException } from '@kc/common';
import { ADMIN_ONLY_TYPES, READABLE_TYPES, type ReadableType } from './read-search-params';

/**
 * The types of `among` the caller may search across patients: by role (the audit trail an administrator's) and, for
 * a token with SMART scopes, a `user/` or `system/` search scope (a `patient/` scope searches no one's but its
 * patient's, so none here). What a bulk export or a subscription may cover.
 */
export function searchableTypes(
  caller: Caller,
  among: readonly ReadableType[] = Object.keys(READABLE_TYPES) as ReadableType[],
): ReadableType[] {
  return among.filter(
    (type) =>
      (!ADMIN_ONLY_TYPES.has(type) || caller.roles.includes('admin')) &&
      (!caller.scopes ||
        scopesGranting(caller.scopes, { resourceType: type, interaction: 's', params: {} }, ['user', 'system']).length >
          0),
  );
}

/**
 * The request's caller, for a bulk export or a subscription: one whose token may search none of the types this API
 * reads has no business with either (403, before anything is looked up).
 */
export function searchingCaller(req: Request): Caller {
  const caller = (req as AuthenticatedRequest).caller!;
  if (!searchableTypes(caller).length)
    throw new OutcomeException(403, 'forbidden', 'This token may read none of the types this server exports');
  return caller;
}
