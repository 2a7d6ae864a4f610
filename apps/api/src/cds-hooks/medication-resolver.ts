import { Injectable } from '@nestjs/common';
import type { Bundle, Medication } from '@medplum/fhirtypes';
import { isResourceId } from '@kc/common';
import type { FhirClient } from '@kc/fhir';
import type { CdsRequest } from './cds-types';
import { EhrFhirServer, readFailure } from './ehr-fhir-server';
import { unresolvedMedicationOrders, type ResolvedMedications } from './ketamine-orders';

/**
 * The Medications draft orders name without sending them (`Medication/123`): an EHR's order names a Medication more
 * often than it codes the drug inline, and an order that is not recognised as ketamine is not checked. Read from the
 * EHR's fhirServer when the deployment trusts it (a relative reference is relative to it), else from the configured
 * FHIR server; a reference to any other server cannot be read.
 */
@Injectable()
export class MedicationResolver {
  constructor(private readonly servers: EhrFhirServer) {}

  async resolve(
    draftOrders: Bundle | undefined,
    request: CdsRequest,
    budget: AbortSignal,
  ): Promise<ResolvedMedications> {
    const refs = new Set(
      unresolvedMedicationOrders(draftOrders).flatMap((o) => o.medicationReference?.reference ?? []),
    );
    if (!refs.size) return new Map();
    const { ehr, own } = this.servers.clientsFor(request, budget);
    const read = await Promise.all(
      [...refs].map(async (ref): Promise<[string, Medication][]> => {
        const where = medicationOn(ref, ehr) ?? (ehr !== own ? medicationOn(ref, own) : undefined);
        // A server that does not answer (in time) leaves it unresolved: the order's card says the check did not run.
        const medication = where && (await readOrNothing(where.fhir, where.id));
        return medication ? [[ref, medication]] : [];
      }),
    );
    return new Map(read.flat());
  }
}

/** The server and id of `Medication/123` (relative: this server), or of the same under this server's base URL. */
function medicationOn(ref: string, fhir: FhirClient): { fhir: FhirClient; id: string } | undefined {
  const absolute = /^https?:\/\//.test(ref);
  if (absolute && !ref.startsWith(`${fhir.baseUrl}/`)) return undefined;
  const [type, id, ...rest] = (absolute ? ref.slice(fhir.baseUrl.length + 1) : ref).split('/');
  return type === 'Medication' && !rest.length && isResourceId(id) ? { fhir, id } : undefined;
}

async function readOrNothing(fhir: FhirClient, id: string): Promise<Medication | undefined> {
  try {
    return await fhir.readIfExists<Medication>('Medication', id);
  } catch (err) {
    if (readFailure(err)) return undefined;
    throw err;
  }
}
