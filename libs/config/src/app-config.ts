import * as fs from 'node:fs';
import * as path from 'node:path';

/** How the service authenticates to the FHIR server it syncs with. */
export type FhirAuthConfig =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; token: string }
  | { kind: 'client-credentials'; tokenUrl: string; clientId: string; clientSecret: string; scope?: string };

export interface AppConfig {
  port: number;
  /** Interface to listen on; 0.0.0.0 inside a container. */
  host: string;
  /** Base URL of the FHIR R4 server; undefined means "start the embedded sandbox". */
  fhirBaseUrl?: string;
  fhirSandboxPort: number;
  /** The embedded server's data directory (FHIR_DATA_DIR), or `:memory:`; unused with fhirBaseUrl. */
  fhirDataDir: string;
  /**
   * The service subscribes to the embedded store's changes at start (FHIR_SANDBOX_SUBSCRIPTIONS, default on), as
   * `npm run fhir:subscriptions` does on Medplum: told at once, where it would wait for its polls and sweeps.
   */
  fhirSandboxSubscriptions: boolean;
  /**
   * The share of the resources this service writes that are checked against fhir-profiles/ (FHIR_WRITE_CONFORMANCE:
   * `false` or 0, the default; `true` or 1, every write; a fraction such as 0.05, that share at random): a departure is
   * logged and counted, the write stands. A profiled write costs its check ~2.6 ms of CPU. The tests check every write.
   */
  fhirWriteConformance: number;
  /**
   * Backups of the embedded store (a durable one, or any with FHIR_BACKUP_DIR set): where, how often (0: only when an
   * admin asks), how many are kept. No `dir`: none (an in-memory store without FHIR_BACKUP_DIR).
   */
  fhirBackup: { dir?: string; everyMs: number; keep: number };
  /**
   * When the embedded store's commits reach the disk (FHIR_STORE_SYNC): `normal` (WAL, synchronous=NORMAL: a commit
   * survives the process dying, the last ones may not survive a power loss) or `full` (fsync at every commit).
   */
  fhirStoreSync: 'normal' | 'full';
  /**
   * Where access AuditEvents wait until the FHIR server has taken them (AUDIT_SPOOL_DIR), so a process that dies
   * loses none; `:memory:`: in memory only (lost with the process).
   */
  auditSpoolDir: string;
  /**
   * When a spooled AuditEvent reaches the disk (AUDIT_SPOOL_SYNC, default FHIR_STORE_SYNC's): `normal` (it survives the
   * process dying) or `full` (an fsync per event: it survives a power loss too).
   */
  auditSpoolSync: 'normal' | 'full';
  /** The embedded FHIR server's largest `_offset` (Medplum's maxSearchOffset, 10,000); deeper pages by cursor. */
  fhirSandboxMaxSearchOffset: number;
  fhirAuth: FhirAuthConfig;
  /** Per-request timeout towards the FHIR server; a timed-out request is retried like a 503. */
  fhirTimeoutMs: number;
  /** Redis: `redis://` or `rediss://` (TLS), with user, password and database; with `redisSentinel`, its host is unused. */
  redisUrl: string;
  /**
   * Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME, REDIS_SENTINEL_PASSWORD): the clients ask these sentinels for
   * the current master of `name`, and again after a failover.
   */
  redisSentinel?: { sentinels: { host: string; port: number }[]; name: string; password?: string };
  /**
   * The certificate authority (PEM, read from REDIS_TLS_CA_FILE at start) that signed the Redis servers' and the
   * sentinels' TLS certificates, for a private CA; unset: the system's CAs. Used with `rediss://` only.
   */
  redisTlsCa?: string;
  /**
   * REDIS_COMMAND_STACKS=true (diagnosis): each Redis client error carries the stack of the code that sent the command
   * (ioredis's showFriendlyErrorStack; a stack captured per command, so not for production). The tests run with it,
   * to find what leaves a command pending on a client that ends (docs/known-limits.md, session 39).
   */
  redisCommandStacks: boolean;
  /** BullMQ key prefix; lets tests and tenants share one Redis without colliding. */
  queuePrefix: string;
  runWorker: boolean;
  profilesDir: string;
  auth: {
    jwtSecret?: string;
    jwksUrl?: string;
    issuer?: string;
    audience?: string;
    /** OpenID issuers whose tokens are accepted besides the above, each by its own JWKS (the dev issuer's). */
    trustedIssuers?: { issuer: string; jwksUrl: string }[];
    /** Longest accepted token lifetime (exp - iat), seconds: a stolen token is not good for ever. Default 24 h. */
    maxTokenLifetimeSeconds?: number;
    /**
     * Roles given to a token that carries no `roles` claim, by what it is (SMART_ROLES): `system` for a backend
     * service's token (SMART `system/` scopes), or the type of its `fhirUser` (`Practitioner`, `PractitionerRole`) for a
     * user's. Empty by default: an authorization server that issues no roles (an EHR's) is trusted only as configured.
     */
    smartRoles?: SmartRoles;
    /**
     * OAuth 2.0 token introspection (RFC 7662, TOKEN_INTROSPECTION_URL): an access token that is no JWT (an EHR's
     * authorization server may issue opaque ones) is asked about there, and with `checkJwts` (TOKEN_INTROSPECTION_FOR=all)
     * every token is, after its signature, so one revoked is refused. An answer is kept `cacheSeconds` at most.
     */
    introspection?: TokenIntrospectionConfig;
  };
  /** How the clinician page signs in: OpenID Connect (authorization code + PKCE), also as a SMART on FHIR app. */
  oidc: OidcConfig;
  /** NODE_ENV=production: development conveniences (dev secret, dev issuer) are refused. */
  production: boolean;
  webhookSecret?: string;
  pollIntervalMs: number;
  /** How often the worklist index is reconciled with the FHIR server (a full re-read); 0 = only at start. */
  worklistReconcileMs: number;
  /** How far back each poll re-reads, for resources a server stamped earlier than it committed them. */
  pollOverlapMs: number;
  /** Where polling starts the first time (ISO instant); default: when the worker first starts. */
  pollSince?: string;
  /**
   * The clinic's IANA time zone (CLINIC_TIME_ZONE, default UTC): the days and times clinicians read, the day a date
   * given alone stands for (a plan's start, a filter), and the calendar days, weeks and months protocols count in.
   */
  clinicTimeZone: string;
  /**
   * How often completed Procedures and outcome scores of the last `reconcileLookbackMs` are re-queued whatever the
   * poll cursor says (0 = never): an accepted event lost with Redis' memory still gets its follow-ups, and a score
   * still moves its booster. Queuing an infusion (or a score version) whose job Redis still remembers is a no-op, and
   * one whose work is done writes nothing.
   */
  reconcileEveryMs: number;
  reconcileLookbackMs: number;
  /**
   * Reminders: how often the worker looks for active reminders due within `reminderHorizonMs` and queues each as a
   * delayed job (0 = never; the FHIR server holds them, so a lost job is found again).
   */
  reminderSweepMs: number;
  reminderHorizonMs: number;
  /**
   * Jobs kept as failed (their attempts spent: a FHIR or mail server down longer than their backoff, a protocol gone
   * from the server) are tried again by themselves (DEAD_LETTER_REVIVAL_MS: the first wait, doubled after each try
   * that failed again, up to a day; also how often the worker looks; 0 = never) for `deadLetterRevivalForMs` after
   * their first failure (DEAD_LETTER_REVIVAL_FOR_MS), then left to an operator.
   */
  deadLetterRevivalMs: number;
  deadLetterRevivalForMs: number;
  /**
   * How long an infusion's follow-up may keep failing for good (its job a dead letter, its post-infusion check not
   * planned) before the clinic is told (FOLLOW_UP_FAILING_ALERT_MS; looked at by the 15-minute sweep; 0 = at the first
   * look). Shorter than the revivals' first waits, an outage the next revival outlasts is told too.
   */
  followUpFailingAlertMs: number;
  /**
   * Bulk Data exports (`$export`): the largest NDJSON file written (BULK_EXPORT_FILE_MAX_BYTES, 8 MiB: under the
   * embedded store's 10 MB body; a file holds whole pages), the page read from the FHIR server at a time
   * (BULK_EXPORT_PAGE_SIZE, 1,000: Medplum's most; 20 at least, for cursor paging), how long a finished export's
   * files stay (BULK_EXPORT_RETENTION_SECONDS, a day) and how many one client may have running at once
   * (BULK_EXPORT_PER_CLIENT, 3; more is 429).
   */
  bulkExport: { maxFileBytes: number; pageSize: number; retentionMs: number; perClient: number };
  /**
   * Where an EHR integration's FHIR Subscriptions (rest-hook, created through `POST /fhir/Subscription`) may deliver:
   * the origins allowed (SUBSCRIPTION_ENDPOINT_ORIGINS, comma-separated, like https://ehr.example.org). Empty: none
   * may be created (the FHIR server would post patient data wherever a client names).
   */
  subscriptionEndpointOrigins: string[];
  /** Email for patient reminders (SMTP_URL, e.g. smtp://user:pass@host:587); unset: FHIR Communication only. */
  smtp?: { url: string; from: string };
  /**
   * Who is emailed when a patient reports an effect that waits for a clinician's review, or a contraindication found
   * after approval holds an approved order (CLINIC_ALERT_EMAIL,
   * comma-separated: the clinician on call, a team's inbox); needs SMTP_URL. Empty: nobody is emailed.
   */
  clinicAlertEmails: string[];
  /**
   * Who gets each clinic alert in the EHR's inbox (CLINIC_ALERT_RECIPIENTS, comma-separated references: a
   * PractitionerRole on call, a CareTeam, an Organization): a Communication to them, written to the FHIR server, as
   * messaging in Medplum or an EHR reads one. Empty: none (the email alone, if any).
   */
  clinicAlertRecipients: string[];
  /**
   * Follow-up batches one worker process runs at once; each takes up to `followUpBatchSize` events that arrived
   * together (a batch's reads and writes cost 3 FHIR requests whatever its size), so the worker holds up to
   * workerConcurrency x followUpBatchSize jobs.
   */
  workerConcurrency: number;
  followUpBatchSize: number;
  /**
   * Who a follow-up Task (the check, the next session, the booster) is for when it is written (FOLLOW_UP_OWNER):
   * `none`, nobody's until someone takes it (a clinic working as a pool); `infusion`, the owner of the Task the
   * infusion fulfilled (a primary-nurse clinic: who gave the session does its check and the next one); `care-team`,
   * the member of the patient's care team (CareTeam) in the role the protocol names as the Task's performer (a nurse).
   */
  followUpOwner: 'none' | 'infusion' | 'care-team';
  /**
   * How long answers written without their Task (a QuestionnaireResponse alone) wait before they are matched to a
   * check (CHECK_ANSWERS_GRACE_MS): a form filler that writes the answers and then completes the Task itself (SDC)
   * is left to finish, so its check is recorded from its own Task.
   */
  checkAnswersGraceMs: number;
  /**
   * How long an order of an approved session closed outside this service waits before the session is returned to a
   * clinician (ORDER_CHANGE_GRACE_MS): an EHR changing a dose may cancel the order before it writes the replacement.
   */
  orderChangeGraceMs: number;
  /** Attempts per follow-up job before it lands in the dead-letter view, and the first backoff delay. */
  jobAttempts: number;
  jobBackoffMs: number;
  /** How long a worker may hold a job without renewing its lock before another worker takes it over. */
  jobLockMs: number;
  /** Port for the standalone worker's /metrics (0 = none). */
  workerMetricsPort: number;
  overdueSweepEvery: string;
  logLevel: string;
  /** CDS Hooks: the clients (by JWT `iss`) allowed to call the CDS services, and how their JWTs are verified. */
  cdsClients: Record<string, CdsClientKey>;
  /**
   * The service's public base URL when a proxy or load balancer is in front (e.g. https://careplans.clinic.example):
   * the dev issuer's URL (its tokens' `iss`, its JWKS) is under it, so every replica behind it issues and trusts the
   * same issuer. Unset: the address the service listens on.
   */
  publicUrl?: string;
  /**
   * Public base URL of this service (e.g. https://cds.clinic.example), the prefix of the `aud` a CDS client's JWT
   * must carry and of card links. Unset: PUBLIC_URL, else taken from the request's Host (fine without a proxy).
   */
  cdsPublicUrl?: string;
  /** Browser origins allowed to call the CDS services (CORS): any (`*`), these, or none. */
  cdsCorsOrigins: '*' | string[];
  /**
   * EHR FHIR servers a CDS call may name as `fhirServer` (with a `fhirAuthorization` bearer token) for the patient
   * data and Medications it did not prefetch; any other is ignored (the service never calls a URL a request names
   * unless the deployment trusts it).
   */
  cdsFhirServers: string[];
  /**
   * How long one CDS call may spend reading FHIR (the orders' Medications, the patient's records), in ms: an EHR
   * waits a few seconds for cards and shows none after; past this the call answers with a card saying the check
   * could not run.
   */
  cdsReadBudgetMs: number;
  /**
   * How long a SIGTERM / SIGINT may take to shut down gracefully (active jobs finish, connections close) before the
   * process exits anyway: under an orchestrator's grace period (Kubernetes: 30 s).
   */
  shutdownTimeoutMs: number;
}

