import { createHmac, randomUUID } from 'node:crypto';
import { loadConfig, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { WriteConformanceCheck } from '@kc/nest-core';
import { mintToken, type Role } from '@kc/auth';
import { startService, type RunningService } from '../../service/start-service';

export interface TestService extends RunningService {
  fhir: FhirClient;
  /** A bearer token per role, signed with the test secret. */
  tokens: Record<Role, string>;
  /** Authorization header value for a role. */
  as(role: Role): { Authorization: string };
}

export const TEST_JWT_SECRET = 'test-secret-' + randomUUID();
/** WEBHOOK_SECRET of every test service: the HMAC key of signed notifications, the token of HAPI-style ones. */
export const TEST_WEBHOOK_SECRET = 'test-webhook-secret';

/** The `x-signature` a notification body needs (HMAC-SHA256 of the body with TEST_WEBHOOK_SECRET). */
export function signWebhook(body: string): string {
  return createHmac('sha256', TEST_WEBHOOK_SECRET).update(body).digest('hex');
}

/**
 * The whole service on random ports with its own embedded FHIR server and its own BullMQ prefix,
 * so suites can run side by side on one Redis without seeing each other's jobs.
 */
export async function startTestService(overrides: Partial<AppConfig> = {}): Promise<TestService> {
  const base = loadConfig({ ...process.env, FHIR_BASE_URL: '' });
  const config: AppConfig = {
    ...base,
    port: 0,
    fhirSandboxPort: 0,
    // In memory unless a test passes a data directory (the restart tests do).
    fhirDataDir: ':memory:',
    queuePrefix: `kc-test-${randomUUID().slice(0, 8)}`,
    auth: { jwtSecret: TEST_JWT_SECRET },
    webhookSecret: TEST_WEBHOOK_SECRET,
    // No notifications from the embedded store unless a test asks: the tests post a server's notifications themselves.
    fhirSandboxSubscriptions: false,
    // No background polling unless a test asks; fast retries so failure tests take seconds.
    pollIntervalMs: 0,
    reconcileEveryMs: 0,
    reminderSweepMs: 0,
    // Failed jobs tried again by themselves only where a test runs the revival (DeadLetters.revive).
    deadLetterRevivalMs: 0,
    // No backups of the store unless a test asks (the backup tests pass a directory).
    fhirBackup: { dir: undefined, everyMs: 0, keep: 7 },
    // Access AuditEvents in memory unless a test passes a spool directory (the audit kill test does).
    auditSpoolDir: ':memory:',
    jobAttempts: 5,
    jobBackoffMs: 100,
    jobLockMs: 5000,
    logLevel: process.env.TEST_LOG_LEVEL ?? 'error',
    // The dev issuer only where a test signs in through it (it writes demo Practitioners at startup).
    oidc: { ...base.oidc, devIssuer: false, issuer: undefined },
    // Every write checked against fhir-profiles/: a test whose service wrote anything else fails at its stop.
    fhirWriteConformance: 1,
    ...overrides,
  };
  const service = await startService(config, { logger: false });
  const stop = async () => {
    await service.stop();
    const found = service.app.get(WriteConformanceCheck).found;
    if (found.length)
      throw new Error(
        `the service wrote ${found.length} resource(s) that do not conform to fhir-profiles/:\n` +
          found
            .map((f) => `${f.reference}: ${f.problems.map((p) => `${p.expression} ${p.message}`).join('; ')}`)
            .join('\n'),
      );
  };
  const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, maxAttempts: 1 });
  const tokens = {
    clinician: await mintToken(
      { sub: 'dr-test', roles: ['clinician'], fhirUser: 'Practitioner/dr-test', name: 'Dr Test' },
      { secret: TEST_JWT_SECRET },
    ),
    integration: await mintToken({ sub: 'ehr-test', roles: ['integration'] }, { secret: TEST_JWT_SECRET }),
    admin: await mintToken({ sub: 'admin-test', roles: ['admin'] }, { secret: TEST_JWT_SECRET }),
  };
  return { ...service, stop, fhir, tokens, as: (role) => ({ Authorization: `Bearer ${tokens[role]}` }) };
}
