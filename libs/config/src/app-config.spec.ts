import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig, withDevIssuer } from './app-config';

describe('CDS Hooks config', () => {
  it('CDS_CLIENTS maps issuers to a JWK Set URL or a shared secret', () => {
    const config = loadConfig({
      CDS_CLIENTS: JSON.stringify({
        'https://ehr.example': { jwksUrl: 'https://ehr.example/jwks.json' },
        'dev-ehr': { secret: 'x'.repeat(32) },
      }),
      CDS_PUBLIC_URL: 'https://cds.clinic.example/',
    });
    expect(config.cdsClients).toEqual({
      'https://ehr.example': { jwksUrl: 'https://ehr.example/jwks.json' },
      'dev-ehr': { secret: 'x'.repeat(32) },
    });
    expect(config.cdsPublicUrl).toBe('https://cds.clinic.example');
    expect(loadConfig({}).cdsClients).toEqual({});
  });

  it.each([
    ['not json', /must be JSON/],
    ['[]', /JSON object/],
    ['{"a": {}}', /exactly one of jwksUrl or secret/],
    ['{"a": {"secret": "short"}}', /at least 32 characters/],
    ['{"a": {"jwksUrl": "ftp://x"}}', /http\(s\) URL/],
    ['{"a": {"jwksUrl": "https://x", "secret": "' + 'x'.repeat(32) + '"}}', /exactly one/],
    ['{"a": {"jwks": "https://x"}}', /must be/],
  ])('CDS_CLIENTS=%s is refused at startup', (raw, message) => {
    expect(() => loadConfig({ CDS_CLIENTS: raw })).toThrow(ConfigError);
    expect(() => loadConfig({ CDS_CLIENTS: raw })).toThrow(message);
  });

  it('CDS_PUBLIC_URL must be an http(s) URL', () => {
    expect(() => loadConfig({ CDS_PUBLIC_URL: 'cds.example' })).toThrow(/CDS_PUBLIC_URL/);
  });

  it('CDS_FHIR_SERVERS: the EHR FHIR base URLs a CDS call may name, none by default', () => {
    expect(loadConfig({}).cdsFhirServers).toEqual([]);
    expect(
      loadConfig({ CDS_FHIR_SERVERS: 'https://ehr.example/fhir/r4/, https://other.example/fhir' }).cdsFhirServers,
    ).toEqual(['https://ehr.example/fhir/r4', 'https://other.example/fhir']);
    for (const bad of ['ehr.example/fhir', 'https://ehr.example/fhir?x=1', 'ftp://ehr.example/fhir'])
      expect(() => loadConfig({ CDS_FHIR_SERVERS: bad })).toThrow(/CDS_FHIR_SERVERS/);
  });

  it('CLINIC_ALERT_RECIPIENTS: nobody unless set; references to who may receive a message, comma-separated', () => {
    expect(loadConfig({}).clinicAlertRecipients).toEqual([]);
    expect(
      loadConfig({ CLINIC_ALERT_RECIPIENTS: 'PractitionerRole/on-call, CareTeam/infusion-nurses' })
        .clinicAlertRecipients,
    ).toEqual(['PractitionerRole/on-call', 'CareTeam/infusion-nurses']);
    expect(() => loadConfig({ CLINIC_ALERT_RECIPIENTS: 'Patient/p1' })).toThrow(/"Patient\/p1" is not one/);
    expect(() => loadConfig({ CLINIC_ALERT_RECIPIENTS: 'oncall@clinic.test' })).toThrow(/is not one/);
  });

  it('CLINIC_ALERT_EMAIL: nobody unless set; addresses, comma-separated, and only with SMTP_URL', () => {
    expect(loadConfig({}).clinicAlertEmails).toEqual([]);
    const smtp = { SMTP_URL: 'smtp://127.0.0.1:2525' };
    expect(
      loadConfig({ ...smtp, CLINIC_ALERT_EMAIL: 'oncall@clinic.test, team@clinic.test' }).clinicAlertEmails,
    ).toEqual(['oncall@clinic.test', 'team@clinic.test']);
    expect(() => loadConfig({ ...smtp, CLINIC_ALERT_EMAIL: 'oncall' })).toThrow(/"oncall" is not one/);
    expect(() => loadConfig({ CLINIC_ALERT_EMAIL: 'oncall@clinic.test' })).toThrow(/needs SMTP_URL/);
  });

  it('SHUTDOWN_TIMEOUT_MS: 25 s to shut down gracefully unless set', () => {
    expect(loadConfig({}).shutdownTimeoutMs).toBe(25_000);
    expect(loadConfig({ SHUTDOWN_TIMEOUT_MS: '5000' }).shutdownTimeoutMs).toBe(5000);
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: 'soon' })).toThrow(/SHUTDOWN_TIMEOUT_MS/);
  });

  it('FHIR_WRITE_CONFORMANCE: no write checked unless set; all, none, or a share of them', () => {
    expect(loadConfig({}).fhirWriteConformance).toBe(0);
    expect(loadConfig({ FHIR_WRITE_CONFORMANCE: 'true' }).fhirWriteConformance).toBe(1);
    expect(loadConfig({ FHIR_WRITE_CONFORMANCE: 'off' }).fhirWriteConformance).toBe(0);
    expect(loadConfig({ FHIR_WRITE_CONFORMANCE: '0.05' }).fhirWriteConformance).toBe(0.05);
    expect(() => loadConfig({ FHIR_WRITE_CONFORMANCE: '5%' })).toThrow(/share between 0 and 1/);
    expect(() => loadConfig({ FHIR_WRITE_CONFORMANCE: '2' })).toThrow(/share between 0 and 1/);
  });

  it('CDS_READ_BUDGET_MS: 3 s of FHIR reads per CDS call unless set', () => {
    expect(loadConfig({}).cdsReadBudgetMs).toBe(3000);
    expect(loadConfig({ CDS_READ_BUDGET_MS: '1500' }).cdsReadBudgetMs).toBe(1500);
    expect(() => loadConfig({ CDS_READ_BUDGET_MS: '0' })).toThrow(/CDS_READ_BUDGET_MS/);
  });

  it('CDS_CORS_ORIGINS: any origin unless narrowed to a list of origins, or none', () => {
    expect(loadConfig({}).cdsCorsOrigins).toBe('*');
    expect(loadConfig({ CDS_CORS_ORIGINS: '*' }).cdsCorsOrigins).toBe('*');
    expect(loadConfig({ CDS_CORS_ORIGINS: 'none' }).cdsCorsOrigins).toEqual([]);
    expect(
      loadConfig({ CDS_CORS_ORIGINS: 'https://sandbox.cds-hooks.org, http://localhost:8080' }).cdsCorsOrigins,
    ).toEqual(['https://sandbox.cds-hooks.org', 'http://localhost:8080']);
    for (const bad of ['sandbox.cds-hooks.org', 'https://ehr.example/app', 'https://ehr.example/', ''])
      expect(() => loadConfig({ CDS_CORS_ORIGINS: `https://ok.example,${bad}` })).toThrow(/CDS_CORS_ORIGINS/);
  });
});

