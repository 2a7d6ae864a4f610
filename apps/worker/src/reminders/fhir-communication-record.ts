import { Injectable } from '@nestjs/common';
import type { CommunicationRequest } from '@medplum/fhirtypes';
import { FhirClient, FhirVersionConflictError, updateEntry } from '@kc/fhir';
import { deliveredCommunication } from '@kc/followups';

/**
 * The channel every reminder goes out on, last: the FHIR record. A completed Communication (with the channels used)
 * and the request marked completed, in one transaction with If-Match on the request, so of two deliveries racing
 * one records and the other learns it was done.
 */
@Injectable()
export class FhirCommunicationRecord {
  constructor(private readonly fhir: FhirClient) {}

  /** `note`: what the clinic must know about this delivery (sent with short notice), on both resources. */
  async record(
    request: CommunicationRequest & { id: string },
    channels: string[],
    note?: string,
  ): Promise<'recorded' | 'already-done'> {
    const sent = new Date();
    const annotation = note ? { text: note, time: sent.toISOString() } : undefined;
    try {
      await this.fhir.transaction([
        {
          resource: deliveredCommunication({ request, sent, channels, note: annotation }),
          request: { method: 'POST', url: 'Communication' },
        },
        updateEntry(
          { ...request, status: 'completed', ...(annotation ? { note: [...(request.note ?? []), annotation] } : {}) },
          request.meta!.versionId,
        ),
      ]);
      return 'recorded';
    } catch (err) {
      if (err instanceof FhirVersionConflictError) return 'already-done';
      throw err;
    }
  }
}
