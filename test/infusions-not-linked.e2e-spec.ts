import request from 'supertest';
import type { Job } from 'bullmq';
import type { Communication, DetectedIssue, MedicationRequest, Procedure, Provenance, Task } from '@medplum/fhirtypes';
import { administrationRecordedJobId, JOBS, recheckContraindicationsJobId } from '@kc/queue';
import { administrationOf } from './fixtures/orders';
import { orderKeySearch } from '@kc/task-states';
import { notLinkedKey } from '../apps/worker/src/followups/unlinked-infusions';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import {
  actionOf,
  approveFirstSession,
  enrolPatient,
  followUpJobDone,
  followUpTasks,
  maintenanceJobDone,
  overrideIssue,
  postWebhook,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { mailsTo, startSmtpServer, type SmtpServer, serviceEmailingClinic } from './support/smtp-server';
import type { TestService } from './support/test-service';

const IV_INFUSION = { system: 'http://snomed.info/sct', code: '14152002', display: 'Intravenous infusion' };
const ON_CALL = 'PractitionerRole/on-call';
const HOUR = 3_600_000;

/**
 * An infusion an EHR charts naming no care plan, that nothing ties to one (no protocol named, no pump record of a
 * plan's order), for a patient on a plan that follows up infusions of its code. It may be another drug's infusion, so
 * it is not followed up by its code alone; but if it was the patient's ketamine session, nothing planned its
 * post-infusion check or next session, and the approved session stayed open with its order active: a second dose to
 * give. Before session 47 it was ignored and nobody was told. Now an `infusion-not-linked` issue holds the plan (its
 * approved order on hold, nothing approved) and the clinic is told, until a clinician links it to its plan (then
 * followed up) or records that it was not a session, or the EHR links it or takes it back.
 */
describe('an infusion charted naming no care plan, that nothing ties to one', () => {
  let service: TestService;
  let smtp: SmtpServer;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    service = await serviceEmailingClinic(smtp, {
      clinicAlertRecipients: [ON_CALL],
      publicUrl: 'https://careplans.clinic.test',
    });
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await smtp?.stop();
  });

  const clinician = () => service.as('clinician');
  const orderStatus = async (id: string) =>
    (await service.fhir.read<MedicationRequest>('MedicationRequest', id)).status;
  const issueOf = async (procedureId: string) =>
    (await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { identifier: notLinkedKey(procedureId) }))[0];
  const planChecked = (carePlanId: string) =>
    maintenanceJobDone(service, recheckContraindicationsJobId(`CarePlan/${carePlanId}`), 'the plan checked again');
  const sweep = async () => {
    const job = { name: JOBS.overdueSweep, updateProgress: () => Promise.resolve() } as unknown as Job;
    return (await service.app.get(MaintenanceProcessor).process(job)) as { notLinkedPlansReleased: number };
  };

  /**
   * A patient's first session approved (its order active), then an infusion charted during its window naming no plan,
   * by its code alone, and reported: ignored, its issue raised and the plan checked again (its order held).
   */
  async function chartedWithoutPlan() {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = await approveFirstSession(service, carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    const start = Date.parse(session.restriction!.period!.start!) + HOUR;
    const { resource: infusion } = await service.fhir.create<Procedure>({
      resourceType: 'Procedure',
      status: 'completed',
      code: { coding: [IV_INFUSION] },
      subject: { reference: patient },
      performedPeriod: { start: new Date(start).toISOString(), end: new Date(start + HOUR).toISOString() },
    });
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'ignored' });
    await planChecked(carePlanId);
    const issue = await issueOf(infusion.id!);
    return { patient, carePlanId, session, order: order as MedicationRequest & { id: string }, infusion, issue };
  }

  it('holds the approved session’s order and tells the clinic once; linked by a clinician, it is followed up and the order released', async () => {
    const sent = mailsTo(smtp, 'oncall@clinic.test').length;
    const { patient, carePlanId, session, order, infusion, issue } = await chartedWithoutPlan();
    expect(issue.status).toBe('preliminary');
    // The hold names what it held on the issue: the order, and its session.
    expect(issue.implicated?.map((r) => r.reference)).toEqual([
      `CarePlan/${carePlanId}`,
      `MedicationRequest/${order.id}`,
      `Task/${session.id}`,
    ]);
    // An EHR reading the order's status sees nothing is to be given until a clinician says what the infusion was, and
    // what is awaited (before session 48 it read that an override releases it).
    const held = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id);
    expect([held.status, held.statusReason?.text]).toEqual([
      'on-hold',
      'Held: found after approval: Infusion charted naming no care plan. A clinician linking the infusion to its care ' +
        'plan, or recording that it was not a session of the plan, releases it.',
    ]);
    expect((await service.fhir.read<Task>('Task', session.id!)).statusReason?.text).toBe(held.statusReason?.text);
    // The clinic is told by email (naming no patient) and in the EHR's inbox (the patient its subject), once.
    const mails = mailsTo(smtp, 'oncall@clinic.test').slice(sent);
    expect(mails).toHaveLength(1);
    expect(mails[0].body).toMatch(
      /Subject: Ketamine care plans: an infusion was charted without its care plan, to link/,
    );
    expect(mails[0].body).toMatch(/its post-infusion check and next session are not planned until it is linked/);
    expect(mails[0].body).not.toContain(patient.split('/')[1]);
    const inbox = (await service.fhir.searchAll<Communication>('Communication', { category: 'clinic-alert' })).filter(
      (c) =>
        c.about?.some((a) => a.reference === `DetectedIssue/${issue.id}`) && c.recipient?.[0]?.reference === ON_CALL,
    );
    expect(inbox).toEqual([expect.objectContaining({ subject: { reference: patient }, priority: 'urgent' })]);
    // The page's row says why, and offers the link.
    const view = await request(service.url).get('/worklist/view').query({ patient }).set(clinician()).expect(200);
    const rows = view.body.items as { id: string; view: { contraindications: { id: string; kind: string }[] } }[];
    expect(rows.flatMap((r) => r.view.contraindications)).toContainEqual(
      expect.objectContaining({ id: issue.id, kind: 'infusion-not-linked' }),
    );

    const linked = await request(service.url)
      .post(`/detected-issues/${issue.id}/$link-infusion`)
      .set(clinician())
      .send({ carePlan: `CarePlan/${carePlanId}`, versionId: issue.meta!.versionId })
      .expect(200);
    expect(linked.body).toMatchObject({
      status: 'final',
      mitigation: [
        {
          action: { coding: [expect.objectContaining({ code: 'infusion-linked-by-clinician' })] },
          author: { reference: expect.stringMatching(/^Practitioner\//) },
        },
      ],
    });
    const procedure = await service.fhir.read<Procedure>('Procedure', infusion.id!);
    expect(procedure.basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
    // Followed up as any infusion: its check planned, the session it gave done, its order completed as given.
    await followUpJobDone(service, infusion.id!);
    expect((await followUpTasks(service, infusion.id!)).map(actionOf)).toContain('post-infusion-check');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('completed');
    expect(await orderStatus(order.id)).toBe('completed');
    // One Provenance names the clinician, the infusion linked and the issue resolved.
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `Procedure/${infusion.id}` });
    expect(provenances.find((p) => p.activity?.text === 'link the infusion to its care plan')).toMatchObject({
      agent: [{ who: { reference: expect.stringMatching(/^Practitioner\//) } }],
    });
  });

  it('a clinician records it was not one of the plan’s sessions ($override): the order released, nothing followed up', async () => {
    const { carePlanId, order, infusion, issue } = await chartedWithoutPlan();
    await overrideIssue(service, issue, 'IV iron infusion, charted with the same code').expect(200);
    expect(await orderStatus(order.id)).toBe('active');
    expect((await service.fhir.read<Procedure>('Procedure', infusion.id!)).basedOn).toBeUndefined();
    expect(await followUpTasks(service, infusion.id!)).toEqual([]);
    // The event heard again raises no new issue: the clinician's word stands.
    await reportInfusion(service, infusion.id!);
    await planChecked(carePlanId);
    expect(await orderStatus(order.id)).toBe('active');
  });

  it('linked in the EHR itself and notified: its event follows it up, and its issue is resolved when heard, the order given', async () => {
    const { carePlanId, session, order, infusion, issue } = await chartedWithoutPlan();
    const linked = await service.fhir.update<Procedure>({
      ...infusion,
      basedOn: [{ reference: `CarePlan/${carePlanId}` }],
    });
    await postWebhook(service, JSON.stringify(linked)).expect(202);
    await followUpJobDone(service, infusion.id!);
    await maintenanceJobDone(service, recheckContraindicationsJobId(`Procedure/${infusion.id}`), 'the infusion heard');
    expect((await followUpTasks(service, infusion.id!)).map(actionOf)).toContain('post-infusion-check');
    expect(await issueOf(infusion.id!)).toMatchObject({
      status: 'final',
      mitigation: [{ action: { coding: [expect.objectContaining({ code: 'infusion-linked-in-ehr' })] } }],
    });
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('completed');
    expect(await orderStatus(order.id)).toBe('completed');
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `DetectedIssue/${issue.id}` });
    expect(provenances.map((p) => p.activity?.text)).toContain('resolve the infusion charted naming no care plan');
  });

  it('linked in the EHR, its notification lost: the 15-minute sweep resolves the issue, and the plan’s next session can be approved', async () => {
    const { carePlanId, infusion } = await chartedWithoutPlan();
    // Told by the EHR's event alone (no notification of the change): followed up, the issue still open.
    await service.fhir.update<Procedure>({ ...infusion, basedOn: [{ reference: `CarePlan/${carePlanId}` }] });
    await reportInfusion(service, infusion.id!);
    const next = (await followUpTasks(service, infusion.id!)).find((t) => actionOf(t) === 'next-induction-session')!;
    const approve = () =>
      request(service.url)
        .post(`/tasks/${next.id}/$approve`)
        .set(clinician())
        .send({ versionId: next.meta!.versionId });
    const refused = await approve().expect(422);
    expect(refused.body.issue[0].details.text).toMatch(/Infusion charted naming no care plan/);

    expect((await sweep()).notLinkedPlansReleased).toBe(1);
    expect((await issueOf(infusion.id!)).mitigation?.[0].action.coding?.[0].code).toBe('infusion-linked-in-ehr');
    await approve().expect(200);
  });

  it('the pump’s record charted late, its order deleted in the EHR by then: the 15-minute sweep links it on that record (before session 48, left to a clinician)', async () => {
    const { carePlanId, order, infusion } = await chartedWithoutPlan();
    expect(
      (await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${order.id}`, { method: 'DELETE' })).status,
    ).toBe(200);
    const start = Date.parse(infusion.performedPeriod!.start!);
    const { resource: given } = await service.fhir.create(
      administrationOf(order, 'completed', {
        start: new Date(start + 5 * 60_000).toISOString(),
        end: new Date(start + 55 * 60_000).toISOString(),
      }),
    );
    await postWebhook(service, JSON.stringify(given)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(given.id!), 'the pump’s record heard');
    // The record's own job follows up again only an infusion that left its order's session open: none here.
    expect((await issueOf(infusion.id!)).status).toBe('preliminary');

    await sweep();
    await waitFor(async () => (await issueOf(infusion.id!)).status === 'final', 'the issue resolved');
    expect((await issueOf(infusion.id!)).mitigation?.[0].action.coding?.[0].code).toBe('infusion-linked-on-evidence');
    expect((await service.fhir.read<Procedure>('Procedure', infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([
      `CarePlan/${carePlanId}`,
    ]);
    expect((await followUpTasks(service, infusion.id!)).map(actionOf)).toContain('post-infusion-check');
  });

  it('taken back in the EHR (entered in error): the issue resolved when heard, the order released', async () => {
    const { order, infusion } = await chartedWithoutPlan();
    const inError = await service.fhir.update<Procedure>({ ...infusion, status: 'entered-in-error' });
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await maintenanceJobDone(service, recheckContraindicationsJobId(`Procedure/${infusion.id}`), 'the infusion heard');
    expect(await issueOf(infusion.id!)).toMatchObject({
      status: 'final',
      mitigation: [{ action: { coding: [expect.objectContaining({ code: 'infusion-taken-back' })] } }],
    });
    expect(await orderStatus(order.id)).toBe('active');
  });

  it('refuses what cannot be linked: a plan it may not be a session of, another kind of issue, no version, an infusion deleted', async () => {
    const { issue, infusion } = await chartedWithoutPlan();
    const other = await enrolPatient(service, 'ketamine-low-dose-series');
    const link = (id: string, body: object) =>
      request(service.url).post(`/detected-issues/${id}/$link-infusion`).set(clinician()).send(body);

    const notItsPlan = await link(issue.id!, {
      carePlan: `CarePlan/${other.carePlanId}`,
      versionId: issue.meta!.versionId,
    });
    expect([notItsPlan.status, notItsPlan.body.issue[0].details.text]).toEqual([
      422,
      expect.stringMatching(/is not one of the plans this infusion may be a session of/),
    ]);
    const [plan] = issue.implicated!.map((r) => r.reference!);
    expect((await link(issue.id!, { carePlan: plan })).status).toBe(428);
    expect((await link(issue.id!, { carePlan: 'Patient/1', versionId: issue.meta!.versionId })).status).toBe(400);
    // A contraindication is overridden, not linked.
    const { resource: contraindication } = await service.fhir.create<DetectedIssue>({
      resourceType: 'DetectedIssue',
      status: 'preliminary',
      code: { text: 'Pregnancy' },
      implicated: [{ reference: plan }],
    });
    const wrongKind = await link(contraindication.id!, { carePlan: plan, versionId: contraindication.meta!.versionId });
    expect(wrongKind.status).toBe(422);
    await fetch(`${service.config.fhirBaseUrl}/Procedure/${infusion.id}`, { method: 'DELETE' });
    const deleted = await link(issue.id!, { carePlan: plan, versionId: issue.meta!.versionId });
    expect([deleted.status, deleted.body.issue[0].details.text]).toEqual([
      409,
      expect.stringMatching(/deleted in the EHR/),
    ]);
    // Nothing was written by the refusals.
    expect((await issueOf(infusion.id!)).meta?.versionId).toBe(issue.meta!.versionId);
    expect(await service.fhir.searchAll<Task>('Task', { 'based-on': plan, status: 'completed' })).toEqual([]);
  });
});
