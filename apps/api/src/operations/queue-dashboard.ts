import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { getQueueToken } from '@nestjs/bullmq';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Queue } from 'bullmq';
import type { NextFunction, Request, Response } from 'express';
import { TokenVerifier, verified, type Caller } from '@kc/auth';
import { bearerToken, OutcomeException } from '@kc/common';
import { QUEUES } from '@kc/queue';

export const DASHBOARD_PATH = '/operations/queues';

/**
 * bull-board at /operations/queues, for admins. Browsers cannot attach a bearer token to every request the
 * dashboard makes, so it takes the admin JWT as the password of HTTP basic auth (any user name), which the
 * browser then re-sends by itself; a bearer header works too.
 */
export function mountQueueDashboard(app: NestExpressApplication): void {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  const queues = Object.values(QUEUES).map((name) => new BullMQAdapter(app.get<Queue>(getQueueToken(name))));
  createBullBoard({ queues, serverAdapter });
  const verifier = app.get(TokenVerifier);
  const adminOnly = async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Basic ')
      ? Buffer.from(header.slice(6), 'base64').toString('utf8').split(':').slice(1).join(':')
      : bearerToken(header);
    let caller: Caller | undefined;
    try {
      caller = token ? await verified(verifier, token) : undefined;
    } catch (err) {
      // The guard's answer when the authorization server cannot be asked (503); this route is outside Nest's filter.
      if (!(err instanceof OutcomeException)) throw err;
      res.status(err.getStatus()).setHeader('retry-after', '5');
      res.type('application/fhir+json').send(err.getResponse());
      return;
    }
    if (caller?.roles.includes('admin')) return next();
    res.status(caller ? 403 : 401);
    if (!caller)
      res.setHeader('www-authenticate', 'Basic realm="queue dashboard: paste an admin token as the password"');
    res.type('application/fhir+json').send({
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: caller ? 'forbidden' : 'login',
          details: { text: 'The queue dashboard needs an admin token' },
        },
      ],
    });
  };
  app.use(DASHBOARD_PATH, adminOnly, serverAdapter.getRouter());
}