/**
 * How a CDS client's JWT is verified: a JWK Set URL (asymmetric keys, as CDS Hooks requires) or a shared secret
 * (HS256/384/512; not conformant to CDS Hooks, which forbids symmetric algorithms: for development and tests).
 */
export type CdsClientKey = { jwksUrl: string } | { secret: string };

export interface OidcConfig {
  /** The OpenID issuer the page signs in with; with the dev issuer, set at startup to `<service>/dev-issuer`. */
  issuer?: string;
  /** The page's OAuth client id (a public client: PKCE, no secret). */
  clientId: string;
  /** Scopes the page asks for. */
  scope: string;
  /** The built-in development issuer with demo users (never in production). */
  devIssuer: boolean;
  /** How long the dev issuer's access tokens live, in seconds (its refresh tokens last a 12-hour shift). */
  devTokenSeconds: number;
  /**
   * SMART Backend Services clients of the dev issuer (DEV_ISSUER_CLIENTS), by client id: the keys their assertions are
   * signed with, and the scopes (and roles, if any) it may grant them.
   */
  devClients?: Record<string, DevBackendClient>;
}

/** A backend service the dev issuer grants tokens to (client credentials, `private_key_jwt`). */
export interface DevBackendClient {
  /** Its public keys, inline (`{"keys": [...]}`) or where to fetch them: exactly one. */
  jwks?: { keys: Record<string, unknown>[] };
  jwksUrl?: string;
  /** The scopes it may be granted (space-separated), e.g. `system/CarePlan.rs system/Task.rs`. */
  scope: string;
  /** A `roles` claim for its tokens; absent, none (SMART_ROLES decides, as for an EHR's authorization server). */
  roles?: ('integration' | 'clinician')[];
}

