import request from 'supertest';
import type {
  Bundle,
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  MedicationRequest,
  Observation,
  OperationOutcome,
  Provenance,
  Questionnaire,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  Task,
} from '@medplum/fhirtypes';
import { PatientRecordEventsProducer, QUEUES, QueueUnavailableError } from '@kc/queue';
import { approveTask, queueIdle, waitFor, worklistIdsOf } from './support/clinic';
import { PlanChanges } from '../apps/worker/src/maintenance/plan-changes';
import { approvedSessionOrder, checkAnswers, infusedForCheck } from './support/checks';
import { startTestService, type TestService } from './support/test-service';

const CS = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';

/**
 * The post-infusion check, recorded: the clinician asks the check's Questionnaire (fhir-profiles, named by the
 * protocol's ActivityDefinition) and records the answers through `POST /tasks/{id}/$complete`. The Task is done, the
 * answers kept as a QuestionnaireResponse, the scores and effects extracted as Observations, a Provenance names the
 * clinician, all in one transaction; the scores then move the proposed booster as any recorded score does.
 */
describe('recording the post-infusion check', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

  const infusedPatient = () => infusedForCheck(service);

  const answers = (pain: number, effects: string[]): QuestionnaireResponse =>
    checkAnswers(pain, effects, { note: 'Slept most of the afternoon; fine since.' });

  const complete = (task: Task, response: unknown, versionId = task.meta!.versionId) =>
    request(service.url).post(`/tasks/${task.id}/$complete`).set(service.as('clinician')).send({ versionId, response });

  const responsesFor = (task: Task) =>
    service.fhir.searchAll<QuestionnaireResponse>('QuestionnaireResponse', { subject: task.for!.reference! });

  it('serves the check its Questionnaire, and refuses one for an infusion session', async () => {
    const p = await infusedPatient();
    const res = await request(service.url)
      .get(`/tasks/${p.check.id}/questionnaire`)
      .set(service.as('clinician'))
      .expect(200);
    const questionnaire = res.body as Questionnaire;
    expect(questionnaire.url).toBe('https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check');
    expect(questionnaire.item?.map((i) => i.linkId)).toEqual(['pain-now', 'peg', 'effects', 'note']);
    const refused = await request(service.url)
      .get(`/tasks/${p.session.id}/questionnaire`)
      .set(service.as('clinician'))
      .expect(409);
    expect((refused.body as OperationOutcome).issue?.[0].details?.text).toMatch(
      /is not done by answering a questionnaire: an infusion is done when its Procedure is recorded/,
    );
  });

  it('completes the check with its answers, scores and effects, names the clinician, and moves the booster earlier', async () => {
    const p = await infusedPatient();
    const res = await complete(p.check, answers(7, ['effect-nausea', 'effect-dizziness'])).expect(200);
    const done = res.body as Task;
    expect(done.status).toBe('completed');
    expect(done.businessStatus?.coding?.[0].code).toBe('done');

    // The response, as the Questionnaire lays it out, with the PEG score calculated ((7 + 6 + 6) / 3).
    const [response] = await responsesFor(p.check);
    expect(done.output?.at(-1)?.valueReference?.reference).toBe(`QuestionnaireResponse/${response.id}`);
    expect(response).toMatchObject({
      status: 'completed',
      questionnaire: 'https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check|1.0.0',
      subject: { reference: p.patient },
      basedOn: [{ reference: `CarePlan/${p.carePlanId}` }],
      author: { reference: 'Practitioner/dr-test' },
    });
    const peg = response.item!.find((i: QuestionnaireResponseItem) => i.linkId === 'peg')!;
    expect(peg.item!.find((i) => i.linkId === 'peg-score')!.answer).toEqual([{ valueDecimal: 6.3 }]);

    // Extracted: what an EHR (and the booster timing) reads as the patient's scores and effects.
    const extracted = await service.fhir.searchAll<Observation>('Observation', {
      subject: p.patient,
      _lastUpdated: `ge${iso(60_000)}`,
    });
    const values = extracted
      .filter((o) => o.derivedFrom?.[0]?.reference === `QuestionnaireResponse/${response.id}`)
      .map(
        (o) =>
          `${o.code.coding?.[0].code}=${o.valueInteger ?? o.valueQuantity?.value ?? o.valueCodeableConcept?.coding?.[0].code}`,
      )
      .sort();
    expect(values).toEqual([
      '72514-3=7',
      '91147-9=6.3',
      'infusion-effect=effect-dizziness',
      'infusion-effect=effect-nausea',
    ]);

    // Who recorded it, and what it wrote.
    const [provenance] = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${p.check.id}` });
    expect(provenance.activity?.text).toBe('complete');
    expect(provenance.agent?.[0].who?.reference).toBe('Practitioner/dr-test');
    expect(provenance.target.map((t) => t.reference?.split('/')[0]).sort()).toEqual([
      'Observation',
      'Observation',
      'Observation',
      'Observation',
      'QuestionnaireResponse',
      'Task',
    ]);

    // Pain 7 against 8 before: relief is not holding, so the booster awaiting approval is proposed earlier.
    await queueIdle(service, QUEUES.outcomes);
    const booster = await service.fhir.read<Task>('Task', p.booster.id!);
    expect(booster.reasonCode?.coding?.[0]).toMatchObject({ system: CS, code: 'booster-earlier' });
    expect(booster.reasonCode?.text).toMatch(/Pain NRS 7 on .* against a baseline of 8 \(13% better\)/);

    // Done, so off the worklist.
    const worklist = await request(service.url)
      .get('/worklist')
      .query({ patient: p.patient.split('/')[1] })
      .set(service.as('clinician'))
      .expect(200);
    expect(worklist.body.items.map((i: { id: string }) => i.id)).not.toContain(p.check.id);
  });

  it('approved, then recorded: its one-week reminder not sent yet is revoked with it, so no EHR reads it pending', async () => {
    const p = await infusedPatient();
    const approved = await approveTask(service, p.check);
    const aboutCheck = async () =>
      (
        await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
          'based-on': `CarePlan/${p.carePlanId}`,
        })
      ).filter((r) => r.about?.some((a) => a.reference === `Task/${p.check.id}`));
    expect((await aboutCheck()).map((r) => r.status)).toEqual(['active']);
    await complete(approved, answers(3, ['effect-none'])).expect(200);
    // Before session 44 it stayed active until its delivery time, when the delivery revoked it.
    expect((await aboutCheck()).map((r) => [r.status, r.statusReason?.text])).toEqual([
      ['revoked', 'Not sent: the Post-infusion check within one week was recorded as done'],
    ]);
  });

  // Since session 52; before, the check was withdrawn with its plan, and a patient whose course the EHR stopped or
  // completed the day after an infusion had no check of it.
  it('outlives its plan stopped or completed in the EHR: approved and recorded after; the sessions withdrawn', async () => {
    for (const status of ['revoked', 'completed'] as const) {
      const p = await infusedPatient();
      const plan = await service.fhir.read<CarePlan>('CarePlan', p.carePlanId);
      await service.fhir.update<CarePlan>({ ...plan, status });
      await service.app.get(PlanChanges).planChanged(p.carePlanId);
      const now = async (t: Task) => service.fhir.read<Task>('Task', t.id!);
      for (const session of [p.session, p.booster])
        expect(await now(session)).toMatchObject({
          status: 'cancelled',
          statusReason: { text: expect.stringMatching(/^Withdrawn: its care plan/) },
        });
      expect((await now(p.check)).status).toBe('draft');
      expect(await worklistIdsOf(service, p.patient)).toEqual([p.check.id]);
      const approved = await approveTask(service, await now(p.check));
      await complete(approved, answers(3, ['effect-none'])).expect(200);
      expect(await now(p.check)).toMatchObject({
        status: 'completed',
        businessStatus: { coding: [expect.objectContaining({ code: 'done' })] },
      });
      // The plan is left as the EHR set it.
      expect((await service.fhir.read<CarePlan>('CarePlan', p.carePlanId)).status).toBe(status);
    }
  });

  it('an EHR reads the recorded check through the FHIR read API: the answers, and the scores derived from them', async () => {
    const p = await infusedPatient();
    await complete(p.check, answers(5, ['effect-dissociation'])).expect(200);
    const ehr = (path: string) => request(service.url).get(path).set(service.as('integration')).expect(200);
    const responses = (await ehr(`/fhir/QuestionnaireResponse?patient=${p.patient}&based-on=CarePlan/${p.carePlanId}`))
      .body as Bundle<QuestionnaireResponse>;
    expect(responses.entry).toHaveLength(1);
    const response = responses.entry![0].resource!;
    const derived = (await ehr(`/fhir/Observation?derived-from=QuestionnaireResponse/${response.id}`))
      .body as Bundle<Observation>;
    expect(derived.entry!.map((e) => e.resource!.code.coding![0].code).sort()).toEqual([
      '72514-3',
      '91147-9',
      'infusion-effect',
    ]);
    // Standard fields an EHR filters on: the LOINC code, and the survey category.
    const pain = (await ehr(`/fhir/Observation?patient=${p.patient}&code=http://loinc.org|72514-3&category=survey`))
      .body as Bundle<Observation>;
    expect(pain.entry!.map((e) => e.resource!.valueInteger)).toEqual([5]);
  });

  it('an effect the Questionnaire marks for review holds the plan: its orders held, nothing approved, until a clinician reviews it', async () => {
    const p = await infusedPatient();
    const clinician = service.as('clinician');
    // The next session was approved before the check: its order is active.
    const approved = (
      await request(service.url)
        .post(`/tasks/${p.session.id}/$approve`)
        .set(clinician)
        .send({ versionId: p.session.meta!.versionId })
        .expect(200)
    ).body as Task;
    const orderId = p.session.focus!.reference!.split('/')[1];
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: `https://ketamine-careplans.example/fhir/NamingSystem/order-key|Task/${p.session.id}`,
    });
    expect([order.status, orderId]).toEqual(['active', expect.any(String)]);

    // Hallucinations (marked for review in fhir-profiles) and nausea (not marked) reported at the check.
    await complete(p.check, answers(3, ['effect-hallucinations', 'effect-nausea'])).expect(200);
    const [response] = await responsesFor(p.check);
    const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${p.carePlanId}`,
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({
      status: 'preliminary',
      severity: 'high',
      code: {
        coding: [{ system: CS, code: 'effect-hallucinations' }],
        text: 'Hallucinations reported after an infusion',
      },
      patient: { reference: p.patient },
      author: { reference: 'Practitioner/dr-test' },
      evidence: [{ detail: [{ reference: `QuestionnaireResponse/${response.id}` }] }],
      identifier: [
        {
          system: 'https://ketamine-careplans.example/fhir/NamingSystem/reported-effect-key',
          value: `Task/${p.check.id}:effect-hallucinations`,
        },
      ],
    });
    expect(issues[0].mitigation).toBeUndefined();
    // The check's Provenance lists it with what the check wrote.
    const [provenance] = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${p.check.id}` });
    expect(provenance.target.map((t) => t.reference)).toContain(`DetectedIssue/${issues[0].id}`);

    // The approved order is held at once (its own job), so an EHR or a pump reading its status gives nothing.
    await waitFor(
      async () => (await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status === 'on-hold',
      'the approved session order to be held',
    );
    expect((await service.fhir.read<Task>('Task', p.session.id!)).status).toBe('on-hold');
    // Nothing on the plan is approved meanwhile; the refusal says what waits for whom.
    const refused = await request(service.url)
      .post(`/tasks/${p.booster.id}/$approve`)
      .set(clinician)
      .send({ versionId: p.booster.meta!.versionId })
      .expect(422);
    // The session's order, approved before, is held by it: the refusal says so.
    expect((refused.body as OperationOutcome).issue?.[0].details?.text).toBe(
      "Waiting for a clinician's review of what the patient reported: Hallucinations reported after an infusion. " +
        'A clinician reviews it by overriding it, saying what was decided. ' +
        'An order approved before under this care plan is on hold until then.',
    );
    // The worklist shows it as an effect to review, on the patient's rows.
    const worklist = await request(service.url)
      .get('/worklist/view')
      .query({ patient: p.patient })
      .set(clinician)
      .expect(200);
    const row = (worklist.body.items as { id: string; view: { contraindications: unknown[] } }[]).find(
      (i) => i.id === p.booster.id,
    );
    expect(row?.view.contraindications).toEqual([
      expect.objectContaining({ id: issues[0].id, kind: 'reported-effect', state: 'unresolved' }),
    ]);

    // The clinician reviews it (as the page shows it now: the hold named the order on it): the order is active
    // again, and the booster can be approved.
    const shown = await service.fhir.read<DetectedIssue>('DetectedIssue', issues[0].id!);
    expect(shown.implicated?.map((r) => r.reference)).toContain(`MedicationRequest/${order.id}`);
    await request(service.url)
      .post(`/detected-issues/${issues[0].id}/$override`)
      .set(clinician)
      .set('If-Match', `W/"${shown.meta!.versionId}"`)
      .send({ reason: 'Brief, resolved by the evening; go on at a lower rate' })
      .expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    expect((await service.fhir.read<Task>('Task', p.session.id!)).meta!.versionId).not.toBe(approved.meta!.versionId);
    // (The booster as it is now: the check's scores may have moved it.)
    await queueIdle(service, QUEUES.outcomes);
    const booster = await service.fhir.read<Task>('Task', p.booster.id!);
    await request(service.url)
      .post(`/tasks/${p.booster.id}/$approve`)
      .set(clinician)
      .send({ versionId: booster.meta!.versionId })
      .expect(200);
  });

  it('a hold whose queueing failed after the check was written is asked for again when the same check is sent again', async () => {
    const p = await infusedPatient();
    const order = await approvedSessionOrder(service, p.session);
    // Redis stops answering between the check's transaction and the hold's job: the clinician gets a 503.
    const holds = jest
      .spyOn(service.app.get(PatientRecordEventsProducer), 'holdOrdersOf')
      .mockRejectedValueOnce(new QueueUnavailableError('Redis did not answer within 2000 ms'));
    const body = answers(3, ['effect-hallucinations']);
    try {
      await complete(p.check, body).expect(503);
      expect((await service.fhir.read<Task>('Task', p.check.id!)).status).toBe('completed');
      // The page (or the clinician) sends the same check again: answered as done, and the hold is queued this time.
      await complete(p.check, body).expect(200);
    } finally {
      holds.mockRestore();
    }
    await waitFor(
      async () => (await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status === 'on-hold',
      'the approved session order to be held after the check was sent again',
    );
    expect(await responsesFor(p.check)).toHaveLength(1);
  });

  it('effects not marked for review are recorded, and hold nothing', async () => {
    const p = await infusedPatient();
    await complete(p.check, answers(3, ['effect-nausea', 'effect-dizziness', 'effect-dissociation'])).expect(200);
    expect(
      await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${p.carePlanId}` }),
    ).toEqual([]);
    await request(service.url)
      .post(`/tasks/${p.session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: p.session.meta!.versionId })
      .expect(200);
  });

  it('the same answers sent again are answered as the first time, once; a stale version is refused', async () => {
    const p = await infusedPatient();
    await complete(p.check, answers(3, ['effect-none'])).expect(200);
    // A retry of the same request (its answer lost): the check stands, nothing is written twice.
    const again = await complete(p.check, answers(3, ['effect-none'])).expect(200);
    expect((again.body as Task).status).toBe('completed');
    expect(await responsesFor(p.check)).toHaveLength(1);
    // Other answers on the version already completed are not that retry: the clinician must see what was recorded.
    const changed = await complete(p.check, answers(7, ['effect-none'])).expect(412);
    expect((changed.body as OperationOutcome).issue?.[0].details?.text).toBe(
      'This task has changed since you loaded it; reload it and decide again',
    );
    await complete(p.check, answers(3, ['effect-none', 'effect-nausea'])).expect(412);
    expect(await responsesFor(p.check)).toHaveLength(1);
    // Someone else's change since: reload and look.
    const other = await infusedPatient();
    const approved = await request(service.url)
      .post(`/tasks/${other.check.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: other.check.meta!.versionId })
      .expect(200);
    expect((approved.body as Task).status).toBe('ready');
    await complete(other.check, answers(3, ['effect-none'])).expect(412);
    // An approved check is recorded like any other, on its current version.
    await complete(other.check, answers(3, ['effect-none']), (approved.body as Task).meta!.versionId).expect(200);
  });

  it('bad answers get a 400 naming each question, and nothing is written', async () => {
    const p = await infusedPatient();
    const bad = answers(12, ['effect-none', 'effect-nausea']);
    const res = await complete(p.check, bad).expect(400);
    const outcome = res.body as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue?.[0].details?.text).toMatch(/“Pain now .*”: 12 is outside 0 \.\. 10/);
    expect(outcome.issue?.[0].details?.text).toMatch(/“No effects” cannot be given with other answers/);
    expect(outcome.issue?.[0].expression).toEqual([
      "QuestionnaireResponse.item.where(linkId='pain-now')",
      "QuestionnaireResponse.item.where(linkId='effects')",
    ]);
    for (const malformed of [
      { resourceType: 'Observation' },
      { resourceType: 'QuestionnaireResponse', item: 'pain 7' },
      { resourceType: 'QuestionnaireResponse', item: [{ answer: [{ valueInteger: 1 }] }] },
      { resourceType: 'QuestionnaireResponse', item: [{ linkId: 'pain-now', answer: 7 }] },
    ])
      await complete(p.check, malformed).expect(400);
    await request(service.url)
      .post(`/tasks/${p.check.id}/$complete`)
      .set(service.as('clinician'))
      .send({ versionId: p.check.meta!.versionId, response: answers(3, ['effect-none']), extra: true })
      .expect(400);
    expect((await service.fhir.read<Task>('Task', p.check.id!)).status).toBe('draft');
    expect(await responsesFor(p.check)).toHaveLength(0);
  });

  it('an infusion session is not completed by answers, and only clinicians record checks', async () => {
    const p = await infusedPatient();
    await complete(p.session, answers(3, ['effect-none'])).expect(409);
    await request(service.url)
      .post(`/tasks/${p.check.id}/$complete`)
      .set(service.as('integration'))
      .send({ versionId: p.check.meta!.versionId, response: answers(3, ['effect-none']) })
      .expect(403);
    await request(service.url)
      .post(`/tasks/${p.check.id}/$complete`)
      .send({ versionId: p.check.meta!.versionId, response: answers(3, ['effect-none']) })
      .expect(401);
    expect((await service.fhir.read<Task>('Task', p.check.id!)).status).toBe('draft');
  });
});
