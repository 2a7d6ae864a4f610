import request from 'supertest';
import type { Observation, Task } from '@medplum/fhirtypes';
import type { Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import { QUEUES, reconciledScoreJobId, scoreJobId } from '@kc/queue';
import { ScorePoller } from '../apps/worker/src/outcomes/score-poller';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  queueIdle,
  reportInfusion,
  reportScore,
  waitFor,
} from './support/clinic';
import { score as recordedScore } from './support/clinician';
import { startTestService, type TestService } from './support/test-service';
import { createsOf, outcomeScore } from './fixtures/patient-data';

const SYSTEM = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';

/**
 * Outcome-driven boosters: scores recorded after an infusion move the proposed maintenance booster within the
 * protocol's 6-8 week window (high-dose protocol, fhir-profiles): earlier (6-7 wk) when pain returns toward its
 * baseline, later (7-8 wk) when relief holds, with the Observations as its rationale; still awaiting approval.
 */
describe('outcome-driven boosters', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  const INFUSION_END = '2027-01-04T10:00:00.000Z';

  const score = (patient: string, code: string, value: number, when: string) =>
    recordedScore(service, patient, code, value, when);

  const recordScore = (observationId: string) => reportScore(service, observationId);

  /**
   * Pain 8/10 before the first infusion; after it, the booster awaits approval in its whole 6-8 week window.
   * `before` runs between the enrolment and the infusion.
   */
  async function patientAfterFirstInfusion(before?: (patient: string) => Promise<unknown>) {
    const enrolment = await enrolPatient(service, 'ketamine-high-dose-as-needed');
    await before?.(enrolment.patient);
    const baseline = await score(enrolment.patient, '72514-3', 8, '2026-12-20T09:00:00Z');
    const procedureId = await completeInfusion(service, enrolment, INFUSION_END);
    await reportInfusion(service, procedureId);
    const booster = await waitFor(async () => {
      const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
      return tasks.find((t) => actionOf(t) === 'maintenance-booster');
    }, 'the booster');
    expect(booster.restriction?.period).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-03-01T10:00:00.000Z' });
    return { ...enrolment, baseline, booster };
  }

  const reread = (task: Task) => service.fhir.read<Task>('Task', task.id!);

  it('pain back toward baseline: the booster is proposed earlier, with its rationale, still awaiting approval', async () => {
    const p = await patientAfterFirstInfusion();
    const latest = await score(p.patient, '72514-3', 7, '2027-01-25T09:00:00Z');
    await recordScore(latest);
    const booster = await reread(p.booster);
    expect(booster.status).toBe('draft');
    expect(booster.restriction?.period).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-02-22T10:00:00.000Z' });
    expect(booster.reasonCode?.coding?.[0]).toMatchObject({ system: SYSTEM, code: 'booster-earlier' });
    expect(booster.reasonCode?.text).toMatch(/Pain NRS 7 on 2027-01-25 against a baseline of 8 \(13% better\)/);
    expect(booster.input?.map((i) => i.valueReference?.reference)).toEqual([
      `Observation/${p.baseline}`,
      `Observation/${latest}`,
    ]);
    // Waits for approval like any other Task: on the worklist, and approvable.
    const worklist = await request(service.url)
      .get('/worklist')
      .query({ patient: p.patient })
      .set(service.as('clinician'))
      .expect(200);
    const listed = worklist.body.items.find((i: { id: string }) => i.id === booster.id);
    expect(listed.due).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-02-22T10:00:00.000Z' });
    expect(listed.reason).toBe(booster.reasonCode?.text);
    await request(service.url)
      .post(`/tasks/${booster.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: booster.meta!.versionId })
      .expect(200);
  });

  it('relief holds: later; the same score again writes nothing; a middling score restores the whole window', async () => {
    const p = await patientAfterFirstInfusion();
    const low = await score(p.patient, '72514-3', 2, '2027-01-25T09:00:00Z');
    await recordScore(low);
    const later = await reread(p.booster);
    expect(later.restriction?.period).toEqual({ start: '2027-02-22T10:00:00.000Z', end: '2027-03-01T10:00:00.000Z' });
    expect(later.reasonCode?.coding?.[0]?.code).toBe('booster-later');

    await recordScore(low);
    expect((await reread(p.booster)).meta?.versionId).toBe(later.meta?.versionId);

    // 5/10 against 8 is 37% better: neither threshold (30%, 50%), so the protocol's window and no outcome reason.
    await recordScore(await score(p.patient, '72514-3', 5, '2027-02-01T09:00:00Z'));
    const restored = await reread(p.booster);
    expect(restored.restriction?.period).toEqual({
      start: '2027-02-15T10:00:00.000Z',
      end: '2027-03-01T10:00:00.000Z',
    });
    expect(restored.reasonCode).toBeUndefined();
    expect(restored.input).toBeUndefined();
  });

  it("a PHQ-9 score arriving by webhook counts; an approved booster is the clinician's and stays as approved", async () => {
    const p = await patientAfterFirstInfusion();
    await score(p.patient, '44261-6', 15, '2026-12-21T09:00:00Z');
    const phq = await score(p.patient, '44261-6', 14, '2027-01-20T09:00:00Z');
    await request(service.url)
      .put(`/webhooks/fhir/Observation/${phq}`)
      .set('X-Webhook-Token', 'test-webhook-secret')
      .send({})
      .expect(202);
    await queueIdle(service, QUEUES.outcomes);
    const earlier = await reread(p.booster);
    expect(earlier.reasonCode?.coding?.[0]?.code).toBe('booster-earlier');
    expect(earlier.reasonCode?.text).toMatch(/PHQ-9 14/);

    const approved = await request(service.url)
      .post(`/tasks/${earlier.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: earlier.meta!.versionId })
      .expect(200);
    await recordScore(await score(p.patient, '72514-3', 1, '2027-01-28T09:00:00Z'));
    const after = await reread(p.booster);
    expect(after.meta?.versionId).toBe(approved.body.meta.versionId);
    expect(after.restriction?.period).toEqual(earlier.restriction?.period);
  });

  it('a score nobody notified the service about is found by the polling fallback', async () => {
    const p = await patientAfterFirstInfusion();
    await score(p.patient, '72514-3', 8, '2027-01-22T09:00:00Z');
    await service.app.get(ScorePoller).poll();
    await queueIdle(service, QUEUES.outcomes);
    expect((await reread(p.booster)).reasonCode?.coding?.[0]?.code).toBe('booster-earlier');
  });

  it('a score that is not an outcome score, or names no patient, is ignored; a bad reference is a 400', async () => {
    const p = await patientAfterFirstInfusion();
    const weight = await score(p.patient, '29463-7', 70, '2027-01-20T09:00:00Z');
    await recordScore(weight);
    expect((await reread(p.booster)).meta?.versionId).toBe(p.booster.meta?.versionId);
    const bad = await request(service.url)
      .post('/events/score-recorded')
      .set(service.as('integration'))
      .send({ observation: 'Procedure/1' })
      .expect(400);
    expect(bad.body.resourceType).toBe('OperationOutcome');
  });

  it('a score whose accepted event Redis lost is evaluated by the reconciliation, once per version', async () => {
    const p = await patientAfterFirstInfusion();
    const outcomes = service.app.get<Queue>(getQueueToken(QUEUES.outcomes));
    await outcomes.pause();
    const latest = await score(p.patient, '72514-3', 7, '2027-01-25T09:00:00Z');
    await request(service.url)
      .post('/events/score-recorded')
      .set(service.as('integration'))
      .send({ observation: `Observation/${latest}` })
      .expect(202);
    // Accepted, then gone with Redis' memory (a restart without persistence).
    await (await outcomes.getJob(scoreJobId(latest)))!.remove();
    await outcomes.resume();
    expect((await service.app.get(ScorePoller).reconcile()).checked).toBeGreaterThan(0);
    await queueIdle(service, QUEUES.outcomes);
    const booster = await reread(p.booster);
    expect(booster.reasonCode?.coding?.[0]).toMatchObject({ system: SYSTEM, code: 'booster-earlier' });
    // The next reconciliation finds the same version already looked at: no second run.
    const { meta } = await service.fhir.read<Observation>('Observation', latest);
    const looked = await outcomes.getJob(reconciledScoreJobId(latest, meta!.versionId!));
    const processedOn = looked?.processedOn;
    expect(processedOn).toBeDefined();
    await service.app.get(ScorePoller).reconcile();
    await queueIdle(service, QUEUES.outcomes);
    expect((await outcomes.getJob(reconciledScoreJobId(latest, meta!.versionId!)))?.processedOn).toBe(processedOn);
  });

  it("a booster behind 200 of the patient's other draft Tasks is found: every page of them is read", async () => {
    // Tasks the EHR keeps for this patient (referrals, forms to sign), written before the booster: the first page of
    // the patient's draft Tasks holds none of the service's.
    const p = await patientAfterFirstInfusion((patient) =>
      service.fhir.transaction(
        createsOf(
          Array.from({ length: 200 }, (_, i): Task => ({
            resourceType: 'Task',
            status: 'draft',
            intent: 'order',
            description: `Referral form ${i + 1} to sign`,
            for: { reference: patient },
          })),
        ),
      ),
    );
    await recordScore(await score(p.patient, '72514-3', 7, '2027-01-25T09:00:00Z'));
    const booster = await reread(p.booster);
    expect(booster.restriction?.period).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-02-22T10:00:00.000Z' });
    expect(booster.reasonCode?.coding?.[0]).toMatchObject({ system: SYSTEM, code: 'booster-earlier' });
  });

  // Last: its 1,000 scores would keep the polling fallback above busy.
  it('the latest score decides even behind 1,000 earlier ones: every score is read, page after page', async () => {
    const p = await patientAfterFirstInfusion();
    // Relief held for a long while (a score a day would take three years to get here; a device may send more).
    await service.fhir.transaction(
      createsOf(Array.from({ length: 1000 }, () => outcomeScore(p.patient, '72514-3', 2, '2027-01-10T09:00:00Z'))),
    );
    // Then pain came back: read with the first 1,000 scores alone, relief still held and the booster went later.
    await recordScore(await score(p.patient, '72514-3', 7, '2027-01-25T09:00:00Z'));
    const booster = await reread(p.booster);
    expect(booster.restriction?.period).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-02-22T10:00:00.000Z' });
    expect(booster.reasonCode?.coding?.[0]).toMatchObject({ system: SYSTEM, code: 'booster-earlier' });
  });
});
