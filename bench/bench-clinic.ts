import type { CarePlan, Parameters, Patient, Procedure } from '@medplum/fhirtypes';
import type { FhirClient } from '@kc/fhir';
import { bloodPressure, bodyWeight } from '../test/fixtures/patient-data';

export interface BenchEnrolment {
  patient: string;
  carePlanId: string;
}

/** Enrols `count` patients in the low-dose protocol through $apply (persisted). */
export async function enrolForBench(
  apiUrl: string,
  fhir: FhirClient,
  token: string,
  count: number,
): Promise<BenchEnrolment[]> {
  const enrolments: BenchEnrolment[] = [];
  for (let i = 0; i < count; i++) {
    const { resource } = await fhir.create<Patient>({ resourceType: 'Patient' });
    const patient = `Patient/${resource.id}`;
    await fhir.create(bodyWeight(60 + (i % 40), '2026-11-01T09:00:00Z', patient));
    await fhir.create(bloodPressure(120, 75, '2026-11-01T09:00:00Z', patient));
    const body: Parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'subject', valueString: patient },
        { name: 'startDate', valueDate: '2027-01-01' },
        { name: 'persist', valueBoolean: true },
      ],
    };
    const res = await fetch(`${apiUrl}/fhir/PlanDefinition/ketamine-low-dose-series/$apply`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    const out = (await res.json()) as Parameters;
    enrolments.push({
      patient,
      carePlanId: (out as unknown as CarePlan).id!,
    });
  }
  return enrolments;
}

export async function completeInfusionFor(fhir: FhirClient, enrolment: BenchEnrolment, i: number): Promise<string> {
  const end = new Date(Date.parse('2027-01-04T10:00:00Z') + i * 3600_000).toISOString();
  const { resource } = await fhir.create<Procedure>({
    resourceType: 'Procedure',
    status: 'completed',
    code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002' }] },
    subject: { reference: enrolment.patient },
    basedOn: [{ reference: `CarePlan/${enrolment.carePlanId}` }],
    performedPeriod: { start: end, end },
  });
  return resource.id!;
}
