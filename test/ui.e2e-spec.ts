import { chromium, type Browser } from 'playwright-core';
import type { Task } from '@medplum/fhirtypes';
import { FollowUpService } from '../apps/worker/src/followups/follow-up.service';
import { findChromium } from './support/browser';
import { completeInfusion, enrolPatient, followUpTasks, waitFor } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

describe('clinician page in a real browser', () => {
  let service: TestService;
  let browser: Browser;

  beforeAll(async () => {
    // CHROMIUM_PATH, else /usr/bin/chromium, else the Chromium that npm install brought (@sparticuz/chromium).
    const binary = await findChromium();
    service = await startTestService();
    browser = await chromium.launch({
      executablePath: binary.executablePath,
      env: binary.env,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  it('shows the worklist, approves one task and rejects another with a reason', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await service.app.get(FollowUpService).handle(procedureId);
    const [check, next] = await followUpTasks(service, procedureId);

    const page = await browser.newPage();
    await page.goto(`${service.url}/ui`);
    await page.fill('#token', service.tokens.clinician);
    await page.click('button[type=submit]');
    await page.waitForSelector(`tr[data-task-id="${check.id}"]`);
    expect(await page.textContent('#message')).toMatch(/\d+ task\(s\) awaiting approval/);

    await page.click(`tr[data-task-id="${check.id}"] button:has-text("Approve")`);
    await page.waitForSelector(`tr[data-task-id="${check.id}"]`, { state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Approved/);

    page.once('dialog', (dialog) => void dialog.accept('No longer needed'));
    await page.click(`tr[data-task-id="${next.id}"] button:has-text("Reject")`);
    await page.waitForSelector(`tr[data-task-id="${next.id}"]`, { state: 'detached' });

    await waitFor(
      async () => (await service.fhir.read<Task>('Task', check.id!)).status === 'ready',
      'approval on the server',
    );
    const rejected = await service.fhir.read<Task>('Task', next.id!);
    expect(rejected.status).toBe('rejected');
    expect(rejected.statusReason?.text).toBe('No longer needed');
    await page.screenshot({ path: 'test-results/worklist.png' }).catch(() => undefined);
  }, 60_000);

  it('tells the clinician when someone else decided first', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-02-04T10:00:00.000Z');
    await service.app.get(FollowUpService).handle(procedureId);
    const [task] = await followUpTasks(service, procedureId);
    const page = await browser.newPage();
    await page.goto(`${service.url}/ui`);
    await page.fill('#token', service.tokens.clinician);
    await page.click('button[type=submit]');
    await page.waitForSelector(`tr[data-task-id="${task.id}"]`);
    // Another clinician approves it meanwhile.
    await service.fhir.update({ ...task, status: 'ready' }, { ifMatch: task.meta!.versionId });
    await page.click(`tr[data-task-id="${task.id}"] button:has-text("Approve")`);
    await page.waitForSelector('#message.error');
    expect(await page.textContent('#message')).toMatch(/Someone else changed this task first/);
  }, 60_000);

  it('says so when the token is wrong', async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/ui`);
    await page.fill('#token', 'not-a-token');
    await page.click('button[type=submit]');
    await page.waitForSelector('#message.error');
    expect(await page.textContent('#message')).toMatch(/token is missing, invalid or expired/);
    expect(await page.isHidden('#worklist')).toBe(true);
  }, 30_000);
});