describe('FHIR_DATA_DIR', () => {
  it('defaults to data/fhir in the checkout', () => {
    expect(loadConfig({}).fhirDataDir).toBe(path.resolve(__dirname, '../../../data/fhir'));
  });

  it('takes :memory: and directories (created later when missing), resolved to absolute paths', () => {
    expect(loadConfig({ FHIR_DATA_DIR: ':memory:' }).fhirDataDir).toBe(':memory:');
    expect(loadConfig({ FHIR_DATA_DIR: 'some/relative/dir' }).fhirDataDir).toBe(path.resolve('some/relative/dir'));
    expect(loadConfig({ FHIR_DATA_DIR: os.tmpdir() }).fhirDataDir).toBe(os.tmpdir());
  });

  it('refuses a path that is, or lies under, a file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-config-'));
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    try {
      expect(() => loadConfig({ FHIR_DATA_DIR: file })).toThrow(ConfigError);
      expect(() => loadConfig({ FHIR_DATA_DIR: path.join(file, 'below') })).toThrow(/must be a directory or :memory:/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('clinician sign-in config (OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_SCOPE, DEV_ISSUER)', () => {
  it('defaults to the built-in dev issuer outside production, pointed at this service once its URL is known', () => {
    const config = loadConfig({});
    expect(config.oidc).toEqual({
      issuer: undefined,
      clientId: 'ketamine-careplans-ui',
      // To read, and to write what a clinician's decisions write: the API holds a scoped token to its scopes.
      scope:
        'openid fhirUser profile user/*.read user/Task.write user/MedicationRequest.write user/CarePlan.write ' +
        'user/DetectedIssue.write user/Procedure.write user/QuestionnaireResponse.write',
      devIssuer: true,
      devTokenSeconds: 3600,
      devClients: {},
    });
    expect(loadConfig({ DEV_ISSUER_TOKEN_SECONDS: '300' }).oidc.devTokenSeconds).toBe(300);
    expect(() => loadConfig({ DEV_ISSUER_TOKEN_SECONDS: '0' })).toThrow(/DEV_ISSUER_TOKEN_SECONDS/);
    const resolved = withDevIssuer(config, 'http://127.0.0.1:3000/');
    expect(resolved.oidc.issuer).toBe('http://127.0.0.1:3000/dev-issuer');
    expect(resolved.auth.trustedIssuers).toEqual([
      { issuer: 'http://127.0.0.1:3000/dev-issuer', jwksUrl: 'http://127.0.0.1:3000/dev-issuer/jwks' },
    ]);
    // Applied twice (a restart on another port): one dev issuer trusted, the latest.
    const again = withDevIssuer(resolved, 'http://127.0.0.1:4000');
    expect(again.auth.trustedIssuers).toHaveLength(1);
    expect(withDevIssuer(loadConfig({ DEV_ISSUER: 'off' }), 'http://x').oidc.issuer).toBeUndefined();
  });

  it('refuses the dev issuer in production, both issuers at once, an external issuer without a JWKS, bad values', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', DEV_ISSUER: 'on' })).toThrow(ConfigError);
    expect(loadConfig({ NODE_ENV: 'production' }).oidc.devIssuer).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production' }).production).toBe(true);
    expect(() =>
      loadConfig({ DEV_ISSUER: 'true', OIDC_ISSUER: 'https://id.example', JWT_JWKS_URL: 'https://id.example/k' }),
    ).toThrow(/either OIDC_ISSUER or DEV_ISSUER/);
    expect(() => loadConfig({ OIDC_ISSUER: 'https://id.example' })).toThrow(/JWT_JWKS_URL/);
    expect(() => loadConfig({ OIDC_ISSUER: 'ftp://id.example', JWT_JWKS_URL: 'https://id.example/k' })).toThrow(
      /http\(s\) URL/,
    );
    expect(() => loadConfig({ OIDC_SCOPE: 'fhirUser' })).toThrow(/openid/);
    expect(() => loadConfig({ OIDC_CLIENT_ID: 'has space' })).toThrow(/OIDC_CLIENT_ID/);
    expect(() => loadConfig({ DEV_ISSUER: 'yes please' })).toThrow(/DEV_ISSUER must be true or false/);
    const external = loadConfig({
      OIDC_ISSUER: 'https://id.example/',
      OIDC_CLIENT_ID: 'careplans',
      JWT_JWKS_URL: 'https://id.example/jwks',
    });
    expect(external.oidc).toMatchObject({ issuer: 'https://id.example', clientId: 'careplans', devIssuer: false });
    expect(external.auth).toMatchObject({ jwksUrl: 'https://id.example/jwks', issuer: 'https://id.example' });
  });
});

describe('loadConfig: defaults and invalid values', () => {
  it('has working defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      fhirBaseUrl: undefined,
      fhirAuth: { kind: 'none' },
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'kc',
      runWorker: true,
      pollIntervalMs: 30000,
      jobAttempts: 8,
      jobBackoffMs: 2000,
      logLevel: 'info',
      cdsClients: {},
      // Medplum's server's maxSearchOffset.
      fhirSandboxMaxSearchOffset: 10_000,
    });
  });

  it('numbers must be non-negative integers, counts at least 1', () => {
    expect(loadConfig({ PORT: '8080', POLL_INTERVAL_MS: '0' })).toMatchObject({ port: 8080, pollIntervalMs: 0 });
    for (const raw of ['abc', '-1', '1.5', '3000x'])
      expect(() => loadConfig({ PORT: raw })).toThrow(`PORT must be a non-negative integer, got "${raw}"`);
    expect(() => loadConfig({ WORKER_CONCURRENCY: '0' })).toThrow('WORKER_CONCURRENCY must be at least 1');
    expect(loadConfig({ FHIR_SANDBOX_MAX_SEARCH_OFFSET: '500' }).fhirSandboxMaxSearchOffset).toBe(500);
    expect(() => loadConfig({ FHIR_SANDBOX_MAX_SEARCH_OFFSET: '0' })).toThrow('must be at least 1');
    expect(() => loadConfig({ FHIR_TIMEOUT_MS: 'soon' })).toThrow(ConfigError);
  });

  it('backups of the embedded store: daily, 7 kept, beside a durable data directory; none for :memory: unless asked', () => {
    const dataDir = path.join(os.tmpdir(), 'kc-config-fhir');
    expect(loadConfig({ FHIR_DATA_DIR: dataDir }).fhirBackup).toEqual({
      dir: `${dataDir}-backups`,
      everyMs: 24 * 3600_000,
      keep: 7,
    });
    expect(loadConfig({ FHIR_DATA_DIR: ':memory:' }).fhirBackup.dir).toBeUndefined();
    expect(
      loadConfig({ FHIR_DATA_DIR: ':memory:', FHIR_BACKUP_DIR: 'backups', FHIR_BACKUP_EVERY_HOURS: '0' }).fhirBackup,
    ).toMatchObject({ dir: path.resolve('backups'), everyMs: 0 });
    expect(() => loadConfig({ FHIR_BACKUP_DIR: ':memory:' })).toThrow('FHIR_BACKUP_DIR must be a directory');
    expect(() => loadConfig({ FHIR_BACKUP_KEEP: '0' })).toThrow('FHIR_BACKUP_KEEP must be at least 1');
  });

  it('the access audit spool: beside a durable store, in data/ with an external FHIR server, in memory with :memory:', () => {
    const dataDir = path.join(os.tmpdir(), 'kc-config-fhir');
    expect(loadConfig({ FHIR_DATA_DIR: dataDir }).auditSpoolDir).toBe(`${dataDir}-audit-spool`);
    expect(loadConfig({ FHIR_DATA_DIR: ':memory:' }).auditSpoolDir).toBe(':memory:');
    expect(loadConfig({ FHIR_BASE_URL: 'https://fhir.example/R4' }).auditSpoolDir).toMatch(/data[/\\]audit-spool$/);
    expect(loadConfig({ AUDIT_SPOOL_DIR: 'spool' }).auditSpoolDir).toBe(path.resolve('spool'));
    expect(loadConfig({ FHIR_DATA_DIR: dataDir, AUDIT_SPOOL_DIR: ':memory:' }).auditSpoolDir).toBe(':memory:');
  });

  it('Redis: a redis:// or rediss:// URL; Sentinel from REDIS_SENTINELS', () => {
    expect(loadConfig({}).redisSentinel).toBeUndefined();
    expect(loadConfig({ REDIS_URL: 'rediss://cache.example:6380' }).redisUrl).toBe('rediss://cache.example:6380');
    for (const raw of ['http://x:6379', 'localhost:6379'])
      expect(() => loadConfig({ REDIS_URL: raw })).toThrow('REDIS_URL must be a redis:// or rediss:// URL');
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379, [::1]:26380', REDIS_SENTINEL_NAME: 'kc' }).redisSentinel).toEqual({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'kc',
      password: undefined,
    });
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379' }).redisSentinel?.name).toBe('mymaster');
    expect(() => loadConfig({ REDIS_SENTINELS: 's1' })).toThrow('REDIS_SENTINELS must be host:port pairs');
  });

  it('REDIS_COMMAND_STACKS: true or false (false unless set)', () => {
    expect(loadConfig({}).redisCommandStacks).toBe(false);
    expect(loadConfig({ REDIS_COMMAND_STACKS: 'true' }).redisCommandStacks).toBe(true);
    expect(() => loadConfig({ REDIS_COMMAND_STACKS: 'yes' })).toThrow(/REDIS_COMMAND_STACKS/);
  });

  it('REDIS_TLS_CA_FILE: read at start, a PEM certificate, only with rediss://', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-ca-'));
    try {
      const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
      fs.writeFileSync(path.join(dir, 'ca.pem'), pem);
      fs.writeFileSync(path.join(dir, 'key.pem'), '-----BEGIN PRIVATE KEY-----\n');
      const tls = { REDIS_URL: 'rediss://cache.example:6380' };
      expect(loadConfig(tls).redisTlsCa).toBeUndefined();
      expect(loadConfig({ ...tls, REDIS_TLS_CA_FILE: path.join(dir, 'ca.pem') }).redisTlsCa).toBe(pem);
      expect(() => loadConfig({ ...tls, REDIS_TLS_CA_FILE: path.join(dir, 'missing.pem') })).toThrow(
        /REDIS_TLS_CA_FILE=.*missing\.pem: ENOENT/,
      );
      expect(() => loadConfig({ ...tls, REDIS_TLS_CA_FILE: path.join(dir, 'key.pem') })).toThrow(
        /key\.pem: no PEM certificate in it/,
      );
      expect(() => loadConfig({ REDIS_TLS_CA_FILE: path.join(dir, 'ca.pem') })).toThrow(
        'REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss:// (TLS)',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('FHIR_STORE_SYNC: normal unless full is asked for', () => {
    expect(loadConfig({}).fhirStoreSync).toBe('normal');
    expect(loadConfig({ FHIR_STORE_SYNC: 'full' }).fhirStoreSync).toBe('full');
    expect(() => loadConfig({ FHIR_STORE_SYNC: 'FULL' })).toThrow(
      'FHIR_STORE_SYNC must be one of normal, full; got "FULL"',
    );
  });

  it('AUDIT_SPOOL_SYNC: as FHIR_STORE_SYNC unless set', () => {
    expect(loadConfig({}).auditSpoolSync).toBe('normal');
    expect(loadConfig({ FHIR_STORE_SYNC: 'full' }).auditSpoolSync).toBe('full');
    expect(loadConfig({ FHIR_STORE_SYNC: 'full', AUDIT_SPOOL_SYNC: 'normal' }).auditSpoolSync).toBe('normal');
    expect(loadConfig({ AUDIT_SPOOL_SYNC: 'full' }).auditSpoolSync).toBe('full');
    expect(() => loadConfig({ AUDIT_SPOOL_SYNC: 'always' })).toThrow('AUDIT_SPOOL_SYNC must be one of normal, full');
  });

  it('CHECK_ANSWERS_GRACE_MS: a minute unless set', () => {
    expect(loadConfig({}).checkAnswersGraceMs).toBe(60_000);
    expect(loadConfig({ CHECK_ANSWERS_GRACE_MS: '0' }).checkAnswersGraceMs).toBe(0);
  });

  it('FOLLOW_UP_OWNER: follow-ups nobody’s unless the infusion’s owner is asked for', () => {
    expect(loadConfig({}).followUpOwner).toBe('none');
    expect(loadConfig({ FOLLOW_UP_OWNER: 'infusion' }).followUpOwner).toBe('infusion');
    expect(loadConfig({ FOLLOW_UP_OWNER: 'care-team' }).followUpOwner).toBe('care-team');
    expect(() => loadConfig({ FOLLOW_UP_OWNER: 'nurse' })).toThrow(
      'FOLLOW_UP_OWNER must be one of none, infusion, care-team; got "nurse"',
    );
  });

  it('FHIR_BASE_URL loses trailing slashes; RUN_WORKER=false turns the in-process worker off', () => {
    expect(loadConfig({ FHIR_BASE_URL: 'http://hapi:8080/fhir//' }).fhirBaseUrl).toBe('http://hapi:8080/fhir');
    expect(loadConfig({ RUN_WORKER: 'false' }).runWorker).toBe(false);
  });

  it('FHIR_AUTH must be a known kind with its credentials', () => {
    expect(loadConfig({ FHIR_AUTH: 'bearer', FHIR_BEARER_TOKEN: 't' }).fhirAuth).toEqual({
      kind: 'bearer',
      token: 't',
    });
    expect(
      loadConfig({
        FHIR_AUTH: 'client-credentials',
        FHIR_TOKEN_URL: 'https://idp/token',
        FHIR_CLIENT_ID: 'id',
        FHIR_CLIENT_SECRET: 's',
      }).fhirAuth,
    ).toMatchObject({ kind: 'client-credentials', tokenUrl: 'https://idp/token', clientId: 'id' });
    expect(() => loadConfig({ FHIR_AUTH: 'oauth' })).toThrow(
      'FHIR_AUTH must be one of none, basic, bearer, client-credentials; got "oauth"',
    );
    expect(() => loadConfig({ FHIR_AUTH: 'basic', FHIR_USERNAME: 'u' })).toThrow(
      'FHIR_PASSWORD is required when FHIR_AUTH=basic',
    );
    expect(() => loadConfig({ FHIR_AUTH: 'client-credentials', FHIR_CLIENT_ID: 'id' })).toThrow(
      'FHIR_TOKEN_URL is required when FHIR_AUTH=client-credentials',
    );
  });

  it('CLINIC_TIME_ZONE is an IANA zone, UTC unless set; a name the runtime does not know is refused at start', () => {
    expect(loadConfig({}).clinicTimeZone).toBe('UTC');
    expect(loadConfig({ CLINIC_TIME_ZONE: 'America/New_York' }).clinicTimeZone).toBe('America/New_York');
    expect(() => loadConfig({ CLINIC_TIME_ZONE: 'Mars/Olympus_Mons' })).toThrow(
      'CLINIC_TIME_ZONE must be an IANA time zone like Europe/London or America/New_York, got "Mars/Olympus_Mons"',
    );
  });

  it('POLL_SINCE must be an ISO date or instant', () => {
    expect(loadConfig({ POLL_SINCE: '2027-01-01' }).pollSince).toBe('2027-01-01T00:00:00.000Z');
    expect(loadConfig({ POLL_SINCE: '2027-01-01T10:00:00+02:00' }).pollSince).toBe('2027-01-01T08:00:00.000Z');
    for (const raw of ['yesterday', '2027-13-45', '01/02/2027', '2027-01-01T10:00'])
      expect(() => loadConfig({ POLL_SINCE: raw })).toThrow(/POLL_SINCE must be an ISO date or instant/);
  });

  it('CDS_CLIENTS refuses bad JSON, keys of the wrong shape and short secrets', () => {
    expect(() => loadConfig({ CDS_CLIENTS: '{' })).toThrow(/CDS_CLIENTS must be JSON/);
    expect(() => loadConfig({ CDS_CLIENTS: '[]' })).toThrow(/must be a JSON object/);
    expect(() => loadConfig({ CDS_CLIENTS: '{"iss": {"secret": "short"}}' })).toThrow(/at least 32 characters/);
    expect(() => loadConfig({ CDS_CLIENTS: '{"iss": {}}' })).toThrow(/exactly one of jwksUrl or secret/);
    expect(() => loadConfig({ CDS_CLIENTS: '{"iss": {"jwksUrl": "ftp://x"}}' })).toThrow(/http\(s\) URL/);
    expect(() => loadConfig({ CDS_CLIENTS: '{"iss": {"secret": "x", "extra": 1}}' })).toThrow(/must be \{/);
  });
});

describe('SMART_ROLES', () => {
  it('maps a backend service’s and a practitioner’s token to a role; none by default', () => {
    expect(loadConfig({}).auth.smartRoles).toEqual({});
    expect(loadConfig({ SMART_ROLES: 'system=integration, Practitioner=clinician' }).auth.smartRoles).toEqual({
      system: 'integration',
      Practitioner: 'clinician',
    });
  });

  it('refuses an admin, an unknown subject, a pair without a role, and a subject twice', () => {
    for (const value of ['system=admin', 'Patient=clinician', 'system', 'system=integration,system=clinician'])
      expect(() => loadConfig({ SMART_ROLES: value })).toThrow(/SMART_ROLES/);
  });
});

describe('TOKEN_INTROSPECTION_*', () => {
  it('asks an authorization server about opaque tokens, with its credentials; none by default', () => {
    expect(loadConfig({}).auth.introspection).toBeUndefined();
    expect(
      loadConfig({
        TOKEN_INTROSPECTION_URL: 'https://ehr.example/oauth2/introspect',
        TOKEN_INTROSPECTION_CLIENT_ID: 'careplans',
        TOKEN_INTROSPECTION_CLIENT_SECRET: 's3cret',
      }).auth.introspection,
    ).toEqual({
      url: 'https://ehr.example/oauth2/introspect',
      clientId: 'careplans',
      clientSecret: 's3cret',
      cacheSeconds: 60,
      checkJwts: false,
    });
    expect(
      loadConfig({
        TOKEN_INTROSPECTION_URL: 'https://ehr.example/introspect',
        TOKEN_INTROSPECTION_FOR: 'all',
        TOKEN_INTROSPECTION_CACHE_SECONDS: '0',
      }).auth.introspection,
    ).toMatchObject({ checkJwts: true, cacheSeconds: 0 });
  });

  it('refuses a URL that is not http(s), an id without its secret, and an unknown scope of tokens', () => {
    expect(() => loadConfig({ TOKEN_INTROSPECTION_URL: 'ftp://x' })).toThrow(/TOKEN_INTROSPECTION_URL/);
    expect(() =>
      loadConfig({ TOKEN_INTROSPECTION_URL: 'https://x.example', TOKEN_INTROSPECTION_CLIENT_ID: 'id' }),
    ).toThrow(/go together/);
    expect(() => loadConfig({ TOKEN_INTROSPECTION_URL: 'https://x.example', TOKEN_INTROSPECTION_FOR: 'some' })).toThrow(
      /TOKEN_INTROSPECTION_FOR/,
    );
  });
});

describe('DEV_ISSUER_CLIENTS', () => {
  const keys = [{ kty: 'RSA', n: 'abc', e: 'AQAB' }];
  it('reads backend clients: their keys inline or by URL, their scopes, their roles', () => {
    const clients = {
      'ehr-backend': { jwks: { keys }, scope: ' system/CarePlan.rs ' },
      lab: { jwksUrl: 'https://lab.example/jwks', scope: 'system/Task.rs', roles: ['integration'] },
    };
    expect(loadConfig({ DEV_ISSUER_CLIENTS: JSON.stringify(clients) }).oidc.devClients).toEqual({
      'ehr-backend': { jwks: { keys }, scope: 'system/CarePlan.rs' },
      lab: { jwksUrl: 'https://lab.example/jwks', scope: 'system/Task.rs', roles: ['integration'] },
    });
    expect(loadConfig({}).oidc.devClients).toEqual({});
  });

  it('refuses what it cannot use', () => {
    for (const clients of [
      'not json',
      '[]',
      { c: { scope: 'system/Task.rs' } },
      { c: { jwks: { keys }, jwksUrl: 'https://x.example/jwks', scope: 'system/Task.rs' } },
      { c: { jwks: { keys: [] }, scope: 'system/Task.rs' } },
      { c: { jwksUrl: 'ftp://x.example/jwks', scope: 'system/Task.rs' } },
      { c: { jwks: { keys }, scope: '' } },
      { c: { jwks: { keys }, scope: 'system/Task.rs', roles: ['admin'] } },
      { c: { jwks: { keys }, scope: 'system/Task.rs', secret: 'x' } },
    ])
      expect(() =>
        loadConfig({ DEV_ISSUER_CLIENTS: typeof clients === 'string' ? clients : JSON.stringify(clients) }),
      ).toThrow(/DEV_ISSUER_CLIENTS/);
  });
});

describe('Bulk Data export config', () => {
  it('defaults to 8 MiB files, pages of 1,000, a day of retention and 3 exports per client', () => {
    expect(loadConfig({}).bulkExport).toEqual({
      maxFileBytes: 8 * 1024 * 1024,
      pageSize: 1000,
      retentionMs: 24 * 3600_000,
      perClient: 3,
    });
    expect(
      loadConfig({
        BULK_EXPORT_FILE_MAX_BYTES: '1000000',
        BULK_EXPORT_PAGE_SIZE: '200',
        BULK_EXPORT_RETENTION_SECONDS: '3600',
        BULK_EXPORT_PER_CLIENT: '1',
      }).bulkExport,
    ).toEqual({ maxFileBytes: 1_000_000, pageSize: 200, retentionMs: 3600_000, perClient: 1 });
  });

  it.each(['10', '1001', 'many'])(
    'BULK_EXPORT_PAGE_SIZE=%s is refused at startup (cursor paging needs 20 to 1,000)',
    (raw) => {
      expect(() => loadConfig({ BULK_EXPORT_PAGE_SIZE: raw })).toThrow(ConfigError);
    },
  );
});

describe('EHR subscription endpoints config', () => {
  it('takes origins, none by default, and refuses a URL with a path', () => {
    expect(loadConfig({}).subscriptionEndpointOrigins).toEqual([]);
    expect(
      loadConfig({ SUBSCRIPTION_ENDPOINT_ORIGINS: 'https://ehr.example.org, http://127.0.0.1:8080' })
        .subscriptionEndpointOrigins,
    ).toEqual(['https://ehr.example.org', 'http://127.0.0.1:8080']);
    expect(() => loadConfig({ SUBSCRIPTION_ENDPOINT_ORIGINS: 'https://ehr.example.org/hooks' })).toThrow(ConfigError);
  });
});
