import { Injectable, Logger } from '@nestjs/common';
import type { Provenance, Reference, Resource } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, notFound, OutcomeException, unprocessable } from '@kc/common';
import { FhirClient, FhirNotFoundError, FhirVersionConflictError } from '@kc/fhir';
import { CANONICAL_BASE } from '@kc/protocols';
import { decisionProvenance } from './provenance';
import { DecisionRefused } from './task-decisions';

const PROVENANCE_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/decision-key`;

/**
 * Applies a clinician's decision to a resource with optimistic concurrency: the client says which version it
 * saw, the write carries If-Match, so of two clinicians acting at once exactly one wins and the other is told.
 * The Provenance is written right after, keyed by the version it records so that a retry writes it once.
 */
@Injectable()
export class DecisionWriter {
  private readonly logger = new Logger(DecisionWriter.name);

  constructor(private readonly fhir: FhirClient) {}

  async read<T extends Resource>(resourceType: 'Task' | 'CarePlan', id: string): Promise<T> {
    try {
      return (await this.fhir.read<Resource>(resourceType, id)) as T;
    } catch (err) {
      if (err instanceof FhirNotFoundError) throw notFound(`${resourceType}/${id} not found`);
      throw err;
    }
  }

  async write<T extends Resource>(
    current: T,
    seenVersion: string,
    caller: Caller,
    decision: string,
    change: (current: T) => T,
    reason?: string,
    extra: Resource[] = [],
  ): Promise<T> {
    const ref = `${current.resourceType}/${current.id}`;
    if (current.meta?.versionId !== seenVersion) {
      throw new OutcomeException(
        412,
        'conflict',
        `${ref} has changed since version ${seenVersion} (now ${current.meta?.versionId}); reload it and decide again`,
      );
    }
    let updated: T;
    try {
      updated = change(current);
    } catch (err) {
      if (err instanceof DecisionRefused)
        throw err.kind === 'outside-window' || err.kind === 'invalid'
          ? unprocessable(err.message)
          : conflict(err.message);
      throw err;
    }
    let written: T;
    try {
      // A plain conditional update: every server honours If-Match there (not all do inside transactions).
      written = await this.fhir.update(updated, { ifMatch: seenVersion });
    } catch (err) {
      if (err instanceof FhirVersionConflictError)
        throw new OutcomeException(
          err.status,
          'conflict',
          `${ref} was changed by someone else at the same time; reload it and decide again`,
        );
      throw err;
    }
    for (const resource of extra) await this.fhir.update(resource);
    // Keyed by the version it records, so a retried write cannot record the decision twice.
    const target = { reference: `${ref}/_history/${written.meta?.versionId}` };
    const provenance: Provenance = {
      ...decisionProvenance(target, caller, decision, new Date(), reason),
      id: undefined,
    };
    const key = `${ref}/_history/${written.meta?.versionId}`;
    await this.fhir.create(
      { ...provenance, meta: { tag: [{ system: PROVENANCE_KEY_SYSTEM, code: key }] } },
      { ifNoneExist: { _tag: `${PROVENANCE_KEY_SYSTEM}|${key}` } },
    );
    this.logger.log({ msg: 'decision recorded', decision, resource: ref, by: caller.id });
    return written;
  }
}

export type { Reference };
