import request from 'supertest';
import type { MedicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import { administrationOf } from '../fixtures/orders';
import { actionOf, completeInfusion, enrolPatient, followUpTasks, reportInfusion } from '../support/clinic';
import { InfusionsInError } from '../../apps/worker/src/maintenance/infusions-in-error';
import { startTestService, type TestService } from '../support/test-service';
import { orderKeySearch } from '@kc/task-states';

describe('explore', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());
  const approve = async (t: Task) => {
    const fresh = await service.fhir.read<Task>('Task', t.id!);
    await request(service.url).post(`/tasks/${t.id}/$approve`).set(service.as('clinician')).send({ versionId: fresh.meta!.versionId }).expect(200);
    return (await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(t.id!) }))[0];
  };
  it('late pump record after the infusion follow-up, then the infusion in error', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const first = (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` })).find((t) => actionOf(t) === 'infusion-session')!;
    await approve(first);
    const a = await completeInfusion(service, enrolment, '2027-01-02T02:00:00.000Z');
    await reportInfusion(service, a);
    const s = (await followUpTasks(service, a)).find((t) => actionOf(t) === 'next-induction-session')!;
    console.log('S window', JSON.stringify(s.restriction));
    const order = await approve(s);
    const x = await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z');
    console.log('X outcome', JSON.stringify(await reportInfusion(service, x)));
    console.log('S after X', (await service.fhir.read<Task>('Task', s.id!)).status, (await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status);
    await service.fhir.create(administrationOf(order, 'completed', { start: '2027-01-07T09:00:00.000Z', end: '2027-01-07T09:59:00.000Z' }));
    const p = await service.fhir.read<Procedure>('Procedure', x);
    await service.fhir.update<Procedure>({ ...p, status: 'entered-in-error' });
    console.log('in error', JSON.stringify(await service.app.get(InfusionsInError).heard(x)));
    console.log('S after in error', (await service.fhir.read<Task>('Task', s.id!)).status, (await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status);
  });
});
