import request from 'supertest';
import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { ordersApprovedOn } from '@kc/task-states';
import { applyPlan, enrolPatient, orderedInEhrFor } from './support/clinic';
import { holdFirst, startBehindProxy, type ServiceBehindProxy } from './support/flaky-proxy';
import { startTestService, type TestService } from './support/test-service';

/**
 * Two sessions approved on one order the EHR wrote (`onOrder`) by two clinicians at the same moment: each approval read
 * the order free (no other session approved on it), so before session 59 both landed, and one session's infusion
 * completing the order left the other approved with nothing to give (the clinic day, seed 6028). Now the approval
 * writes the order too (a tag), If-Match on the version it read: the second write finds it changed.
 */
describe('two sessions approved on one EHR order at once', () => {
  let behind: ServiceBehindProxy<TestService>;
  let service: TestService;
  beforeAll(async () => {
    behind = await startBehindProxy((fhirBaseUrl) => startTestService({ fhirBaseUrl }));
    service = behind.service;
  }, 60_000);
  afterAll(() => behind.stop());

  it('one approval lands; the other, whose write finds the order changed, is refused and says why', async () => {
    // A patient on two plans at once: each plans a first session.
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const other = await applyPlan(service, 'ketamine-monthly-maintenance', patient);
    const sessionOf = async (plan: string) =>
      (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${plan}` })).find((t) =>
        t.focus?.reference?.startsWith('MedicationRequest/'),
      )!;
    const sessions = [await sessionOf(carePlanId), await sessionOf(other.id!)];
    const [first, second] = sessions;
    const { ehrOrder } = await orderedInEhrFor(service, first);
    const onOrder = `MedicationRequest/${ehrOrder.id}`;
    const approve = (task: Task) =>
      request(service.url)
        .post(`/tasks/${task.id}/$approve`)
        .set(service.as('clinician'))
        .send({ versionId: task.meta!.versionId, onOrder });

    // The first approval's write is held at the FHIR server's door (its reads done) until the second has landed.
    const write = holdFirst(
      behind.proxy,
      (method, _path, body) => method === 'POST' && body.includes(`"url":"Task/${first.id}"`),
    );
    const firstAnswer = approve(first).then((res) => res);
    await write.reached;
    const secondAnswer = await approve(second);
    write.release();
    expect([secondAnswer.status, (await firstAnswer).status]).toEqual([200, 409]);
    expect((await firstAnswer).body.issue[0].details.text).toBe(
      'An order this decision writes to was changed since you loaded it (approved on for another session, or changed in the EHR); reload the task and decide again',
    );

    // One session approved on the order; the other still awaits a clinician, who is now told whose order it is.
    const now = await Promise.all(sessions.map((t) => service.fhir.read<Task>('Task', t.id!)));
    expect(now.map((t) => [t.status, ordersApprovedOn(t)])).toEqual([
      ['draft', []],
      ['ready', [onOrder]],
    ]);
    const again = await approve(now[0]);
    expect(again.status).toBe(409);
    expect(again.body.issue[0].details.text).toMatch(/is the order of another session of this patient/);
    // The order, tagged by the approval that landed, is still open to give.
    const order = await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!);
    expect([order.status, order.meta?.tag?.map((t) => t.code)]).toEqual(['active', ['session-order']]);
  });
});
