import { Injectable } from '@nestjs/common';
import type { MedicationAdministration } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { CrossedClosings } from './crossed-closings.service';
import { LateAdministrations } from './late-administrations.service';

/**
 * An administration recorded at the pump (notified, or found by the poll), read once for what depends on it: first a
 * closing of its order by this service that crossed it is undone (CrossedClosings), then the sessions proposed from
 * its infusion are proposed again at the rate it records, or their orders noted when approved (LateAdministrations).
 */
@Injectable()
export class AdministrationRecorded {
  constructor(
    private readonly fhir: FhirClient,
    private readonly crossedClosings: CrossedClosings,
    private readonly lateAdministrations: LateAdministrations,
  ) {}

  async heard(
    administrationId: string,
    now = new Date(),
  ): Promise<{ undone: number; reproposed: number; noted: number }> {
    const administration = await this.fhir.readIfExists<MedicationAdministration>(
      'MedicationAdministration',
      administrationId,
    );
    const crossed = await this.crossedClosings.ofAdministration(administration, now);
    return { ...crossed, ...(await this.lateAdministrations.forAdministration(administration, now)) };
  }
}
