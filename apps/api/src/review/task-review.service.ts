import { Injectable, Logger } from '@nestjs/common';
import type { Provenance, Reference, Resource } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, notFound, OutcomeException, unprocessable } from '@kc/common';
import { FhirClient, FhirNotFoundError, FhirVersionConflictError } from '@kc/fhir';
import { CANONICAL_BASE } from '@kc/protocols';
import { InvalidTransition } from '@kc/task-states';
import { decisionProvenance } from './provenance';
import { DecisionRefused } from './task-decisions';

const PROVENANCE_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/decision-key`;

export interface DecisionWrite<T extends Resource> {
  current: T;
  /** The version the clinician decided on (If-Match). */
  seenVersion: string;
  caller: Caller;
  /** What the Provenance calls it (approve, reject, override, ...). */
  decision: string;
  change: (current: T) => T;
  reason?: string;
  /**
   * Writes that follow from the decision, done after it (an order created, a proposal cancelled); each returns
   * the reference of what it wrote, which the Provenance lists as a target too.
   */
  consequences?: ((written: T) => Promise<Reference | undefined>)[];
}

/**
 * Applies a clinician's decision to a resource with optimistic concurrency: the client says which version it
 * saw, the write carries If-Match, so of two clinicians acting at once exactly one wins and the other is told.
 * Its consequences and then the Provenance are written right after, each keyed so that a retry writes it once.
 */
@Injectable()
export class DecisionWriter {
  private readonly logger = new Logger(DecisionWriter.name);

  constructor(private readonly fhir: FhirClient) {}

  async read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T> {
    try {
      return (await this.fhir.read<Resource>(resourceType, id)) as T;
    } catch (err) {
      if (err instanceof FhirNotFoundError) throw notFound(`${resourceType}/${id} not found`);
      throw err;
    }
  }

  async write<T extends Resource>(input: DecisionWrite<T>): Promise<T> {
    const { current, seenVersion, caller, decision } = input;
    const ref = `${current.resourceType}/${current.id}`;
    if (current.meta?.versionId !== seenVersion) {
      throw new OutcomeException(
        412,
        'conflict',
        `${ref} has changed since version ${seenVersion} (now ${current.meta?.versionId}); reload it and decide again`,
      );
    }
    const updated = decide(input.change, current);
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
    const targets: Reference[] = [{ reference: `${ref}/_history/${written.meta?.versionId}` }];
    for (const consequence of input.consequences ?? []) {
      const target = await consequence(written);
      if (target) targets.push(target);
    }
    await this.provenance(targets, caller, decision, input.reason);
    this.logger.log({ msg: 'decision recorded', decision, resource: ref, by: caller.id });
    return written;
  }

  /** Keyed by the version it records, so a retried write cannot record the decision twice. */
  private async provenance(targets: Reference[], caller: Caller, decision: string, reason?: string): Promise<void> {
    const key = targets[0].reference!;
    const provenance: Provenance = decisionProvenance({
      targets,
      caller,
      decision,
      now: new Date(),
      reason,
    });
    await this.fhir.create(
      { ...provenance, meta: { tag: [{ system: PROVENANCE_KEY_SYSTEM, code: key }] } },
      { ifNoneExist: { _tag: `${PROVENANCE_KEY_SYSTEM}|${key}` } },
    );
  }
}

function decide<T>(change: (current: T) => T, current: T): T {
  try {
    return change(current);
  } catch (err) {
    if (err instanceof InvalidTransition) throw conflict(err.message);
    if (err instanceof DecisionRefused) throw unprocessable(err.message);
    throw err;
  }
}
