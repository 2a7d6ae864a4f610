import { Injectable } from '@nestjs/common';
import type { Patient, PlanDefinition } from '@medplum/fhirtypes';
import { FhirClient, FhirNotFoundError, searchEach } from '@kc/fhir';
import { patientDataQueries, type ProtocolVariables } from '@kc/protocols';

/** Fetches what a PlanDefinition's inputs ask for from the FHIR server: the I/O half of $apply. */
@Injectable()
export class PatientDataLoader {
  constructor(private readonly fhir: FhirClient) {}

  /** undefined when the patient does not exist on the server. */
  async patient(id: string): Promise<Patient | undefined> {
    try {
      return await this.fhir.read<Patient>('Patient', id);
    } catch (err) {
      if (err instanceof FhirNotFoundError) return undefined;
      throw err;
    }
  }

  async load(plan: PlanDefinition, patientId: string): Promise<ProtocolVariables> {
    return searchEach(this.fhir, patientDataQueries(plan, patientId));
  }
}
