import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthenticatedRequest } from '@kc/auth';
import { accessAuditEvent } from './access-audit-event';
import { isAuditedRequest } from './access-audit.interceptor';
import { AuditTrail } from './audit-trail';
import { requestAgent } from './request-agent';

/**
 * Refused requests (401: no valid token; 403: a token without the role) leave an AuditEvent too: who tried (when
 * known), from where, what. A refusal on a route that audits its patient access is recorded there, once.
 */
@Injectable()
export class AccessDenials {
  constructor(private readonly trail: AuditTrail) {}

  record(request: AuthenticatedRequest, status: number): void {
    if ((status !== 401 && status !== 403) || isAuditedRequest(request)) return;
    this.trail.record(
      accessAuditEvent({
        interaction: request.method === 'GET' ? 'read' : 'operation',
        request: `${request.method} ${request.originalUrl}`,
        patients: [],
        status,
        agent: requestAgent(request),
        recorded: new Date(),
        id: randomUUID(),
      }),
    );
  }
}
