import request from 'supertest';
import type { CarePlan, CommunicationRequest, MedicationRequest, Task } from '@medplum/fhirtypes';
import { ToDoIndex } from '@kc/worklist-index';
import { orderKeySearch, stateOf } from '@kc/task-states';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { StoppedPlanSweep } from '../apps/worker/src/maintenance/stopped-plan-sweep';
import { ReminderDelivery } from '../apps/worker/src/reminders/reminder-delivery.service';
import {
  actionOf,
  approveFirstSession,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  reportInfusion,
} from './support/clinic';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { startTestService, type TestService } from './support/test-service';

/**
 * An approved Task an EHR carries on through FHIR's own workflow: a nurse starting the session sets it `in-progress`
 * (or `accepted`), as R4's Task state machine has it, before the infusion is charted. Before session 46 every search
 * the service makes for open Tasks asked for `draft,ready,on-hold` only, so such a session was never answered by its
 * infusion (it stayed open with its order active, a second dose to give), a plan stopped in the EHR left it and its
 * order as they were, its reminders were revoked as "no longer planned", and it left the to-do list at a rebuild.
 */
describe('an approved Task the EHR carries on (in progress, accepted)', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const orderOf = async (task: Task) =>
    (await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(task.id!) }))[0];
  async function begunInEhr(status: Task['status'] = 'in-progress') {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const approved = await approveFirstSession(service, enrolment.carePlanId);
    const session = await service.fhir.update<Task>({ ...approved, status });
    return { ...enrolment, session };
  }
  const toDo = async (patient: string) =>
    (
      (await request(service.url).get('/to-do').query({ patient }).set(service.as('clinician')).expect(200)).body as {
        items: { id: string; ehrStatus?: string }[];
      }
    ).items.map((i) => ({ id: i.id, ehrStatus: i.ehrStatus }));

  it('a session set in progress, then its infusion charted: done by it, its order completed, the next one proposed', async () => {
    const { session, ...enrolment } = await begunInEhr();
    const end = new Date(Date.parse(session.restriction!.period!.start!) + 2 * 3_600_000).toISOString();
    const procedureId = await completeInfusion(service, enrolment, end);
    await reportInfusion(service, procedureId);

    const after = await service.fhir.read<Task>('Task', session.id!);
    expect([after.status, stateOf(after)]).toEqual(['completed', 'done']);
    expect((await orderOf(session)).status).toBe('completed');
    expect((await followUpTasks(service, procedureId)).map(actionOf)).toContain('next-induction-session');
  });

  it('stays on the to-do list when the list is rebuilt, and its reminders are sent', async () => {
    const { session, carePlanId, patient } = await begunInEhr('accepted');
    await service.app.get(ToDoIndex).rebuild();
    // Listed, saying how the EHR carries it on.
    expect(await toDo(patient)).toContainEqual({ id: session.id, ehrStatus: 'accepted' });
    // A reminder of the session delivered now: sent, not revoked as "no longer planned".
    const [reminder] = (
      await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
        'based-on': `CarePlan/${carePlanId}`,
      })
    ).filter((r) => r.status === 'active' && r.about?.[0]?.reference === `Task/${session.id}`);
    const outcome = await service.app.get(ReminderDelivery).deliver(reminder.id!, reminder.occurrenceDateTime!);
    expect(outcome.status).toBe('sent');
  });

  it('a contraindication recorded since: its order held by the sweep, as a ready one’s is', async () => {
    const { session, patient } = await begunInEhr();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    expect((await service.app.get(ContraindicationSweep).sweep()).held).toBeGreaterThanOrEqual(1);
    expect((await orderOf(session)).status).toBe('on-hold');
  });

  it('its plan stopped in the EHR: withdrawn with its order, as a ready one is', async () => {
    const { session, carePlanId } = await begunInEhr();
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    await service.app.get(StoppedPlanSweep).sweep();
    const after = await service.fhir.read<Task>('Task', session.id!);
    expect([after.status, stateOf(after)]).toEqual(['cancelled', 'withdrawn']);
    expect((await orderOf(session)).status).toBe('cancelled');
  });
});
