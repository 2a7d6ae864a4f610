import { Injectable, Logger, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { tap, type Observable } from 'rxjs';
import type { AuthenticatedRequest } from '@kc/auth';
import { accessAuditEvent } from './access-audit-event';
import { AuditTrail } from './audit-trail';
import { accessOf } from './request-access';
import { PATIENT_ACCESS_KEY, type DescribeAccess } from './patient-access.decorator';

/**
 * For routes marked @AuditsPatientAccess: once the response is sent (the status the caller got, errors included),
 * records who accessed which patients' data. The response never waits for it (AuditTrail writes in the background).
 */
@Injectable()
export class AccessAuditInterceptor implements NestInterceptor {
  private readonly logger = new Logger(AccessAuditInterceptor.name);

  constructor(
    private readonly reflector: Reflector,
    private readonly trail: AuditTrail,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const describe = this.reflector.get<DescribeAccess | undefined>(PATIENT_ACCESS_KEY, context.getHandler());
    if (!describe || context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const response = context.switchToHttp().getResponse<Response>();
    let answer: unknown;
    audited.add(request);
    // Once the status is sent ('finish'), or the connection ended without it ('close'): whichever comes first.
    let done = false;
    const record = () => {
      if (done) return;
      done = true;
      // Runs in a response event: a throw here would end the process, so a failure is logged (no request data).
      try {
        this.record(describe, request, answer, response.statusCode);
      } catch (err) {
        this.logger.error({
          msg: 'access audit event not recorded',
          route: context.getHandler().name,
          err: String(err),
        });
      }
    };
    response.once('finish', record).once('close', record);
    return next.handle().pipe(tap((value) => (answer = value)));
  }

  private record(describe: DescribeAccess, request: AuthenticatedRequest, answer: unknown, status: number): void {
    // A request refused for what it asked (400, 404, 409, ...) got no patient data: nothing to record. Refusals of
    // who asked (401, 403) are.
    if (status >= 400 && status < 500 && status !== 401 && status !== 403) return;
    const described = describe(request, answer);
    if (!described) return;
    const { client, ...what } = described;
    this.trail.record(accessAuditEvent(accessOf(request, status, what, client)));
  }
}

/** Requests this interceptor records (refusals among them are not recorded twice, see AccessDenials). */
const audited = new WeakSet<object>();

export function isAuditedRequest(request: object): boolean {
  return audited.has(request);
}
