import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { bearerToken, OutcomeException } from '@kc/common';
import { PUBLIC_KEY, ROLES_KEY, SCOPES_KEY, type Caller, type Role } from './roles';
import { scopeRefusal, type FhirAccess } from './smart-scopes';
import { IntrospectionUnavailable } from './token-introspection';
import { TokenVerifier } from './token-verifier';

export type AuthenticatedRequest = Request & { caller?: Caller };

/**
 * Global guard: every route needs a valid bearer JWT unless marked @Public(), and one of the roles its @Roles names
 * (admin may call anything). A route that names no role is refused to everyone but admin, so a new endpoint is
 * closed until someone decides who may call it. Missing or bad token -> 401, valid token without the role -> 403.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(TokenVerifier) private readonly verifier: TokenVerifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    const token = bearerToken(header);
    const caller = token ? await verified(this.verifier, token) : undefined;
    if (!caller) throw new OutcomeException(401, 'login', 'A valid bearer token is required');
    request.caller = caller;
    this.assertRole(caller, this.reflector.getAllAndOverride<Role[]>(ROLES_KEY, targets));
    // Within its role, a token that carries SMART scopes may do only what they grant (an admin's too).
    const refusal = scopeRefusal(
      caller.scopes,
      this.reflector.getAllAndOverride<FhirAccess[]>(SCOPES_KEY, targets) ?? [],
    );
    if (refusal) throw new OutcomeException(403, 'forbidden', refusal);
    return true;
  }

  private assertRole(caller: Caller, allowed: Role[] | undefined): void {
    if (caller.roles.includes('admin')) return;
    if (!allowed?.length) throw new OutcomeException(403, 'forbidden', 'This action is for administrators only');
    if (!allowed.some((r) => caller.roles.includes(r))) {
      throw new OutcomeException(403, 'forbidden', `This action needs one of the roles: ${allowed.join(', ')}`);
    }
  }
}

/**
 * The token's caller, or undefined for an invalid one; 503 (with Retry-After) when the authorization server that must
 * vouch for it cannot be asked: a 401 would have the client drop a token that may be good.
 */
export async function verified(verifier: TokenVerifier, token: string): Promise<Caller | undefined> {
  try {
    return await verifier.verify(token);
  } catch (err) {
    if (!(err instanceof IntrospectionUnavailable)) throw err;
    throw new OutcomeException(
      503,
      'transient',
      'The authorization server could not be asked whether the token is active; retry shortly',
      undefined,
      err.message,
    );
  }
}

/**
 * For a handler whose FHIR access depends on the request (a persisted `$apply` writes, one not persisted does not): 403
 * unless the caller's SMART scopes, if any, grant each of `accesses` (as FhirScopes).
 */
export function assertScopesAllow(caller: Caller | undefined, accesses: FhirAccess[]): void {
  const refusal = scopeRefusal(caller?.scopes, accesses);
  if (refusal) throw new OutcomeException(403, 'forbidden', refusal);
}
