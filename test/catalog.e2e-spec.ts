import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import type { PlanDefinition } from '@medplum/fhirtypes';
import { startTestService, type TestService } from './support/test-service';

describe('protocol catalog', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  it('lists the three shipped protocols with their follow-up rules', async () => {
    const res = await request(service.url).get('/protocols').set(service.as('integration')).expect(200);
    expect(res.body.map((p: { id: string }) => p.id).sort()).toEqual([
      'ketamine-high-dose-as-needed',
      'ketamine-low-dose-series',
      'ketamine-monthly-maintenance',
    ]);
    const lowDose = res.body.find((p: { id: string }) => p.id === 'ketamine-low-dose-series');
    expect(lowDose.followUps.map((f: { id: string }) => f.id)).toEqual([
      'next-induction-session',
      'maintenance-booster',
      'post-infusion-check',
    ]);
  });

  it('serves one protocol as a PlanDefinition, and 404 for an unknown one', async () => {
    const res = await request(service.url)
      .get('/protocols/ketamine-monthly-maintenance')
      .set(service.as('clinician'))
      .expect(200);
    expect(res.body.resourceType).toBe('PlanDefinition');
    const missing = await request(service.url).get('/protocols/nope').set(service.as('clinician')).expect(404);
    expect(missing.body.resourceType).toBe('OperationOutcome');
  });

  it('requires a token', async () => {
    await request(service.url).get('/protocols').expect(401);
  });

  it('publishes each protocol under its own id, found by canonical url + version too', async () => {
    const byId = await service.fhir.read<PlanDefinition>('PlanDefinition', 'ketamine-low-dose-series');
    expect(byId.url).toBe('https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series');
    const byCanonical = await service.fhir.searchAll<PlanDefinition>('PlanDefinition', {
      url: byId.url!,
      version: '1.0.0',
    });
    expect(byCanonical.map((p) => p.id)).toEqual(['ketamine-low-dose-series']);
  });
});

describe('protocol catalog with a broken file', () => {
  let service: TestService;
  let dir: string;
  beforeAll(async () => {
    // A copy of fhir-profiles/ in which the high-dose infusion's ActivityDefinition is invalid (no status).
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-profiles-'));
    const source = path.join(__dirname, '..', 'fhir-profiles');
    for (const file of fs.readdirSync(source)) fs.copyFileSync(path.join(source, file), path.join(dir, file));
    const broken = path.join(dir, 'ActivityDefinition-ketamine-high-dose-infusion.json');
    const activity = JSON.parse(fs.readFileSync(broken, 'utf8')) as Record<string, unknown>;
    delete activity.status;
    fs.writeFileSync(broken, JSON.stringify(activity));
    service = await startTestService({ profilesDir: dir });
  });
  afterAll(async () => {
    await service.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts; /health is degraded and names the problem; the catalog lists the plan that needs it as unavailable', async () => {
    const health = await request(service.url).get('/health').expect(200);
    expect(health.body.status).toBe('degraded');
    expect(health.body.checks.profiles.problems.join('\n')).toMatch(
      /ActivityDefinition-ketamine-high-dose-infusion\.json: .*status/,
    );
    expect(health.body.checks.profiles.problems.join('\n')).toMatch(
      /PlanDefinition-ketamine-high-dose-as-needed\.json: .*definitionCanonical/,
    );
    const list = await request(service.url).get('/protocols').set(service.as('clinician')).expect(200);
    const status = Object.fromEntries(list.body.map((p: { id: string; status: string }) => [p.id, p.status]));
    expect(status).toEqual({
      'ketamine-low-dose-series': 'available',
      'ketamine-monthly-maintenance': 'available',
      'ketamine-high-dose-as-needed': 'unavailable',
    });
    await request(service.url).get('/protocols/ketamine-high-dose-as-needed').set(service.as('clinician')).expect(404);
  });
});
