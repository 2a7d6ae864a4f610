import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig } from './app-config';

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
