import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig } from './app-config';

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
