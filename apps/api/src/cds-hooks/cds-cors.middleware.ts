import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '@kc/config';

/**
 * CORS for the CDS services only (discovery and service calls), for browser-based CDS clients such as the CDS Hooks
 * sandbox: the allowed origins come from CDS_CORS_ORIGINS. A preflight from an allowed origin is answered here (it
 * carries no token, so it must not reach the guard); one from another origin gets no CORS headers, and the browser
 * stops there. Credentials are never allowed: calls authenticate with a bearer JWT, not cookies.
 */
@Injectable()
export class CdsCorsMiddleware implements NestMiddleware {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  use(req: Request, res: Response, next: NextFunction): void {
    const origin = req.headers.origin;
    const allowed = this.config.cdsCorsOrigins;
    if (allowed !== '*') res.vary('Origin');
    if (!origin || (allowed !== '*' && !allowed.includes(origin))) return next();
    res.setHeader('Access-Control-Allow-Origin', allowed === '*' ? '*' : origin);
    if (req.method !== 'OPTIONS') return next();
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    res.setHeader('Access-Control-Max-Age', '600');
    res.status(204).end();
  }
}
