import request from 'supertest';
import type { DetectedIssue, MedicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import { recheckContraindicationsJobId } from '@kc/queue';
import { approvedSessionOrder, infusedForCheck } from './support/checks';
import { maintenanceJobDone, postDeletion, postWebhook } from './support/clinic';
import { ProcedurePoller } from '../apps/worker/src/maintenance/procedure-poller';
import { startTestService, type TestService } from './support/test-service';

/**
 * An infusion the EHR marks entered-in-error (or deletes) after its follow-ups were written: what it planned is timed
 * from an infusion that did not happen, and what it answered is done although it was not. Before, nothing changed:
 * its next session could be approved and given on that timing. Now its plan is held as a contraindication holds it,
 * until a clinician puts it right and overrides the issue.
 */
describe('an infusion recorded in error after its follow-ups', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  const clinician = () => service.as('clinician');
  const heard = (procedureId: string) =>
    maintenanceJobDone(
      service,
      recheckContraindicationsJobId(`Procedure/${procedureId}`),
      'the worker to hear of the infusion in error',
    );
  const issuesOf = (carePlanId: string) =>
    service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${carePlanId}` });

  it('entered in error and notified: its plan is held (the approved order, the other proposals), until a clinician overrides it', async () => {
    const { patient, carePlanId, procedureId, check, booster, session } = await infusedForCheck(service);
    const order = await approvedSessionOrder(service, session);

    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    const inError = await service.fhir.update<Procedure>({ ...procedure, status: 'entered-in-error' });
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await heard(procedureId);

    const [issue] = await issuesOf(carePlanId);
    expect(issue).toMatchObject({
      status: 'preliminary',
      severity: 'high',
      code: { coding: [expect.objectContaining({ code: 'infusion-recorded-in-error' })] },
    });
    // It names what the infusion left behind, for the clinician to put right.
    expect(issue.implicated?.map((r) => r.reference)).toEqual(
      expect.arrayContaining([
        `CarePlan/${carePlanId}`,
        `Task/${check.id}`,
        `Task/${booster.id}`,
        `Task/${session.id}`,
      ]),
    );
    expect(issue.detail).toMatch(new RegExp(`^The infusion Procedure/${procedureId} was recorded in error`));
    // An EHR reading the order's status sees nothing is to be given.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    // The booster it proposed is not approved on that timing.
    const booster1 = await service.fhir.read<Task>('Task', booster.id!);
    const refused = await request(service.url)
      .post(`/tasks/${booster.id}/$approve`)
      .set(clinician())
      .send({ versionId: booster1.meta!.versionId })
      .expect(422);
    expect(refused.body.issue[0].details.text).toMatch(/Infusion recorded in error/);
    // The page shows the clinician why on the booster's row: the issue on record, which the row offers to override
    // (or the Task to reject) instead of Approve.
    const view = await request(service.url).get('/worklist/view').query({ patient }).set(clinician()).expect(200);
    const row = (
      view.body.items as {
        id: string;
        view: { contraindications: { id: string; text: string; state: string }[] };
      }[]
    ).find((i) => i.id === booster.id);
    expect(row?.view.contraindications).toEqual([
      expect.objectContaining({ id: issue.id, state: 'unresolved', text: expect.stringMatching(/recorded in error/i) }),
    ]);
    // Notified again: recorded once.
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await heard(procedureId);
    expect(await issuesOf(carePlanId)).toHaveLength(1);

    // The clinician puts the plan right by hand, then overrides it: the order goes back to active.
    await request(service.url)
      .post(`/detected-issues/${issue.id}/$override`)
      .set(clinician())
      .send({ versionId: issue.meta!.versionId, reason: 'Booster rescheduled from the real infusion date' })
      .expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
  });

  it('deleted in the EHR, notified: the same', async () => {
    const { carePlanId, procedureId } = await infusedForCheck(service);
    expect((await fetch(`${service.config.fhirBaseUrl}/Procedure/${procedureId}`, { method: 'DELETE' })).ok).toBe(true);
    await postDeletion(service, `Procedure/${procedureId}`).expect(202);
    await heard(procedureId);
    expect((await issuesOf(carePlanId)).map((i) => i.code?.coding?.[0].code)).toEqual(['infusion-recorded-in-error']);
  });

  it('on a server that notifies nothing, the poll finds it', async () => {
    const { carePlanId, procedureId } = await infusedForCheck(service);
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    await service.fhir.update<Procedure>({ ...procedure, status: 'entered-in-error' });
    await service.app.get(ProcedurePoller).poll();
    await heard(procedureId);
    expect((await issuesOf(carePlanId)).map((i) => i.code?.coding?.[0].code)).toEqual(['infusion-recorded-in-error']);
  });

  it('a completed infusion notified again changes nothing', async () => {
    const { carePlanId, procedureId } = await infusedForCheck(service);
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    await request(service.url)
      .put(`/webhooks/fhir/Procedure/${procedureId}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    await heard(procedureId);
    expect(await issuesOf(carePlanId)).toEqual([]);
    expect((await service.fhir.read<Procedure>('Procedure', procedureId)).meta?.versionId).toBe(
      procedure.meta?.versionId,
    );
  });
});