/** The dev issuer's path on this service. */
export const DEV_ISSUER_PATH = '/dev-issuer';

/**
 * Points the page and token verification at the built-in dev issuer once the service's own URL is known
 * (what setting OIDC_ISSUER, JWT_ISSUER and JWT_JWKS_URL by hand would do for an external issuer).
 */
export function withDevIssuer(config: AppConfig, serviceUrl: string): AppConfig {
  if (!config.oidc.devIssuer) return config;
  const issuer = serviceUrl.replace(/\/+$/, '') + DEV_ISSUER_PATH;
  const others = (config.auth.trustedIssuers ?? []).filter((t) => !t.issuer.endsWith(DEV_ISSUER_PATH));
  return {
    ...config,
    oidc: { ...config.oidc, issuer },
    auth: { ...config.auth, trustedIssuers: [...others, { issuer, jwksUrl: `${issuer}/jwks` }] },
  };
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['true', '1', 'on'].includes(raw)) return true;
  if (['false', '0', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false (on/off, 1/0), got "${raw}"`);
}

/**
 * What the clinician page asks for by default: to read, and to write what a clinician's decisions write (the API
 * refuses a token's SMART scopes anything else: `@FhirScopes`). An EHR's authorization server grants what it allows.
 */
export const PAGE_SCOPE = [
  'openid fhirUser profile user/*.read',
  ...['Task', 'MedicationRequest', 'CarePlan', 'DetectedIssue', 'Procedure', 'QuestionnaireResponse'].map(
    (type) => `user/${type}.write`,
  ),
].join(' ');

/** OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_SCOPE, DEV_ISSUER, DEV_ISSUER_TOKEN_SECONDS. */
export function oidcFrom(env: NodeJS.ProcessEnv): OidcConfig {
  const production = env.NODE_ENV === 'production';
  const issuer = env.OIDC_ISSUER ? env.OIDC_ISSUER.replace(/\/+$/, '') : undefined;
  if (issuer !== undefined && !httpUrl(issuer))
    throw new ConfigError(`OIDC_ISSUER must be an http(s) URL, got "${env.OIDC_ISSUER}"`);
  const devIssuer = bool(env, 'DEV_ISSUER', !production && !issuer);
  if (devIssuer && production)
    throw new ConfigError('DEV_ISSUER is refused with NODE_ENV=production: set OIDC_ISSUER to your identity provider');
  if (devIssuer && issuer) throw new ConfigError('Set either OIDC_ISSUER or DEV_ISSUER=true, not both');
  if (issuer && !env.JWT_JWKS_URL)
    throw new ConfigError('OIDC_ISSUER needs JWT_JWKS_URL (the issuer JWK Set that signs its access tokens)');
  const clientId = env.OIDC_CLIENT_ID ?? 'ketamine-careplans-ui';
  if (!/^[\x21-\x7e]{1,200}$/.test(clientId)) throw new ConfigError('OIDC_CLIENT_ID must be printable ASCII');
  const scope = env.OIDC_SCOPE ?? PAGE_SCOPE;
  if (!scope.split(' ').includes('openid')) throw new ConfigError('OIDC_SCOPE must include openid');
  return {
    issuer,
    clientId,
    scope,
    devIssuer,
    devTokenSeconds: positiveInt(env, 'DEV_ISSUER_TOKEN_SECONDS', 3600),
    devClients: devClientsFrom(env),
  };
}

/**
 * DEV_ISSUER_CLIENTS: JSON object of client id -> {"jwks": {"keys": [...]}} or {"jwksUrl": "..."}, with "scope"
 * (what it may be granted) and optionally "roles".
 */
function devClientsFrom(env: NodeJS.ProcessEnv): Record<string, DevBackendClient> {
  if (!env.DEV_ISSUER_CLIENTS) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(env.DEV_ISSUER_CLIENTS);
  } catch {
    throw new ConfigError('DEV_ISSUER_CLIENTS must be a JSON object of client id -> {jwks | jwksUrl, scope, roles?}');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError('DEV_ISSUER_CLIENTS must be a JSON object of client id -> {jwks | jwksUrl, scope, roles?}');
  const clients: Record<string, DevBackendClient> = {};
  for (const [id, value] of Object.entries(parsed as Record<string, unknown>)) {
    const where = `DEV_ISSUER_CLIENTS["${id}"]`;
    const { jwks, jwksUrl, scope, roles, ...rest } = (value ?? {}) as Record<string, unknown>;
    if (Object.keys(rest).length) throw new ConfigError(`${where} has unknown keys: ${Object.keys(rest).join(', ')}`);
    if (!/^[\x21-\x7e]{1,200}$/.test(id)) throw new ConfigError(`${where}: the client id must be printable ASCII`);
    if ((jwks === undefined) === (jwksUrl === undefined))
      throw new ConfigError(`${where} needs exactly one of jwks or jwksUrl`);
    if (jwksUrl !== undefined && !httpUrl(jwksUrl)) throw new ConfigError(`${where}.jwksUrl must be an http(s) URL`);
    const keys = (jwks as { keys?: unknown } | undefined)?.keys;
    if (jwks !== undefined && (!Array.isArray(keys) || !keys.length || keys.some((k) => !k || typeof k !== 'object')))
      throw new ConfigError(`${where}.jwks must be {"keys": [<public JWK>, ...]}`);
    if (typeof scope !== 'string' || !scope.trim()) throw new ConfigError(`${where}.scope must name its scopes`);
    if (roles !== undefined && (!Array.isArray(roles) || roles.some((r) => r !== 'integration' && r !== 'clinician')))
      throw new ConfigError(`${where}.roles must be a list of integration, clinician`);
    clients[id] = {
      ...(jwks !== undefined ? { jwks: jwks as DevBackendClient['jwks'] } : { jwksUrl }),
      scope: scope.trim(),
      ...(roles !== undefined ? { roles: roles as DevBackendClient['roles'] } : {}),
    };
  }
  return clients;
}

export const APP_CONFIG = Symbol('APP_CONFIG');

export class ConfigError extends Error {}

/** The checkout root: found by walking up, because compiled code runs from dist/ and sources from the tree. */
function findRepoRoot(from: string): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'fhir-profiles')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
const REPO_ROOT = findRepoRoot(__dirname);

/** A share between 0 and 1: `true`/`false` (on/off) for all or none, else a number such as 0.05. Default none. */
function share(env: NodeJS.ProcessEnv, name: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '' || ['false', 'off'].includes(raw)) return 0;
  if (['true', 'on'].includes(raw)) return 1;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new ConfigError(`${name} must be true, false or a share between 0 and 1 such as 0.05, got "${raw}"`);
  return value;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new ConfigError(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

function bulkExportFrom(env: NodeJS.ProcessEnv): AppConfig['bulkExport'] {
  const pageSize = positiveInt(env, 'BULK_EXPORT_PAGE_SIZE', 1000);
  if (pageSize < 20 || pageSize > 1000)
    throw new ConfigError(`BULK_EXPORT_PAGE_SIZE must be between 20 and 1000 (cursor paging), got "${pageSize}"`);
  return {
    maxFileBytes: positiveInt(env, 'BULK_EXPORT_FILE_MAX_BYTES', 8 * 1024 * 1024),
    pageSize,
    retentionMs: positiveInt(env, 'BULK_EXPORT_RETENTION_SECONDS', 24 * 3600) * 1000,
    perClient: positiveInt(env, 'BULK_EXPORT_PER_CLIENT', 3),
  };
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = int(env, name, fallback);
  if (value < 1) throw new ConfigError(`${name} must be at least 1, got "${env[name]}"`);
  return value;
}

function instant(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(raw) || Number.isNaN(Date.parse(raw))) {
    throw new ConfigError(`${name} must be an ISO date or instant like 2027-01-01T00:00:00Z, got "${raw}"`);
  }
  return new Date(raw).toISOString();
}

/** An IANA time zone name the runtime knows (Europe/London), UTC when unset. */
function timeZone(env: NodeJS.ProcessEnv, name: string): string {
  const raw = env[name]?.trim();
  if (!raw) return 'UTC';
  try {
    return new Intl.DateTimeFormat('en', { timeZone: raw }).resolvedOptions().timeZone;
  } catch {
    throw new ConfigError(`${name} must be an IANA time zone like Europe/London or America/New_York, got "${raw}"`);
  }
}

/** A directory that is (or can become) a directory, or `:memory:`. Relative paths are taken from the working directory. */
function dataDir(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === ':memory:') return raw;
  const resolved = path.resolve(raw);
  let dir = resolved;
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  if (!fs.statSync(dir).isDirectory())
    throw new ConfigError(`${name} must be a directory or :memory:, but ${dir} is a file (got "${raw}")`);
  return resolved;
}

function oneOf<const T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(values as readonly string[]).includes(raw))
    throw new ConfigError(`${name} must be one of ${values.join(', ')}; got "${raw}"`);
  return raw as T;
}

function redisUrl(env: NodeJS.ProcessEnv): string {
  const raw = env.REDIS_URL || 'redis://127.0.0.1:6379';
  const protocol = URL.canParse(raw) ? new URL(raw).protocol : undefined;
  if (protocol !== 'redis:' && protocol !== 'rediss:')
    throw new ConfigError(`REDIS_URL must be a redis:// or rediss:// URL, got "${raw}"`);
  return raw;
}

/** REDIS_SENTINELS: `host:port,host:port`; the master's name defaults to Redis's own example, `mymaster`. */
function redisSentinel(env: NodeJS.ProcessEnv): AppConfig['redisSentinel'] {
  const raw = env.REDIS_SENTINELS;
  if (!raw) return undefined;
  const sentinels = raw.split(',').map((entry) => {
    const match = /^\s*([^\s:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\s*$/.exec(entry);
    if (!match) throw new ConfigError(`REDIS_SENTINELS must be host:port pairs separated by commas, got "${raw}"`);
    return { host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) };
  });
  return {
    sentinels,
    name: env.REDIS_SENTINEL_NAME || 'mymaster',
    password: env.REDIS_SENTINEL_PASSWORD || undefined,
  };
}

/** REDIS_TLS_CA_FILE: read once, so a wrong path fails at start rather than at the first connection. */
function redisTlsCa(env: NodeJS.ProcessEnv): string | undefined {
  const file = env.REDIS_TLS_CA_FILE;
  if (!file) return undefined;
  if (!new URL(redisUrl(env)).protocol.startsWith('rediss'))
    throw new ConfigError('REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss:// (TLS)');
  try {
    const pem = fs.readFileSync(file, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
    return pem;
  } catch (err) {
    throw new ConfigError(`REDIS_TLS_CA_FILE=${file}: ${(err as Error).message}`);
  }
}

/** FHIR_BACKUP_DIR, else beside a durable data directory (data/fhir -> data/fhir-backups); another disk is safer. */
function backupDir(env: NodeJS.ProcessEnv, fhirDataDir: string): string | undefined {
  if (env.FHIR_BACKUP_DIR === ':memory:') throw new ConfigError('FHIR_BACKUP_DIR must be a directory');
  if (env.FHIR_BACKUP_DIR) return dataDir(env, 'FHIR_BACKUP_DIR', '');
  return fhirDataDir === ':memory:' ? undefined : `${fhirDataDir}-backups`;
}

function required(env: NodeJS.ProcessEnv, name: string, because: string): string {
  const value = env[name];
  if (!value) throw new ConfigError(`${name} is required ${because}`);
  return value;
}

function httpUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/**
 * CDS_CORS_ORIGINS: the browser origins a CDS client may call from (CDS Hooks: "browser-based CDS Clients will
 * require CORS support"). Unset or `*`: any origin, which is safe here because calls carry a bearer JWT, never a
 * cookie; `none`: no CORS headers; else a comma-separated list of origins such as https://sandbox.cds-hooks.org.
 */
export function cdsCorsOriginsFrom(env: NodeJS.ProcessEnv): '*' | string[] {
  const raw = env.CDS_CORS_ORIGINS?.trim();
  if (!raw || raw === '*') return '*';
  if (raw === 'none') return [];
  const origins = raw.split(',').map((o) => o.trim());
  for (const origin of origins) {
    const url = httpUrl(origin) ? new URL(origin) : undefined;
    if (!url || url.origin !== origin)
      throw new ConfigError(
        `CDS_CORS_ORIGINS must be *, none, or origins like https://sandbox.cds-hooks.org (no path), got "${origin}"`,
      );
  }
  return origins;
}

/** SUBSCRIPTION_ENDPOINT_ORIGINS: comma-separated origins (scheme, host, port; no path) a rest-hook may post to. */
export function subscriptionEndpointOriginsFrom(env: NodeJS.ProcessEnv): string[] {
  const raw = env.SUBSCRIPTION_ENDPOINT_ORIGINS?.trim();
  if (!raw) return [];
  const origins = raw.split(',').map((o) => o.trim());
  for (const origin of origins) {
    const url = httpUrl(origin) ? new URL(origin) : undefined;
    if (!url || url.origin !== origin)
      throw new ConfigError(
        `SUBSCRIPTION_ENDPOINT_ORIGINS must be origins like https://ehr.example.org (no path), got "${origin}"`,
      );
  }
  return origins;
}

/** CDS_FHIR_SERVERS: comma-separated base URLs of the EHR FHIR servers CDS calls may send as `fhirServer`. */
export function cdsFhirServersFrom(env: NodeJS.ProcessEnv): string[] {
  const raw = env.CDS_FHIR_SERVERS?.trim();
  if (!raw) return [];
  return raw.split(',').map((entry) => {
    const url = entry.trim().replace(/\/+$/, '');
    if (!httpUrl(url) || new URL(url).search || new URL(url).hash)
      throw new ConfigError(`CDS_FHIR_SERVERS must be FHIR base URLs like https://ehr.example/fhir/r4, got "${entry}"`);
    return url;
  });
}

/** Roles by what a token without a `roles` claim is: `system`, or its `fhirUser` type. */
/** Where and how this service asks an authorization server whether a token is active (RFC 7662). */
export interface TokenIntrospectionConfig {
  url: string;
  /** This service's client credentials there (HTTP Basic), when the server asks for them. */
  clientId?: string;
  clientSecret?: string;
  /** How long an answer is kept (a revocation is seen within it); never past the token's own expiry. */
  cacheSeconds: number;
  /** Also ask about JWTs whose signature verified (to see revocations), not only opaque tokens. */
  checkJwts: boolean;
}

export type SmartRoles = Partial<Record<'system' | 'Practitioner' | 'PractitionerRole', 'clinician' | 'integration'>>;

const SMART_ROLE_SUBJECTS = ['system', 'Practitioner', 'PractitionerRole'] as const;

/** TOKEN_INTROSPECTION_URL and its credentials, what it is asked about and for how long; unset, none. */
function introspectionFrom(env: NodeJS.ProcessEnv): TokenIntrospectionConfig | undefined {
  const url = env.TOKEN_INTROSPECTION_URL;
  if (!url) return undefined;
  if (!httpUrl(url))
    throw new ConfigError(`TOKEN_INTROSPECTION_URL must be an http(s) URL, got "${env.TOKEN_INTROSPECTION_URL}"`);
  const clientId = env.TOKEN_INTROSPECTION_CLIENT_ID || undefined;
  const clientSecret = env.TOKEN_INTROSPECTION_CLIENT_SECRET || undefined;
  if (Boolean(clientId) !== Boolean(clientSecret))
    throw new ConfigError('TOKEN_INTROSPECTION_CLIENT_ID and TOKEN_INTROSPECTION_CLIENT_SECRET go together');
  const which = env.TOKEN_INTROSPECTION_FOR ?? 'opaque';
  if (which !== 'opaque' && which !== 'all')
    throw new ConfigError(`TOKEN_INTROSPECTION_FOR must be "opaque" or "all", got "${which}"`);
  return {
    url,
    clientId,
    clientSecret,
    cacheSeconds: int(env, 'TOKEN_INTROSPECTION_CACHE_SECONDS', 60),
    checkJwts: which === 'all',
  };
}

/** SMART_ROLES: `system=integration,Practitioner=clinician` (each at most once); unset, none. */
function smartRolesFrom(env: NodeJS.ProcessEnv): SmartRoles {
  const roles: SmartRoles = {};
  for (const pair of (env.SMART_ROLES ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [subject, role, ...rest] = pair.split('=').map((p) => p.trim());
    if (
      rest.length ||
      !(SMART_ROLE_SUBJECTS as readonly string[]).includes(subject) ||
      !['clinician', 'integration'].includes(role) ||
      subject in roles
    )
      throw new ConfigError(
        `SMART_ROLES: "${pair}" must be <system|Practitioner|PractitionerRole>=<clinician|integration>, each once`,
      );
    roles[subject as keyof SmartRoles] = role as 'clinician' | 'integration';
  }
  return roles;
}

/** CDS_CLIENTS: JSON object of issuer -> {"jwksUrl": "https://..."} or {"secret": "..."} (at least 32 characters). */
export function cdsClientsFrom(env: NodeJS.ProcessEnv): Record<string, CdsClientKey> {
  const raw = env.CDS_CLIENTS;
  if (!raw) return {};
  const example = '{"https://ehr.example.org": {"jwksUrl": "https://ehr.example.org/.well-known/jwks.json"}}';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(`CDS_CLIENTS must be JSON like ${example}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`CDS_CLIENTS must be a JSON object of issuer -> key, like ${example}`);
  const clients: Record<string, CdsClientKey> = {};
  for (const [issuer, key] of Object.entries(parsed as Record<string, unknown>)) {
    const where = `CDS_CLIENTS["${issuer}"]`;
    if (!issuer.trim()) throw new ConfigError('CDS_CLIENTS has an empty issuer');
    const { jwksUrl, secret, ...rest } = (key ?? {}) as { jwksUrl?: unknown; secret?: unknown };
    if (typeof key !== 'object' || key === null || Object.keys(rest).length)
      throw new ConfigError(`${where} must be {"jwksUrl": "..."} or {"secret": "..."}`);
    if ((jwksUrl === undefined) === (secret === undefined))
      throw new ConfigError(`${where} needs exactly one of jwksUrl or secret`);
    if (jwksUrl !== undefined) {
      if (!httpUrl(jwksUrl)) throw new ConfigError(`${where}.jwksUrl must be an http(s) URL`);
      clients[issuer] = { jwksUrl };
    } else {
      if (typeof secret !== 'string' || secret.length < 32)
        throw new ConfigError(`${where}.secret must be a string of at least 32 characters`);
      clients[issuer] = { secret };
    }
  }
  return clients;
}

/** SMTP_URL (smtp:// or smtps://, credentials in the URL) and SMTP_FROM. */
function smtpFrom(env: NodeJS.ProcessEnv): AppConfig['smtp'] {
  const url = env.SMTP_URL;
  if (!url) return undefined;
  if (!/^smtps?:\/\/[^/\s]+/.test(url))
    throw new ConfigError('SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465');
  return { url, from: env.SMTP_FROM ?? 'Ketamine infusion clinic <no-reply@clinic.example>' };
}

/** CLINIC_ALERT_RECIPIENTS: references to who may receive a message (Communication.recipient), comma-separated. */
function clinicAlertRecipientsFrom(env: NodeJS.ProcessEnv): string[] {
  const refs = (env.CLINIC_ALERT_RECIPIENTS ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const bad = refs.find((r) => !ALERT_RECIPIENT.test(r));
  if (bad)
    throw new ConfigError(
      `CLINIC_ALERT_RECIPIENTS must be references like PractitionerRole/on-call or CareTeam/infusion-nurses, comma-separated; "${bad}" is not one`,
    );
  return refs;
}

/** Who a Communication can be sent to, by reference (R4 Communication.recipient). */
const ALERT_RECIPIENT =
  /^(Practitioner|PractitionerRole|Organization|CareTeam|Group|RelatedPerson|HealthcareService)\/[A-Za-z0-9\-.]{1,64}$/;

/** CLINIC_ALERT_EMAIL: addresses, comma-separated; only with SMTP_URL (there is nothing to send them with otherwise). */
function clinicAlertEmailsFrom(env: NodeJS.ProcessEnv): string[] {
  const emails = (env.CLINIC_ALERT_EMAIL ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = emails.find((e) => !/^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/.test(e));
  if (bad) throw new ConfigError(`CLINIC_ALERT_EMAIL must be email addresses, comma-separated; "${bad}" is not one`);
  if (emails.length && !env.SMTP_URL) throw new ConfigError('CLINIC_ALERT_EMAIL needs SMTP_URL to send with');
  return emails;
}

function publicUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  if (!httpUrl(raw))
    throw new ConfigError(`${name} must be an http(s) URL like https://cds.clinic.example, got "${String(raw)}"`);
  return raw.replace(/\/+$/, '');
}

function fhirAuthFrom(env: NodeJS.ProcessEnv): FhirAuthConfig {
  const kind = env.FHIR_AUTH ?? 'none';
  const why = `when FHIR_AUTH=${kind}`;
  switch (kind) {
    case 'none':
      return { kind };
    case 'basic':
      return { kind, username: required(env, 'FHIR_USERNAME', why), password: required(env, 'FHIR_PASSWORD', why) };
    case 'bearer':
      return { kind, token: required(env, 'FHIR_BEARER_TOKEN', why) };
    case 'client-credentials':
      return {
        kind,
        tokenUrl: required(env, 'FHIR_TOKEN_URL', why),
        clientId: required(env, 'FHIR_CLIENT_ID', why),
        clientSecret: required(env, 'FHIR_CLIENT_SECRET', why),
        scope: env.FHIR_SCOPE,
      };
    default:
      throw new ConfigError(`FHIR_AUTH must be one of none, basic, bearer, client-credentials; got "${kind}"`);
  }
}

/**
 * AUDIT_SPOOL_DIR, else beside a durable embedded store (data/fhir -> data/fhir-audit-spool) or, with FHIR_BASE_URL,
 * data/audit-spool; in memory beside an in-memory store, whose AuditEvents die with the process anyway.
 */
function auditSpoolDir(env: NodeJS.ProcessEnv, fhirDataDir: string): string {
  if (env.AUDIT_SPOOL_DIR) return dataDir(env, 'AUDIT_SPOOL_DIR', '');
  if (env.FHIR_BASE_URL) return path.join(REPO_ROOT, 'data', 'audit-spool');
  return fhirDataDir === ':memory:' ? ':memory:' : `${fhirDataDir}-audit-spool`;
}

/** Reads and validates the environment once, so a typo fails at startup rather than on the first request. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const servicePublicUrl = publicUrl(env, 'PUBLIC_URL');
  const fhirDataDir = dataDir(env, 'FHIR_DATA_DIR', path.join(REPO_ROOT, 'data', 'fhir'));
  return {
    port: int(env, 'PORT', 3000),
    host: env.HOST ?? '127.0.0.1',
    fhirBaseUrl: env.FHIR_BASE_URL ? env.FHIR_BASE_URL.replace(/\/+$/, '') : undefined,
    fhirSandboxPort: int(env, 'FHIR_SANDBOX_PORT', 8103),
    fhirDataDir,
    fhirSandboxSubscriptions: bool(env, 'FHIR_SANDBOX_SUBSCRIPTIONS', true),
    fhirWriteConformance: share(env, 'FHIR_WRITE_CONFORMANCE'),
    fhirBackup: {
      dir: backupDir(env, fhirDataDir),
      everyMs: int(env, 'FHIR_BACKUP_EVERY_HOURS', 24) * 3600_000,
      keep: positiveInt(env, 'FHIR_BACKUP_KEEP', 7),
    },
    fhirStoreSync: oneOf(env, 'FHIR_STORE_SYNC', ['normal', 'full'] as const, 'normal'),
    auditSpoolDir: auditSpoolDir(env, fhirDataDir),
    // A deployment whose store must survive a power loss wants its access audit trail to as well.
    auditSpoolSync: oneOf(
      env,
      'AUDIT_SPOOL_SYNC',
      ['normal', 'full'] as const,
      oneOf(env, 'FHIR_STORE_SYNC', ['normal', 'full'] as const, 'normal'),
    ),
    fhirSandboxMaxSearchOffset: positiveInt(env, 'FHIR_SANDBOX_MAX_SEARCH_OFFSET', 10_000),
    fhirAuth: fhirAuthFrom(env),
    fhirTimeoutMs: positiveInt(env, 'FHIR_TIMEOUT_MS', 15000),
    redisUrl: redisUrl(env),
    redisSentinel: redisSentinel(env),
    redisTlsCa: redisTlsCa(env),
    redisCommandStacks: oneOf(env, 'REDIS_COMMAND_STACKS', ['true', 'false'] as const, 'false') === 'true',
    queuePrefix: env.QUEUE_PREFIX ?? 'kc',
    runWorker: (env.RUN_WORKER ?? 'true') !== 'false',
    profilesDir: env.FHIR_PROFILES_DIR ?? path.join(REPO_ROOT, 'fhir-profiles'),
    auth: {
      jwtSecret: env.JWT_SECRET,
      jwksUrl: env.JWT_JWKS_URL,
      // With an external OpenID issuer, its access tokens carry it as iss.
      issuer: env.JWT_ISSUER ?? (env.OIDC_ISSUER ? env.OIDC_ISSUER.replace(/\/+$/, '') : undefined),
      audience: env.JWT_AUDIENCE,
      maxTokenLifetimeSeconds: positiveInt(env, 'JWT_MAX_LIFETIME_SECONDS', 24 * 3600),
      smartRoles: smartRolesFrom(env),
      introspection: introspectionFrom(env),
    },
    oidc: oidcFrom(env),
    production: env.NODE_ENV === 'production',
    webhookSecret: env.WEBHOOK_SECRET,
    pollIntervalMs: int(env, 'POLL_INTERVAL_MS', 30000),
    worklistReconcileMs: int(env, 'WORKLIST_RECONCILE_MS', 300000),
    pollOverlapMs: int(env, 'POLL_OVERLAP_MS', 10000),
    pollSince: instant(env, 'POLL_SINCE'),
    clinicTimeZone: timeZone(env, 'CLINIC_TIME_ZONE'),
    reconcileEveryMs: int(env, 'RECONCILE_EVERY_MS', 15 * 60_000),
    reconcileLookbackMs: positiveInt(env, 'RECONCILE_LOOKBACK_MS', 7 * 24 * 3600_000),
    reminderSweepMs: int(env, 'REMINDER_SWEEP_MS', 60_000),
    reminderHorizonMs: positiveInt(env, 'REMINDER_HORIZON_MS', 3600_000),
    deadLetterRevivalMs: int(env, 'DEAD_LETTER_REVIVAL_MS', 15 * 60_000),
    deadLetterRevivalForMs: positiveInt(env, 'DEAD_LETTER_REVIVAL_FOR_MS', 7 * 24 * 3600_000),
    followUpFailingAlertMs: int(env, 'FOLLOW_UP_FAILING_ALERT_MS', 3600_000),
    bulkExport: bulkExportFrom(env),
    subscriptionEndpointOrigins: subscriptionEndpointOriginsFrom(env),
    smtp: smtpFrom(env),
    clinicAlertEmails: clinicAlertEmailsFrom(env),
    clinicAlertRecipients: clinicAlertRecipientsFrom(env),
    workerConcurrency: positiveInt(env, 'WORKER_CONCURRENCY', 4),
    followUpBatchSize: positiveInt(env, 'FOLLOWUP_BATCH_SIZE', 8),
    followUpOwner: oneOf(env, 'FOLLOW_UP_OWNER', ['none', 'infusion', 'care-team'], 'none'),
    checkAnswersGraceMs: int(env, 'CHECK_ANSWERS_GRACE_MS', 60_000),
    orderChangeGraceMs: int(env, 'ORDER_CHANGE_GRACE_MS', 60_000),
    jobAttempts: int(env, 'JOB_ATTEMPTS', 8),
    jobBackoffMs: int(env, 'JOB_BACKOFF_MS', 2000),
    jobLockMs: int(env, 'JOB_LOCK_MS', 30000),
    workerMetricsPort: int(env, 'WORKER_METRICS_PORT', 0),
    overdueSweepEvery: env.OVERDUE_SWEEP_CRON ?? '*/15 * * * *',
    logLevel: env.LOG_LEVEL ?? 'info',
    cdsClients: cdsClientsFrom(env),
    publicUrl: servicePublicUrl,
    cdsPublicUrl: publicUrl(env, 'CDS_PUBLIC_URL') ?? servicePublicUrl,
    cdsCorsOrigins: cdsCorsOriginsFrom(env),
    cdsFhirServers: cdsFhirServersFrom(env),
    cdsReadBudgetMs: positiveInt(env, 'CDS_READ_BUDGET_MS', 3000),
    shutdownTimeoutMs: positiveInt(env, 'SHUTDOWN_TIMEOUT_MS', 25_000),
  };
}
