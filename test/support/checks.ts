import request from 'supertest';
import type { MedicationRequest, QuestionnaireResponse, Task } from '@medplum/fhirtypes';
import { orderKeySearch } from '@kc/task-states';
import { actionOf, completeInfusion, enrolPatient, reportInfusion } from './clinic';
import { score } from './clinician';
import type { TestService } from './test-service';

const DAY = 86_400_000;

export const SERVICE_CODES = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';

/**
 * A whole post-infusion check's answers (fhir-profiles' Questionnaire), as a QuestionnaireResponse: pain now, the
 * PEG-3 items in their group (7, 6, 6 unless given), the effects reported (service codes), and a note when given.
 */
export function checkAnswers(
  pain: number,
  effects: string[],
  options: { peg?: [number, number, number]; note?: string } = {},
): QuestionnaireResponse {
  const [average, enjoyment, activity] = options.peg ?? [7, 6, 6];
  return {
    resourceType: 'QuestionnaireResponse',
    status: 'completed',
    item: [
      { linkId: 'pain-now', answer: [{ valueInteger: pain }] },
      {
        linkId: 'peg',
        item: [
          { linkId: 'peg-average-pain', answer: [{ valueInteger: average }] },
          { linkId: 'peg-enjoyment-of-life', answer: [{ valueInteger: enjoyment }] },
          { linkId: 'peg-general-activity', answer: [{ valueInteger: activity }] },
        ],
      },
      { linkId: 'effects', answer: effects.map((code) => ({ valueCoding: { system: SERVICE_CODES, code } })) },
      ...(options.note ? [{ linkId: 'note', answer: [{ valueString: options.note }] }] : []),
    ],
  };
}

/**
 * A high-dose patient (pain 8 before), infused two days ago: their check awaiting approval, the booster and the next
 * session the infusion proposed.
 */
export async function infusedForCheck(service: TestService) {
  const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
  const enrolment = await enrolPatient(service, 'ketamine-high-dose-as-needed', {
    startDate: iso(10 * DAY).slice(0, 10),
  });
  await score(service, enrolment.patient, '72514-3', 8, iso(20 * DAY));
  const procedureId = await completeInfusion(service, enrolment, iso(2 * DAY));
  await reportInfusion(service, procedureId);
  const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
  const check = tasks.find((t) => actionOf(t) === 'post-infusion-check' && t.status === 'draft');
  const booster = tasks.find((t) => actionOf(t) === 'maintenance-booster');
  const session = tasks.find((t) => actionOf(t) === 'next-induction-session');
  if (!check || !booster || !session) throw new Error('the infusion left no check, booster or next session');
  return { ...enrolment, procedureId, check, booster, session };
}

/** The next session of an infused patient approved by a clinician (through the API): its order, active. */
export async function approvedSessionOrder(service: TestService, session: Task): Promise<MedicationRequest> {
  await request(service.url)
    .post(`/tasks/${session.id}/$approve`)
    .set(service.as('clinician'))
    .send({ versionId: session.meta!.versionId })
    .expect(200);
  const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
    identifier: orderKeySearch(session.id!),
  });
  return order;
}
