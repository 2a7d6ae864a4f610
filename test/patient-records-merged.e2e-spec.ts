import request from 'supertest';
import type {
  AuditEvent,
  CarePlan,
  DetectedIssue,
  MedicationRequest,
  Patient,
  Procedure,
  Task,
} from '@medplum/fhirtypes';
import { administrationOf } from './fixtures/orders';
import { orderKeySearch } from '@kc/task-states';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { DeathsTakenBack } from '../apps/worker/src/maintenance/deaths-taken-back';
import {
  actionOf,
  applyRequest,
  approveFirstSession,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  mergedIntoNewRecord,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { score } from './support/clinician';
import { startTestService, type TestService } from './support/test-service';

const HOUR = 3_600_000;

/**
 * A patient's records merged in the EHR after enrolment (FHIR's Patient/$merge: the record merged away gets
 * `replaced-by` the one kept and goes inactive, the one kept gets `replaces`), the plan left under the record merged
 * away, as a server that does not move references leaves it. What is recorded under the record kept from then on is the
 * person's: before session 48 the service read only the plan's own record, so a pregnancy or a death recorded under the
 * record kept was never seen by the plan's checks.
 */
describe('a patient whose records were merged in the EHR', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  /** Enrolled, then merged: a new record kept (`replaces`), the plan's record merged away into it. */
  async function enrolledThenMerged(family = 'Kept') {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const kept = await mergedIntoNewRecord(service, patient, { name: [{ family }] });
    return { patient, carePlanId, kept, keptId: kept.split('/')[1] };
  }
  const firstSession = async (carePlanId: string) =>
    (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` })).find(
      (t) => actionOf(t) === 'infusion-session',
    )!;
  const approve = (task: Task) =>
    request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: task.meta!.versionId });

  it('the clinician page: a name search for the record kept lists the plan’s Tasks under the record merged away, and the kept record’s patient view shows that plan (before session 49, neither)', async () => {
    const family = `Merged${Date.now().toString(36)}`;
    const { patient, carePlanId, keptId } = await enrolledThenMerged(family);
    const clinician = service.as('clinician');
    const view = await request(service.url).get('/worklist/view').query({ name: family }).set(clinician).expect(200);
    const items = view.body.items as {
      patient: string;
      view: { patient: { mergedInto?: string; mergedIntoName?: string } };
    }[];
    expect(items.length).toBeGreaterThan(0);
    expect(new Set(items.map((i) => i.patient))).toEqual(new Set([patient]));
    // The row says the record was merged (the EHR's chart shows the other).
    expect(items[0].view.patient).toMatchObject({ mergedInto: `Patient/${keptId}`, mergedIntoName: family });
    // Pain scored under the old record before the merge, then under the kept one: the view shows the latest.
    await score(service, patient, '72514-3', 7, '2026-11-20T09:00:00Z');
    await score(service, `Patient/${keptId}`, '72514-3', 4, '2026-12-01T09:00:00Z');
    const fromOld = await request(service.url)
      .get(`/patients/${patient.split('/')[1]}/timeline`)
      .set(clinician);
    expect(fromOld.body.scores).toEqual([expect.objectContaining({ code: '72514-3', value: 4 })]);
    // The row too (since session 50; before, the record's own latest, 7).
    const rowsNow = await request(service.url).get('/worklist/view').query({ name: family }).set(clinician).expect(200);
    expect(rowsNow.body.items[0].view.scores).toEqual([expect.objectContaining({ code: '72514-3', value: 4 })]);
    const timeline = await request(service.url).get(`/patients/${keptId}/timeline`).set(clinician).expect(200);
    expect(timeline.body.patient.linkedRecords).toEqual([patient]);
    expect(timeline.body.carePlans).toEqual([expect.objectContaining({ id: carePlanId, subject: patient })]);
    const followUps = (timeline.body.events as { type: string }[]).filter((e) => e.type === 'follow-up');
    expect(followUps.length).toBe(items.length);
    // The access to the record merged away is audited with the one asked for.
    await waitFor(async () => {
      const audits = await service.fhir.searchAll<AuditEvent>('AuditEvent', { entity: patient });
      return audits.some((a) => a.entity?.some((e) => e.what?.reference === `Patient/${keptId}`));
    }, 'the timeline’s access audited for both records');
  });

  it('a pregnancy recorded under the record kept: the plan’s session is not approved, the issue recorded on the plan', async () => {
    const { carePlanId, kept } = await enrolledThenMerged();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], kept));
    const refused = await approve(await firstSession(carePlanId)).expect(422);
    expect(refused.body.issue[0].details.text).toMatch(/Pregnancy/);
    const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlanId}`,
    });
    expect(issues.map((i) => i.code?.coding?.[0].code)).toEqual(['pregnancy']);
  });

  /** Enrolled, then merged twice: the plan's record into a second, that one into a third (kept), as an EHR chains. */
  async function enrolledThenMergedTwice() {
    const first = await enrolledThenMerged();
    const third = await mergedIntoNewRecord(service, first.kept, { name: [{ family: 'Kept again' }] });
    return { ...first, third, thirdId: third.split('/')[1] };
  }

  // Before session 49 only the plan's record's own links were read: the third record was not.
  it('merged twice, a pregnancy recorded under the third record: the plan’s session is not approved', async () => {
    const { carePlanId, third } = await enrolledThenMergedTwice();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], third));
    const refused = await approve(await firstSession(carePlanId)).expect(422);
    expect(refused.body.issue[0].details.text).toMatch(/Pregnancy/);
  });

  // Before session 50 the page followed the record's own links only: the third record's name and view found nothing.
  it('merged twice, the clinician page: a name search for the third record lists the plan’s Tasks, and its view shows the plan', async () => {
    const { patient, carePlanId, thirdId, kept } = await enrolledThenMergedTwice();
    const family = `Thrice${Date.now().toString(36)}`;
    await service.fhir.update<Patient>({
      ...(await service.fhir.read<Patient>('Patient', thirdId)),
      name: [{ family }],
    });
    const clinician = service.as('clinician');
    const view = await request(service.url).get('/worklist/view').query({ name: family }).set(clinician).expect(200);
    const rows = (view.body.items as { patient: string }[]).map((i) => i.patient);
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows)).toEqual(new Set([patient]));
    const timeline = await request(service.url).get(`/patients/${thirdId}/timeline`).set(clinician).expect(200);
    expect(new Set(timeline.body.patient.linkedRecords)).toEqual(new Set([kept, patient]));
    expect(timeline.body.carePlans).toEqual([expect.objectContaining({ id: carePlanId, subject: patient })]);
  });

  it('merged twice, the third record recorded as deceased: nothing of the plan is approved, the plan ended, and the death not taken for taken back', async () => {
    const { carePlanId, thirdId } = await enrolledThenMergedTwice();
    const third = await service.fhir.read<Patient>('Patient', thirdId);
    await service.fhir.update<Patient>({ ...third, deceasedDateTime: '2026-12-01T08:00:00Z' });
    const refused = await approve(await firstSession(carePlanId)).expect(422);
    expect(refused.body.issue[0].diagnostics).toMatch(/a record of the same person .* is recorded as deceased/);
    await waitFor(
      async () => (await service.fhir.read<CarePlan>('CarePlan', carePlanId)).status === 'revoked',
      'the plan ended',
    );
    await service.app.get(DeathsTakenBack).lookAgain();
    expect((await service.fhir.read<CarePlan>('CarePlan', carePlanId)).note?.map((n) => n.text)).not.toContainEqual(
      expect.stringMatching(/taken back/),
    );
  });

  it('a pregnancy recorded under the record kept after approval, notified: the approved order is held then, not at the next sweep', async () => {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = await approveFirstSession(service, carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    const kept = await mergedIntoNewRecord(service, patient);
    const { resource: pregnancy } = await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], kept));
    // What the Condition's notification runs (its recheck job).
    await service.app.get(ContraindicationSweep).recheckFor(`Condition/${pregnancy.id}`);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
  });

  it('an infusion after the merge with a pregnancy under the record kept: followed up, no next session proposed', async () => {
    const { patient, carePlanId, kept } = await enrolledThenMerged();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], kept));
    const procedureId = await completeInfusion(service, { patient, carePlanId }, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    expect((await followUpTasks(service, procedureId)).map(actionOf)).toEqual(['post-infusion-check']);
    const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlanId}`,
    });
    expect(issues.map((i) => i.code?.coding?.[0].code)).toEqual(['pregnancy']);
  });

  it('an infusion charted under the record kept naming no plan, the pump’s record of the plan’s order during it: linked to the plan under the record merged away', async () => {
    const { carePlanId, kept } = await enrolledThenMerged();
    const session = await approveFirstSession(service, carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    const start = Date.parse(session.restriction!.period!.start!) + HOUR;
    await service.fhir.create(
      administrationOf(order, 'completed', {
        start: new Date(start + 5 * 60_000).toISOString(),
        end: new Date(start + 55 * 60_000).toISOString(),
      }),
    );
    const { resource: infusion } = await service.fhir.create<Procedure>({
      resourceType: 'Procedure',
      status: 'completed',
      code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002' }] },
      subject: { reference: kept },
      performedPeriod: { start: new Date(start).toISOString(), end: new Date(start + HOUR).toISOString() },
    });
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created', carePlanId });
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('completed');
  });

  it('a death recorded on the record kept: the plan under the record merged away is ended, and nothing approved', async () => {
    const { carePlanId, keptId } = await enrolledThenMerged();
    const session = await firstSession(carePlanId);
    await service.fhir.update<Patient>({
      ...(await service.fhir.read<Patient>('Patient', keptId)),
      deceasedDateTime: '2026-12-01T08:00:00Z',
    });
    const refused = await approve(session).expect(422);
    expect(refused.body.issue[0].diagnostics).toMatch(/a record of the same person .* is recorded as deceased/);
    // The refusal queued the deceased record's job (as its notification would): it ends the plan under the other record.
    await waitFor(
      async () => (await service.fhir.read<CarePlan>('CarePlan', carePlanId)).status === 'revoked',
      'the plan ended',
    );
    // The sweep's look for deaths taken back reads the person under both records: still deceased, nothing to tell.
    expect(await service.app.get(DeathsTakenBack).lookAgain()).toEqual({ deathsTakenBack: 0 });
    expect((await service.fhir.read<CarePlan>('CarePlan', carePlanId)).note?.map((n) => n.text)).not.toContainEqual(
      expect.stringMatching(/taken back/),
    );
  });

  it('$apply to the record merged away is refused, naming the record kept', async () => {
    const { patient, kept } = await enrolledThenMerged();
    const res = await applyRequest(service, 'ketamine-monthly-maintenance', patient).expect(422);
    expect(res.body.issue[0].details.text).toContain(`merged into another (${kept})`);
  });

  it('the record merged away then deleted: its plan’s session is not approved, the record kept named', async () => {
    const { patient, carePlanId, kept } = await enrolledThenMerged();
    const session = await firstSession(carePlanId);
    expect((await fetch(`${service.config.fhirBaseUrl}/${patient}`, { method: 'DELETE' })).status).toBe(200);
    const refused = await approve(session).expect(422);
    expect(refused.body.issue[0].details.text).toContain(`apply the protocol to ${kept}`);
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('draft');
  });
});
