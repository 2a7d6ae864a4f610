import { Injectable } from '@nestjs/common';
import type { AuthenticatedRequest } from '@kc/auth';
import { accessAuditEvent } from './access-audit-event';
import { isAuditedRequest } from './access-audit.interceptor';
import { AuditTrail } from './audit-trail';
import { accessOf } from './request-access';

/**
 * Refused requests (401: no valid token; 403: a token without the role) leave an AuditEvent too: who tried (when
 * known), from where, what. A refusal on a route that audits its patient access is recorded there, once.
 * Unauthenticated ones at most UNAUTHENTICATED_PER_MINUTE per address (the rest counted as throttled).
 */
@Injectable()
export class AccessDenials {
  /** Unauthenticated refusals recorded this minute, per network address. */
  private readonly unauthenticated = new Map<string, number>();
  private minute = 0;

  constructor(private readonly trail: AuditTrail) {}

  record(request: AuthenticatedRequest, status: number): void {
    if ((status !== 401 && status !== 403) || isAuditedRequest(request)) return;
    if (status === 401 && this.overBudget(request.ip ?? 'unknown')) {
      this.trail.countThrottled();
      return;
    }
    const interaction = request.method === 'GET' ? 'read' : 'operation';
    this.trail.record(accessAuditEvent(accessOf(request, status, { interaction, patients: [] })));
  }

  /**
   * Past UNAUTHENTICATED_PER_MINUTE from one address (or once MAX_ADDRESSES addresses were seen this minute): a
   * scanner without a token must not become a flood of writes on the FHIR server. Authenticated refusals (403) are
   * all recorded: their caller is known and accountable.
   */
  private overBudget(address: string): boolean {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.unauthenticated.clear();
    }
    const seen = this.unauthenticated.get(address);
    if (seen === undefined && this.unauthenticated.size >= MAX_ADDRESSES) return true;
    this.unauthenticated.set(address, (seen ?? 0) + 1);
    return (seen ?? 0) + 1 > UNAUTHENTICATED_PER_MINUTE;
  }
}

const UNAUTHENTICATED_PER_MINUTE = 20;
const MAX_ADDRESSES = 10_000;
