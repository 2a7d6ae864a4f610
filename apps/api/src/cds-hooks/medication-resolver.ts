import { Injectable } from '@nestjs/common';
import type { Bundle, Medication } from '@medplum/fhirtypes';
import { isResourceId } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { unresolvedMedicationOrders, type ResolvedMedications } from './ketamine-orders';

/**
 * The Medications draft orders name without sending them (`Medication/123`), read from the configured FHIR server:
 * an EHR's order names a Medication more often than it codes the drug inline, and an order that is not recognised as
 * ketamine is not checked. A reference to another server cannot be read here (fhirServer is not used; see README).
 */
@Injectable()
export class MedicationResolver {
  constructor(private readonly fhir: FhirClient) {}

  async resolve(draftOrders: Bundle | undefined): Promise<ResolvedMedications> {
    const refs = new Set(
      unresolvedMedicationOrders(draftOrders).flatMap((o) => o.medicationReference?.reference ?? []),
    );
    const read = await Promise.all(
      [...refs].map(async (ref): Promise<[string, Medication][]> => {
        const id = this.localId(ref);
        const medication = id ? await this.fhir.readIfExists<Medication>('Medication', id) : undefined;
        return medication ? [[ref, medication]] : [];
      }),
    );
    return new Map(read.flat());
  }

  /** The id of `Medication/123`, or of the same under this service's FHIR base URL; nothing else is read. */
  private localId(ref: string): string | undefined {
    const relative = ref.startsWith(`${this.fhir.baseUrl}/`) ? ref.slice(this.fhir.baseUrl.length + 1) : ref;
    const [type, id, ...rest] = relative.split('/');
    return type === 'Medication' && !rest.length && isResourceId(id) ? id : undefined;
  }
}
