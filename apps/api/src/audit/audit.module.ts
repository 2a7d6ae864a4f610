import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { AccessAuditInterceptor } from './access-audit.interceptor';
import { AccessDenials } from './access-denials';
import { AuditTrail } from './audit-trail';

/** Access auditing: AuditEvents for patient data read or used through the API, and for refused requests. */
@Global()
@Module({
  providers: [AuditTrail, AccessDenials, { provide: APP_INTERCEPTOR, useClass: AccessAuditInterceptor }],
  exports: [AuditTrail, AccessDenials],
})
export class AuditModule {}
