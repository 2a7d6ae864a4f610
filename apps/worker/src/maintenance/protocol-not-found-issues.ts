import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, DetectedIssue } from '@medplum/fhirtypes';
import { FhirClient, isStaleWrite, updateEntry } from '@kc/fhir';
import {
  contraindicationState,
  isProtocolNotFound,
  PROTOCOL_NOT_FOUND_KEY_SYSTEM,
  protocolNotFoundIssue,
  reopenedProtocolNotFound,
  resolvedProtocolNotFound,
} from '@kc/protocols';
import { changeProvenance, THIS_SERVICE } from '@kc/task-states';

/**
 * The issue that holds a plan's approved orders while its protocol is nowhere to be read (protocol-not-found.ts):
 * recorded by the sweep when it cannot check such a plan, resolved by it once the protocol is found again. A change
 * made meanwhile (a clinician's override) wins: nothing is written, and the next sweep looks again.
 */
@Injectable()
export class ProtocolNotFoundIssues {
  private readonly logger = new Logger(ProtocolNotFoundIssues.name);

  constructor(private readonly fhir: FhirClient) {}

  /**
   * The plan's issue, unresolved (and whether this wrote it): recorded once (a conditional create on its key), or
   * reopened when it was resolved before. Undefined when a clinician overrode it: their decision stands for the orders
   * it held.
   */
  async record(
    input: { carePlan: CarePlan; patientId: string; canonical: string; issues: DetectedIssue[] },
    now: Date,
  ): Promise<{ issue: DetectedIssue; created: boolean } | undefined> {
    const carePlan = `CarePlan/${input.carePlan.id}`;
    const onRecord = input.issues.find(isProtocolNotFound);
    const { resource: issue, created } = onRecord
      ? { resource: onRecord, created: false }
      : await this.fhir.create(
          protocolNotFoundIssue({
            carePlan,
            patient: { reference: `Patient/${input.patientId}` },
            canonical: input.canonical,
            identified: now.toISOString(),
          }),
          { ifNoneExist: { identifier: `${PROTOCOL_NOT_FOUND_KEY_SYSTEM}|${carePlan}` } },
        );
    if (created) this.logger.warn({ msg: 'protocol not found: approved orders to hold', carePlan: input.carePlan.id });
    const reopened = reopenedProtocolNotFound(issue, now.toISOString());
    if (!reopened) return contraindicationState(issue) === 'unresolved' ? { issue, created } : undefined;
    const written = await this.write(reopened, issue, now, {
      activity: 'protocol not found again',
      reason: 'The care plan’s protocol is not found again: its approved orders are held',
    });
    return written && { issue: written, created: false };
  }

  /** The plan's unresolved protocol-not-found issue resolved (its protocol is found again); the others as they are. */
  async resolveFound(issues: DetectedIssue[], now: Date): Promise<DetectedIssue[]> {
    return Promise.all(
      issues.map(async (issue) => {
        if (!isProtocolNotFound(issue) || contraindicationState(issue) !== 'unresolved') return issue;
        const resolved = await this.write(resolvedProtocolNotFound(issue, now.toISOString()), issue, now, {
          activity: 'protocol found again',
          reason: 'The care plan’s protocol is found again: its patient is checked against it as before',
        });
        return resolved ?? issue;
      }),
    );
  }

  /** The change with If-Match on the version read, and a Provenance naming this service; undefined on a conflict. */
  private async write(
    changed: DetectedIssue,
    read: DetectedIssue,
    now: Date,
    why: { activity: string; reason: string },
  ): Promise<DetectedIssue | undefined> {
    const provenance = changeProvenance({
      targets: [{ reference: `DetectedIssue/${read.id}` }],
      who: THIS_SERVICE,
      now,
      ...why,
    });
    try {
      const written = await this.fhir.transaction([
        updateEntry(changed, read.meta?.versionId),
        { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
      ]);
      return (written.entry?.[0]?.resource as DetectedIssue | undefined) ?? changed;
    } catch (err) {
      if (isStaleWrite(err)) return undefined;
      throw err;
    }
  }
}
