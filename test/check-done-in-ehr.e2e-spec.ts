import request from 'supertest';
import type {
  CommunicationRequest,
  DetectedIssue,
  MedicationRequest,
  Observation,
  OperationOutcome,
  Provenance,
  QuestionnaireResponse,
  Task,
} from '@medplum/fhirtypes';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import {
  checkAnsweredElsewhereJobId,
  checkDoneElsewhereJobId,
  PatientRecordEventsProducer,
  QUEUES,
  QueueUnavailableError,
} from '@kc/queue';
import { ChecksAnsweredElsewhere } from '../apps/worker/src/checks/checks-answered-elsewhere.service';
import { CompletedChecksPoller } from '../apps/worker/src/checks/completed-checks-poller';
import {
  actionOf,
  approveTask,
  completeInfusion,
  followUpTasks,
  maintenanceJobDone,
  overrideIssue,
  postWebhook,
  queueIdle,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { approvedSessionOrder, checkAnswers, infusedForCheck } from './support/checks';
import { startTestService, type TestService } from './support/test-service';

const CS = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';
const CPG_ACTIVITY = 'http://hl7.org/fhir/uv/cpg/CodeSystem/cpg-activity-type';
const QUESTIONNAIRE = 'https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check';

/**
 * The check done in the EHR, the standard way (CPG cpg-questionnairetask, SDC): the check Task names its
 * Questionnaire in `input`; the EHR's form filler writes a QuestionnaireResponse, puts it in the Task's `output`
 * and completes the Task. The service, told by the Task's notification (or finding it by polling), records the check
 * as done as if the clinic had used `$complete`: its businessStatus, the scores and effects extracted as
 * Observations, a Provenance naming who answered, the booster timing moved by the scores.
 */
describe('a post-infusion check completed in the EHR', () => {
  let service: TestService;
  beforeAll(async () => {
    // Answers written alone are matched at once here (a clinic waits CHECK_ANSWERS_GRACE_MS for a form filler).
    service = await startTestService({ checkAnswersGraceMs: 0 });
  });
  afterAll(() => service.stop());

  const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

  const infusedPatient = () => infusedForCheck(service);

  /** What an EHR's form filler writes: its answers, then the Task completed with them as output. */
  async function completeInEhr(check: Task, pain: number, effects = ['effect-nausea']): Promise<Task> {
    const { resource: response } = await service.fhir.create<QuestionnaireResponse>({
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      questionnaire: `${QUESTIONNAIRE}|1.0.0`,
      subject: check.for,
      authored: iso(60_000),
      author: { reference: 'Practitioner/ehr-nurse', display: 'Nurse Grace (EHR)' },
      item: checkAnswers(pain, effects).item,
    });
    return service.fhir.update<Task>({
      ...check,
      status: 'completed',
      output: [
        {
          type: { coding: [{ system: CPG_ACTIVITY, code: 'collect-information' }] },
          valueReference: { reference: `QuestionnaireResponse/${response.id}` },
        },
      ],
    });
  }

  /**
   * The EHR's Subscription tells the service of the Task (Medplum style: the Task as the body, signed); returns once
   * the worker's job for it is done (the maintenance queue always holds its next scheduled sweep, so it is never idle).
   */
  async function notify(task: Task): Promise<void> {
    const body = JSON.stringify(task);
    await postWebhook(service, body).expect(202);
    await maintenanceJobDone(service, checkDoneElsewhereJobId(task.id!), 'the worker to handle the notified Task');
  }

  /** The Observations extracted from a response, and their values as `code=value`, sorted. */
  const extractedFrom = (response: string) =>
    service.fhir.searchAll<Observation>('Observation', { 'derived-from': response });
  const valuesOf = (observations: Observation[]) =>
    observations
      .map(
        (o) =>
          `${o.code.coding?.[0].code}=${o.valueInteger ?? o.valueQuantity?.value ?? o.valueCodeableConcept?.coding?.[0].code}`,
      )
      .sort();

  const provenanceOf = async (task: Task) =>
    (await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${task.id}` })).filter(
      (p) => p.activity?.text === 'complete',
    );

  it('names its Questionnaire in the Task, as CPG asks, for any form filler', async () => {
    const p = await infusedPatient();
    expect(p.check.input).toEqual([
      {
        type: { coding: [{ system: CPG_ACTIVITY, code: 'collect-information', display: 'Collect information' }] },
        valueCanonical: `${QUESTIONNAIRE}|1.0.0`,
      },
    ]);
    // Only the check collects answers.
    expect(p.booster.input).toBeUndefined();
  });

  it('is recorded as done when the EHR completes it: scores and effects extracted, who answered, the booster moved', async () => {
    const p = await infusedPatient();
    const completed = await completeInEhr(p.check, 7);
    await notify(completed);

    const task = await service.fhir.read<Task>('Task', p.check.id!);
    expect(task.status).toBe('completed');
    expect(task.businessStatus?.coding?.[0].code).toBe('done');
    // The EHR's answers stay as they are, named where the EHR put them.
    expect(task.output).toEqual(completed.output);
    const responseRef = completed.output![0].valueReference!.reference!;
    const extracted = await extractedFrom(responseRef);
    expect(valuesOf(extracted)).toEqual(['72514-3=7', '91147-9=6.3', 'infusion-effect=effect-nausea']);
    expect(extracted.every((o) => o.performer?.[0].reference === 'Practitioner/ehr-nurse')).toBe(true);
    const [provenance] = await provenanceOf(task);
    expect(provenance.agent?.[0].who).toEqual({ reference: 'Practitioner/ehr-nurse', display: 'Nurse Grace (EHR)' });
    expect(provenance.reason?.[0].text).toBe('Recorded in the EHR');

    // Pain 7 against 8 before: the booster awaiting approval is proposed earlier, as after a check recorded here.
    await queueIdle(service, QUEUES.outcomes);
    const booster = await service.fhir.read<Task>('Task', p.booster.id!);
    expect(booster.reasonCode?.coding?.[0]).toMatchObject({ system: CS, code: 'booster-earlier' });

    // The same notification again (or the poll finding it): nothing more is written.
    await notify(completed);
    expect(await provenanceOf(task)).toHaveLength(1);
    expect(await service.fhir.searchAll<Observation>('Observation', { 'derived-from': responseRef })).toHaveLength(3);
  });

  it('approved here, then completed in the EHR: its one-week reminder not sent yet is revoked with it', async () => {
    const p = await infusedPatient();
    const approved = await approveTask(service, p.check);
    await notify(await completeInEhr(approved, 4, ['effect-none']));
    const reminders = (
      await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
        'based-on': `CarePlan/${p.carePlanId}`,
      })
    ).filter((r) => r.about?.some((a) => a.reference === `Task/${p.check.id}`));
    // Before session 44 it stayed active until its delivery time.
    expect(reminders.map((r) => r.status)).toEqual(['revoked']);
  });

  it('an effect marked for review, reported in the EHR, waits for a clinician as one reported here does', async () => {
    const p = await infusedPatient();
    const completed = await completeInEhr(p.check, 4, ['effect-raised-blood-pressure']);
    await notify(completed);
    const responseRef = completed.output![0].valueReference!.reference!;
    const [issue, ...more] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${p.carePlanId}`,
    });
    expect(more).toEqual([]);
    expect(issue).toMatchObject({
      code: {
        coding: [{ code: 'effect-raised-blood-pressure' }],
        text: 'Raised blood pressure reported after an infusion',
      },
      author: { reference: 'Practitioner/ehr-nurse' },
      evidence: [{ detail: [{ reference: responseRef }] }],
    });
    const [provenance] = await provenanceOf(await service.fhir.read<Task>('Task', p.check.id!));
    expect(provenance.target.map((t) => t.reference)).toContain(`DetectedIssue/${issue.id}`);
    const refused = await request(service.url)
      .post(`/tasks/${p.session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: p.session.meta!.versionId })
      .expect(422);
    expect(refused.body.issue[0].details.text).toMatch(
      /^Waiting for a clinician's review of what the patient reported/,
    );
    // The same notification again writes no second issue.
    await notify(completed);
    expect(
      await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${p.carePlanId}` }),
    ).toHaveLength(1);
  });

  it("a hold whose queueing failed after the check was recorded is queued by the job's retry", async () => {
    const p = await infusedPatient();
    const order = await approvedSessionOrder(service, p.session);
    // Redis stops answering between the check's transaction and the hold's job: the job fails, and is retried.
    const holds = jest
      .spyOn(service.app.get(PatientRecordEventsProducer), 'holdOrdersOf')
      .mockRejectedValueOnce(new QueueUnavailableError('Redis did not answer within 2000 ms'));
    try {
      await notify(await completeInEhr(p.check, 4, ['effect-hallucinations']));
      expect(holds).toHaveBeenCalledTimes(2);
    } finally {
      holds.mockRestore();
    }
    await waitFor(
      async () => (await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status === 'on-hold',
      'the approved session order to be held after the retry',
    );
    expect(
      await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${p.carePlanId}` }),
    ).toHaveLength(1);
  });

  it('answers that do not fit the Questionnaire are not guessed at: the check is done, the Provenance says why, and a clinician reads them', async () => {
    const p = await infusedPatient();
    const completed = await completeInEhr(p.check, 12);
    await notify(completed);
    const task = await service.fhir.read<Task>('Task', p.check.id!);
    expect(task.businessStatus?.coding?.[0].code).toBe('done');
    const responseRef = completed.output![0].valueReference!.reference!;
    expect(await service.fhir.searchAll<Observation>('Observation', { 'derived-from': responseRef })).toEqual([]);
    const [provenance] = await provenanceOf(task);
    expect(provenance.reason?.[0].text).toMatch(
      /^Recorded in the EHR; nothing was extracted: its answers do not fit the Post-infusion check: .*12 is outside 0 \.\. 10/,
    );
    // The effects they name were not judged: a clinician reads them (the issue names them as its evidence).
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${p.carePlanId}`,
    });
    expect(issue.code?.coding?.[0].code).toBe('check-answers-unread');
    expect(issue.evidence?.[0].detail?.[0].reference).toBe(responseRef);
    expect(provenance.target.map((t) => t.reference)).toContain(`DetectedIssue/${issue.id}`);
  });

  it('done in the EHR with no answers linked: the next infusions wait until a clinician has read them there', async () => {
    const p = await infusedPatient();
    const order = await approvedSessionOrder(service, p.session);
    // The EHR completes the check with nothing in its output (say its nurse wrote the answers in a note).
    await notify(await service.fhir.update<Task>({ ...p.check, status: 'completed' }));
    expect((await service.fhir.read<Task>('Task', p.check.id!)).businessStatus?.coding?.[0].code).toBe('done');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${p.carePlanId}`,
    });
    expect(issue).toMatchObject({
      status: 'preliminary',
      severity: 'moderate',
      code: {
        coding: [{ system: CS, code: 'check-answers-unread' }],
        text: 'Answers to the Post-infusion check not read',
      },
      evidence: [{ detail: [{ reference: `Task/${p.check.id}` }] }],
    });
    expect(issue.detail).toMatch(/could not be read here \(no answers to the Post-infusion check are linked to it/);
    // The approved session's order is held, and the booster cannot be approved, until then.
    await waitFor(
      async () => (await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status === 'on-hold',
      'the approved session order to be held',
    );
    const refused = await request(service.url)
      .post(`/tasks/${p.booster.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: p.booster.meta!.versionId })
      .expect(422);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(
      /^Waiting for a clinician to read in the EHR the answers that could not be read here: Answers to the Post-infusion check not read\./,
    );
    // Read in the EHR, reviewed here with what was decided: the order is active again.
    await overrideIssue(service, issue, 'Read in the EHR: no effects reported').expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
  });

  it('without a notification, the poll finds it', async () => {
    const p = await infusedPatient();
    await completeInEhr(p.check, 5, ['effect-none']);
    // An empty notification (HAPI without payload) asks for a poll now: the same poll runs every POLL_INTERVAL_MS.
    await request(service.url).post('/webhooks/fhir').set('x-webhook-token', 'test-webhook-secret').expect(202);
    await waitFor(
      async () =>
        (await service.fhir.read<Task>('Task', p.check.id!)).businessStatus?.coding?.[0].code === 'done' || undefined,
      'the polled check to be recorded as done',
    );
    expect((await provenanceOf(p.check)).map((x) => x.reason?.[0].text)).toEqual(['Recorded in the EHR']);
  });

  it('leaves alone what is not a check done elsewhere: an infusion Task, a check recorded with $complete', async () => {
    const p = await infusedPatient();
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${p.carePlanId}` });
    const session = tasks.find((t) => actionOf(t) === 'next-induction-session')!;
    // An EHR completing an infusion Task is not a check: its Procedure is what records an infusion.
    const completedSession = await service.fhir.update<Task>({ ...session, status: 'completed' });
    await notify(completedSession);
    expect((await service.fhir.read<Task>('Task', session.id!)).businessStatus?.coding?.[0].code).not.toBe('done');
    expect(await provenanceOf(session)).toEqual([]);

    // A check the clinic recorded here: its own notification echoed back changes nothing.
    const recorded = await request(service.url)
      .post(`/tasks/${p.check.id}/$complete`)
      .set(service.as('clinician'))
      .send({
        versionId: p.check.meta!.versionId,
        response: checkAnswers(3, ['effect-none'], { peg: [3, 3, 3] }),
      })
      .expect(200);
    await notify(recorded.body as Task);
    expect(await provenanceOf(p.check)).toHaveLength(1);
    expect((await service.fhir.read<Task>('Task', p.check.id!)).meta?.versionId).toBe(
      (recorded.body as Task).meta?.versionId,
    );
    // Its answers name the infusion they follow (partOf) and its plan, as a portal's may; echoed back to the webhook
    // or found by the poll, they queue no job to match them (their Task names them).
    const answersRef = (recorded.body as Task).output?.find((o) =>
      o.valueReference?.reference?.startsWith('QuestionnaireResponse/'),
    )?.valueReference?.reference;
    const answers = await service.fhir.read<QuestionnaireResponse>('QuestionnaireResponse', answersRef!.split('/')[1]);
    expect(answers.partOf).toEqual([{ reference: `Procedure/${p.procedureId}` }]);
    expect(answers.basedOn).toEqual([{ reference: `CarePlan/${p.carePlanId}` }]);
    const echoed = await postWebhook(service, JSON.stringify(answers)).expect(202);
    expect((echoed.body as OperationOutcome).issue[0].details?.text).toMatch(/^Nothing to do/);
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    expect(await queue.getJob(checkAnsweredElsewhereJobId(answers.id!))).toBeUndefined();
    await service.app.get(CompletedChecksPoller).poll();
    expect(await queue.getJob(checkAnsweredElsewhereJobId(answers.id!))).toBeUndefined();
  });

  describe('answers written without the Task (a patient portal)', () => {
    /** What a portal writes: the answers alone, the check Task untouched. */
    async function answerInPortal(
      patient: string,
      pain: number,
      authored = iso(60_000),
      extra: Partial<QuestionnaireResponse> = {},
    ) {
      const { resource } = await service.fhir.create<QuestionnaireResponse>({
        resourceType: 'QuestionnaireResponse',
        status: 'completed',
        questionnaire: `${QUESTIONNAIRE}|1.0.0`,
        subject: { reference: patient },
        authored,
        author: { reference: patient },
        item: checkAnswers(pain, ['effect-dizziness']).item,
        ...extra,
      });
      return resource;
    }

    /** HAPI's rest-hook for the response (PUT, no body); returns once its job is done. */
    async function notifyAnswers(responseId: string): Promise<void> {
      await request(service.url)
        .put(`/webhooks/fhir/QuestionnaireResponse/${responseId}`)
        .set('x-webhook-token', 'test-webhook-secret')
        .expect(202);
      await maintenanceJobDone(
        service,
        checkAnsweredElsewhereJobId(responseId),
        'the worker to handle the notified answers',
      );
    }

    it("are matched to the patient's open check, which is recorded as done: scores extracted, the patient as who answered", async () => {
      const p = await infusedPatient();
      const response = await answerInPortal(p.patient, 4);
      await notifyAnswers(response.id!);

      const task = await service.fhir.read<Task>('Task', p.check.id!);
      expect(task.status).toBe('completed');
      expect(task.businessStatus?.coding?.[0].code).toBe('done');
      // As an EHR reads a check done with a form: the answers in its output.
      expect(task.output?.map((o) => o.valueReference?.reference)).toContain(`QuestionnaireResponse/${response.id}`);
      const extracted = await extractedFrom(`QuestionnaireResponse/${response.id}`);
      expect(valuesOf(extracted)).toEqual(['72514-3=4', '91147-9=6.3', 'infusion-effect=effect-dizziness']);
      const [provenance] = await provenanceOf(task);
      expect(provenance.agent?.[0].who).toEqual({ reference: p.patient });
      expect(provenance.reason?.[0].text).toMatch(/^Answered without the Task \(matched to this check/);

      // Notified again (or polled): nothing more is written.
      await notifyAnswers(response.id!);
      expect(await provenanceOf(task)).toHaveLength(1);
      expect((await service.fhir.read<Task>('Task', p.check.id!)).meta?.versionId).toBe(task.meta?.versionId);
    });

    it('answers given before the check was due are not matched to it; the poll finds answers nobody notified', async () => {
      const p = await infusedPatient();
      // Given three days ago: before this infusion (two days ago), so not about it.
      const early = await answerInPortal(p.patient, 6, iso(3 * 86_400_000));
      const outcome = await service.app.get(ChecksAnsweredElsewhere).handle(early.id!);
      expect(outcome).toEqual({ result: 'skipped', why: 'answered before any of its open checks was due' });
      expect((await service.fhir.read<Task>('Task', p.check.id!)).status).toBe('draft');

      // Answers of today, with no notification: an empty ping (HAPI without payload) asks for a poll now.
      const today = await answerInPortal(p.patient, 5);
      await request(service.url).post('/webhooks/fhir').set('x-webhook-token', 'test-webhook-secret').expect(202);
      await waitFor(
        async () =>
          (await service.fhir.read<Task>('Task', p.check.id!)).businessStatus?.coding?.[0].code === 'done' || undefined,
        'the polled answers to record the check',
      );
      const task = await service.fhir.read<Task>('Task', p.check.id!);
      expect(task.output?.map((o) => o.valueReference?.reference)).toContain(`QuestionnaireResponse/${today.id}`);
    });

    it('two checks open: answers naming none are the latest infusion’s; answers naming their infusion (partOf), that one’s', async () => {
      const p = await infusedPatient();
      // A second infusion yesterday, on the same plan: its own check, while the first is still open.
      const second = await completeInfusion(service, p, iso(86_400_000));
      await reportInfusion(service, second);
      const secondCheck = (await followUpTasks(service, second)).find((t) => actionOf(t) === 'post-infusion-check')!;
      const statusOf = async (task: Task) => (await service.fhir.read<Task>('Task', task.id!)).status;

      // How the patient is now: after yesterday's infusion.
      const now = await answerInPortal(p.patient, 3);
      await notifyAnswers(now.id!);
      expect(await statusOf(secondCheck)).toBe('completed');
      expect(await statusOf(p.check)).toBe('draft');

      // A portal that says which infusion it asks about (QuestionnaireResponse.partOf, the Procedure).
      const late = await answerInPortal(p.patient, 5, iso(30_000), {
        partOf: [{ reference: `Procedure/${p.procedureId}` }],
      });
      await notifyAnswers(late.id!);
      const first = await service.fhir.read<Task>('Task', p.check.id!);
      expect(first.status).toBe('completed');
      expect(first.output?.map((o) => o.valueReference?.reference)).toContain(`QuestionnaireResponse/${late.id}`);
    });

    it('answers matched alone, then the EHR completes the Task with them anyway: extracted once', async () => {
      const p = await infusedPatient();
      const response = await answerInPortal(p.patient, 3);
      await notifyAnswers(response.id!);
      const recorded = await service.fhir.read<Task>('Task', p.check.id!);
      // A form filler that did not see the change writes the Task as it read it, completed with the answers.
      const rewritten = await service.fhir.update<Task>({
        ...p.check,
        status: 'completed',
        output: [
          {
            type: { coding: [{ system: CPG_ACTIVITY, code: 'collect-information' }] },
            valueReference: { reference: `QuestionnaireResponse/${response.id}` },
          },
        ],
      });
      expect(rewritten.meta?.versionId).not.toBe(recorded.meta?.versionId);
      await notify(rewritten);
      expect(
        await service.fhir.searchAll<Observation>('Observation', {
          'derived-from': `QuestionnaireResponse/${response.id}`,
        }),
      ).toHaveLength(3);
      const task = await service.fhir.read<Task>('Task', p.check.id!);
      expect(task.businessStatus?.coding?.[0].code).toBe('done');
      expect((await provenanceOf(task)).map((x) => x.reason?.[0].text)).toEqual([
        expect.stringMatching(/^Answered without the Task/),
        'Recorded in the EHR; nothing was extracted: its answers were recorded already',
      ]);
    });
  });
});
