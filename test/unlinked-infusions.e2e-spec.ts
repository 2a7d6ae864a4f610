import request from 'supertest';
import type {
  CarePlan,
  DetectedIssue,
  MedicationRequest,
  Patient,
  PlanDefinition,
  Procedure,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { orderKeySearch } from '@kc/task-states';
import { administrationOf, ehrReplacementOf } from './fixtures/orders';
import { EHR_PATHWAY_PROTOCOL, ehrCarePlan } from './fixtures/plans';
import type { Job } from 'bullmq';
import { administrationRecordedJobId, JOBS, recheckContraindicationsJobId } from '@kc/queue';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import { AdministrationRecorded } from '../apps/worker/src/followups/administration-recorded';
import { InfusionsInError } from '../apps/worker/src/maintenance/infusions-in-error';
import { PlanChanges } from '../apps/worker/src/maintenance/plan-changes';
import { notLinkedKey } from '../apps/worker/src/followups/unlinked-infusions';
import {
  actionOf,
  approveFirstSession,
  enrolPatient,
  followUpTasks,
  maintenanceJobDone,
  orderedInEhrFor,
  postWebhook,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/** What the shipped protocols code an infusion with (their ActivityDefinitions), as an EHR charts one. */
const IV_INFUSION = { system: 'http://snomed.info/sct', code: '14152002', display: 'Intravenous infusion' };
const LOW_DOSE_INFUSION = 'https://ketamine-careplans.example/fhir/ActivityDefinition/ketamine-low-dose-infusion';

/**
 * An infusion an EHR records naming no CarePlan (`Procedure.basedOn` empty: an EHR that does not link its charting to
 * plans). Before session 43 it was ignored: no post-infusion check, no next session, the approved session left open
 * with its order active. Now the service links it to the one plan tied to it by evidence (the pump's record of that
 * plan's order during it, or its `instantiatesCanonical`), never by its code alone, and follows it up.
 */
describe('an infusion the EHR recorded naming no care plan', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const unlinkedInfusion = async (patient: string, end: string, extra: Partial<Procedure> = {}) => {
    const { resource } = await service.fhir.create<Procedure>({
      resourceType: 'Procedure',
      status: 'completed',
      code: { coding: [IV_INFUSION] },
      subject: { reference: patient },
      performedPeriod: { start: new Date(Date.parse(end) - 3_600_000).toISOString(), end },
      ...extra,
    });
    return resource;
  };
  const readProcedure = (id: string) => service.fhir.read<Procedure>('Procedure', id);
  const notLinkedIssueOf = async (procedureId: string) =>
    (await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { identifier: notLinkedKey(procedureId) }))[0];

  /** A patient's first session approved; `start`: an hour into its window; `pumpGave`: its order given from then. */
  async function approvedSession() {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = await approveFirstSession(service, carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    const start = Date.parse(session.restriction!.period!.start!) + 3_600_000;
    const pumpGave = async () =>
      (
        await service.fhir.create(
          administrationOf(order, 'completed', {
            start: new Date(start + 5 * 60_000).toISOString(),
            end: new Date(start + 55 * 60_000).toISOString(),
          }),
        )
      ).resource;
    return { patient, carePlanId, session, order, start, pumpGave };
  }

  it('the pump recorded the plan’s order during it: linked to that plan, with a Provenance, and followed up', async () => {
    const { patient, carePlanId, session, order, start, pumpGave } = await approvedSession();
    const given = await pumpGave();
    const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString());

    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created' });
    const linked = await readProcedure(infusion.id!);
    expect(linked.basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
    // Followed up as any infusion: its check planned, the session it gave done, its order completed.
    expect((await followUpTasks(service, infusion.id!)).map(actionOf)).toContain('post-infusion-check');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('completed');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `Procedure/${infusion.id}` })
    ).filter((p) => p.activity?.text === 'link the infusion to its care plan');
    expect(provenance).toMatchObject({
      agent: [{ who: { display: expect.stringContaining('ketamine-careplans') } }],
      entity: [{ role: 'source', what: { reference: `MedicationAdministration/${given.id}` } }],
    });
  });

  /** The EHR closes the session itself, naming the infusion as what it produced (FHIR workflow's Task.output). */
  const completedInEhrNaming = async (session: Task, infusion: Procedure) =>
    service.fhir.update<Task>({
      ...(await service.fhir.read<Task>('Task', session.id!)),
      status: 'completed',
      output: [{ type: { text: 'Infusion given' }, valueReference: { reference: `Procedure/${infusion.id}` } }],
    });

  it('the EHR completed the plan’s session naming it (Task.output): linked to that plan, with a Provenance, and followed up (before session 48, put to a clinician)', async () => {
    const { patient, carePlanId, session, start } = await approvedSession();
    const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString());
    await completedInEhrNaming(session, infusion);

    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created', carePlanId });
    expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
    expect((await followUpTasks(service, infusion.id!)).map(actionOf)).toContain('post-infusion-check');
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `Procedure/${infusion.id}` })
    ).filter((p) => p.activity?.text === 'link the infusion to its care plan');
    expect(provenance.entity).toEqual([{ role: 'source', what: { reference: `Task/${session.id}` } }]);
    expect(await notLinkedIssueOf(infusion.id!)).toBeUndefined();
  });

  it('the EHR completed the plan’s session naming it after its first look: the 15-minute sweep links it, its issue resolved on that evidence', async () => {
    const { patient, carePlanId, session, start } = await approvedSession();
    const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString());
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'ignored' });
    expect((await notLinkedIssueOf(infusion.id!)).status).toBe('preliminary');
    await completedInEhrNaming(session, infusion);

    const sweep = { name: JOBS.overdueSweep, updateProgress: () => Promise.resolve() } as unknown as Job;
    await service.app.get(MaintenanceProcessor).process(sweep);
    await waitFor(async () => (await notLinkedIssueOf(infusion.id!)).status === 'final', 'the issue resolved');
    expect((await notLinkedIssueOf(infusion.id!)).mitigation?.[0].action.coding?.[0].code).toBe(
      'infusion-linked-on-evidence',
    );
    expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
    expect((await followUpTasks(service, infusion.id!)).map(actionOf)).toContain('post-infusion-check');
  });

  it('charted before the pump’s record: ignored, then linked and followed up when that record is heard', async () => {
    const { patient, carePlanId, session, start, pumpGave } = await approvedSession();
    const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString());
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'ignored' });
    const given = await pumpGave();
    await postWebhook(service, JSON.stringify(given)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(given.id!), 'the pump’s record heard');
    // Before, the record looked only for infusions naming a plan: this one stayed ignored, its session open.
    await waitFor(
      async () => (await service.fhir.read<Task>('Task', session.id!)).status === 'completed',
      'the session',
    );
    expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
    expect((await followUpTasks(service, infusion.id!)).map(actionOf)).toContain('post-infusion-check');
    // Its first look asked a clinician to link it (since session 47): resolved by the link, as the service's.
    expect(await notLinkedIssueOf(infusion.id!)).toMatchObject({
      status: 'final',
      mitigation: [{ action: { coding: [expect.objectContaining({ code: 'infusion-linked-on-evidence' })] } }],
    });
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(order.status).toBe('completed');
  });

  it('the pump gave the EHR’s replacement of its own order a session was approved on: linked to that session’s plan (likely seed 2359)', async () => {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const draft = tasks.find((t) => actionOf(t) === 'infusion-session')!;
    const { ehrOrder } = await orderedInEhrFor(service, draft);
    await request(service.url)
      .post(`/tasks/${draft.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: draft.meta!.versionId, onOrder: `MedicationRequest/${ehrOrder.id}` })
      .expect(200);
    // The EHR changes the dose: its replacement names no plan, only the order it replaces.
    const { resource: replacement } = await service.fhir.create(ehrReplacementOf(ehrOrder));
    await service.fhir.update<MedicationRequest>({ ...ehrOrder, status: 'cancelled' });
    const start = Date.parse(draft.restriction!.period!.start!) + 3_600_000;
    await service.fhir.create(
      administrationOf(replacement, 'completed', {
        start: new Date(start + 5 * 60_000).toISOString(),
        end: new Date(start + 55 * 60_000).toISOString(),
      }),
    );
    const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString());
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created' });
    expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
  });

  it.each([
    ['the order written here', false],
    ['the EHR’s order the session was approved on (seed 2428)', true],
  ])(
    'the order the pump gave deleted in the EHR before the infusion was charted (%s): still linked, by its last version',
    async (_, onEhrOrder) => {
      const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
      const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
      const draft = tasks.find((t) => actionOf(t) === 'infusion-session')!;
      const { ehrOrder } = await orderedInEhrFor(service, draft);
      await request(service.url)
        .post(`/tasks/${draft.id}/$approve`)
        .set(service.as('clinician'))
        .send({
          versionId: draft.meta!.versionId,
          ...(onEhrOrder ? { onOrder: `MedicationRequest/${ehrOrder.id}` } : {}),
        })
        .expect(onEhrOrder ? 200 : 409);
      if (!onEhrOrder) {
        // Approved here once the EHR's own order is gone: the order written here is the one given.
        await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${ehrOrder.id}`, { method: 'DELETE' });
        await approveFirstSession(service, carePlanId);
      }
      const [given] = onEhrOrder
        ? [ehrOrder]
        : await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
            identifier: orderKeySearch(draft.id!),
          });
      const start = Date.parse(draft.restriction!.period!.start!) + 3_600_000;
      await service.fhir.create(
        administrationOf(given, 'completed', {
          start: new Date(start + 5 * 60_000).toISOString(),
          end: new Date(start + 55 * 60_000).toISOString(),
        }),
      );
      await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${given.id}`, { method: 'DELETE' });
      const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString());
      // Before, the pump's record named an order the search no longer included: ignored.
      expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created' });
      expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
    },
  );

  it('taken back before its follow-up, the pump having given a session during it under a plan paused meanwhile: that session is done as the pump recorded (seed 2425)', async () => {
    // Before, the in-error job found no plan on it and stopped: the order stayed active under the paused plan after
    // the drug went in (the hold leaves a session the pump began to its infusion; the follow-up ignores one in error).
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = await approveFirstSession(service, carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    const start = Date.parse(session.restriction!.period!.start!) + 3_600_000;
    const iso = (ms: number) => new Date(ms).toISOString();

    // The EHR pauses the plan; before its job runs, the pump gives the session.
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'on-hold' });
    const { resource: given } = await service.fhir.create(
      administrationOf(order, 'completed', { start: iso(start), end: iso(start + 3_600_000 - 60_000) }),
    );
    // The infusion charted naming no plan, then recorded in error before its follow-up ran.
    const { resource: charted } = await service.fhir.create<Procedure>({
      resourceType: 'Procedure',
      status: 'completed',
      code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002', display: 'Intravenous infusion' }] },
      subject: { reference: patient },
      performedPeriod: { start: iso(start), end: iso(start + 3_600_000) },
    });
    const inError = await service.fhir.update<Procedure>({ ...charted, status: 'entered-in-error' });

    // Every job in turn, as they ran that day: the plan's pause (the pump began the session: left to its infusion),
    // the pump's record, the infusion's follow-up (ignored: in error), the infusion in error, the sweep's look again.
    await service.app.get(PlanChanges).planChanged(carePlanId);
    await service.app.get(AdministrationRecorded).heard(given.id!);
    expect(await reportInfusion(service, charted.id!)).toMatchObject({ status: 'ignored' });
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await maintenanceJobDone(
      service,
      recheckContraindicationsJobId(`Procedure/${charted.id}`),
      'the worker to hear of the infusion in error',
    );
    await service.app.get(InfusionsInError).lookAgain();
    await service.app.get(PlanChanges).planChanged(carePlanId);

    // The invariant: a paused plan has no order to give. Before the fix the order stayed active, its Task approved.
    const orderNow = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    const taskNow = await service.fhir.read<Task>('Task', session.id!);
    expect([orderNow.status, taskNow.status]).toEqual(['completed', 'completed']);
    expect(taskNow.output?.[0]?.valueReference?.reference).toBe(`MedicationAdministration/${given.id}`);
    const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlanId}`,
    });
    expect(issues.map((i) => i.evidence?.[0]?.detail?.[0]?.reference)).toEqual([`Procedure/${charted.id}`]);
  });

  it.each([
    ['naming no plan', false],
    ['linked to its plan', true],
  ])(
    'taken back before its follow-up, the pump’s record of a session given during it charted only then (%s): that session is done as the pump recorded (seed 2471)',
    async (_, linked) => {
      const { patient, carePlanId, session, order, start } = await approvedSession();
      const end = new Date(start + 3_600_000).toISOString();
      const charted = await unlinkedInfusion(
        patient,
        end,
        linked ? { basedOn: [{ reference: `CarePlan/${carePlanId}` }] } : {},
      );
      await service.fhir.update<Procedure>({ ...charted, status: 'entered-in-error' });
      // Its in-error job runs first: nothing given during it is on record yet.
      await service.app.get(InfusionsInError).heard(charted.id!);
      expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('ready');
      // The eMAR charts the pump's record late.
      const { resource: given } = await service.fhir.create(
        administrationOf(order, 'completed', {
          start: new Date(start + 5 * 60_000).toISOString(),
          end: new Date(start + 55 * 60_000).toISOString(),
        }),
      );
      await service.app.get(AdministrationRecorded).heard(given.id!);
      await maintenanceJobDone(
        service,
        recheckContraindicationsJobId(`Procedure/${charted.id}`),
        'the infusion in error judged again',
      );
      // Before, nothing asked the in-error job again: the session stayed approved, its order active after the drug went in.
      const done = await service.fhir.read<Task>('Task', session.id!);
      expect([done.status, done.output?.at(-1)?.valueReference?.reference]).toEqual([
        'completed',
        `MedicationAdministration/${given.id}`,
      ]);
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    },
  );

  it('its plan stopped and the session withdrawn before the pump’s record was charted: that record still links it to the plan (seed 2935)', async () => {
    const { patient, carePlanId, order, start } = await approvedSession();
    // The EHR stops the plan: the approved session withdrawn, its order cancelled.
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    await service.app.get(PlanChanges).planChanged(carePlanId);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
    // The infusion charted naming no plan, heard before the pump's record: nothing ties it yet.
    const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString());
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'ignored' });
    // The pump's record of the cancelled order, charted late: it ties the infusion to the plan (before session 48,
    // the record of a closed order was not looked at again, and the infusion stayed unlinked).
    const { resource: given } = await service.fhir.create(
      administrationOf(order, 'completed', {
        start: new Date(start + 5 * 60_000).toISOString(),
        end: new Date(start + 55 * 60_000).toISOString(),
      }),
    );
    await service.app.get(AdministrationRecorded).heard(given.id!);
    await waitFor(async () => Boolean((await readProcedure(infusion.id!)).basedOn), 'the infusion linked');
    expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
  });

  it('naming its protocol’s infusion (instantiatesCanonical): linked to the plan following that protocol', async () => {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const infusion = await unlinkedInfusion(patient, '2027-01-04T10:00:00Z', {
      instantiatesCanonical: [LOW_DOSE_INFUSION],
    });
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created' });
    expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${carePlanId}`]);
  });

  it('nothing ties it to a plan (an IV infusion by its code alone: of another drug, say): not followed up, left as charted, and a clinician asked to link it', async () => {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const infusion = await unlinkedInfusion(patient, '2027-01-04T10:00:00Z');
    const outcome = (await reportInfusion(service, infusion.id!)) as { status: string; reason: string };
    expect(outcome.status).toBe('ignored');
    expect(outcome.reason).toMatch(
      /none of the patient's plans is tied to it.*link it with Procedure.basedOn; a clinician is asked to link it/,
    );
    const after = await readProcedure(infusion.id!);
    expect([after.meta?.versionId, after.basedOn]).toEqual([infusion.meta?.versionId, undefined]);
    expect(await followUpTasks(service, infusion.id!)).toEqual([]);
    // Before session 47 nothing more: nobody was told, and a ketamine session charted so was never followed up.
    const issue = await notLinkedIssueOf(infusion.id!);
    expect(issue).toMatchObject({
      status: 'preliminary',
      code: { coding: [{ code: 'infusion-not-linked' }] },
      patient: { reference: patient },
      implicated: [{ reference: `CarePlan/${carePlanId}` }],
      evidence: [{ detail: [{ reference: `Procedure/${infusion.id}` }] }],
    });
    // The same event again (the EHR re-sends it) raises no second issue.
    await reportInfusion(service, infusion.id!);
    expect(
      await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { identifier: notLinkedKey(infusion.id!) }),
    ).toHaveLength(1);
  });

  /**
   * The EHR's own plans for a patient: a care episode, instantiating no protocol (session 47), or a care pathway
   * instantiating a protocol of the EHR's own on the FHIR server, as an EHR on Medplum writes with
   * PlanDefinition/$apply: found, but following up no infusion (session 48; before, an infusion naming it first was
   * ignored as "not an infusion of the CarePlan's protocol", one naming it alone ignored instead of put to a
   * clinician, and one recorded in error had its issue raised on the EHR's plan).
   */
  const EHR_PLANS = [
    ['a care episode', (patient: string) => ehrPlanOf(patient)],
    ['a care pathway of the EHR’s own protocol', (patient: string) => ehrPlanOf(patient, EHR_PATHWAY_PROTOCOL)],
  ] as const;
  async function ehrPlanOf(patient: string, protocol?: PlanDefinition): Promise<CarePlan> {
    if (protocol && !(await service.fhir.searchAll('PlanDefinition', { url: protocol.url! })).length)
      await service.fhir.create(protocol);
    return (await service.fhir.create(ehrCarePlan(patient, protocol))).resource;
  }

  it.each(EHR_PLANS)('based on %s and the service’s plan: followed up under the service’s', async (_kind, ehrPlan) => {
    const { patient, carePlanId, session, order, start } = await approvedSession();
    const own = await ehrPlan(patient);
    const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString(), {
      basedOn: [{ reference: `CarePlan/${own.id}` }, { reference: `CarePlan/${carePlanId}` }],
    });
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created', carePlanId });
    expect((await followUpTasks(service, infusion.id!)).map(actionOf)).toContain('post-infusion-check');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('completed');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  });

  it.each(EHR_PLANS)(
    'based on %s alone, the pump recorded the plan’s order during it: linked to the service’s plan, first, and followed up',
    async (_kind, ehrPlan) => {
      const { patient, carePlanId, session, start, pumpGave } = await approvedSession();
      const own = await ehrPlan(patient);
      await pumpGave();
      const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString(), {
        basedOn: [{ reference: `CarePlan/${own.id}` }],
      });
      expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created', carePlanId });
      expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([
        `CarePlan/${carePlanId}`,
        `CarePlan/${own.id}`,
      ]);
      expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('completed');
    },
  );

  it.each(EHR_PLANS)(
    'based on %s alone, nothing tying it: a clinician is asked to link it, as for one naming no plan',
    async (_kind, ehrPlan) => {
      const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
      const own = await ehrPlan(patient);
      const infusion = await unlinkedInfusion(patient, '2027-01-04T10:00:00Z', {
        basedOn: [{ reference: `CarePlan/${own.id}` }],
      });
      const outcome = (await reportInfusion(service, infusion.id!)) as { status: string; reason: string };
      expect(outcome).toMatchObject({
        status: 'ignored',
        reason: expect.stringMatching(/^it names no care plan of a protocol \(only the EHR’s own\)/),
      });
      const issue = await notLinkedIssueOf(infusion.id!);
      expect(issue.implicated).toEqual([{ reference: `CarePlan/${carePlanId}` }]);
      // A clinician links it: the service's plan named first, the EHR's kept (before, refused as linked elsewhere).
      await request(service.url)
        .post(`/detected-issues/${issue.id}/$link-infusion`)
        .set(service.as('clinician'))
        .send({ carePlan: `CarePlan/${carePlanId}`, versionId: issue.meta!.versionId })
        .expect(200);
      expect((await readProcedure(infusion.id!)).basedOn?.map((b) => b.reference)).toEqual([
        `CarePlan/${carePlanId}`,
        `CarePlan/${own.id}`,
      ]);
    },
  );

  it.each(EHR_PLANS)(
    'based on %s and the service’s plan, recorded in error after its follow-ups: the service’s plan is held',
    async (_kind, ehrPlan) => {
      const { patient, carePlanId, start } = await approvedSession();
      const own = await ehrPlan(patient);
      const infusion = await unlinkedInfusion(patient, new Date(start + 3_600_000).toISOString(), {
        basedOn: [{ reference: `CarePlan/${own.id}` }, { reference: `CarePlan/${carePlanId}` }],
      });
      expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'created', carePlanId });
      const inError = await service.fhir.update<Procedure>({
        ...(await readProcedure(infusion.id!)),
        status: 'entered-in-error',
      });
      await postWebhook(service, JSON.stringify(inError)).expect(202);
      await maintenanceJobDone(
        service,
        recheckContraindicationsJobId(`Procedure/${infusion.id}`),
        'the infusion heard',
      );
      const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        code: 'infusion-recorded-in-error',
        patient,
      });
      expect(issues.map((i) => i.implicated?.[0].reference)).toEqual([`CarePlan/${carePlanId}`]);
    },
  );

  it('a patient with no plan: ignored, left as charted', async () => {
    const { resource: patient } = await service.fhir.create<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Planless' }],
    });
    const infusion = await unlinkedInfusion(`Patient/${patient.id}`, '2027-01-04T10:00:00Z', {
      instantiatesCanonical: [LOW_DOSE_INFUSION],
    });
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'ignored' });
    expect((await readProcedure(infusion.id!)).meta?.versionId).toBe(infusion.meta?.versionId);
  });
});
