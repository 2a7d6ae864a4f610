import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import type { Bundle, BundleEntry, Provenance, Resource, ResourceType } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, notFound, OutcomeException, unprocessable } from '@kc/common';
import {
  CoalescedReads,
  CoalescedTransactions,
  FhirClient,
  FhirNotFoundError,
  FhirVersionConflictError,
  ifMatchFor,
  SharedFhirRequests,
  updateEntry,
  type SearchParams,
} from '@kc/fhir';
import { DECISION_KEY_SYSTEM, decisionKey } from '@kc/protocols';
import { cancelledProposal, InvalidTransition, type AuthorisableRequest } from '@kc/task-states';
import { decisionProvenance } from './provenance';
import { DecisionRefused } from './task-decisions';

/** A write that follows from a decision (an order created, a proposal cancelled): one transaction entry. */
export type Consequence = Pick<BundleEntry, 'resource' | 'request'> & {
  /** Its place in the transaction (urn:uuid), when the decision's own resource points at it; else one is given. */
  fullUrl?: string;
};

/**
 * A request a decision closes (a proposal or an order rejected, an order replaced by a dose change, one that crossed the
 * decision), with why, If-Match on the version read: a MedicationRequest `cancelled`, never given; a communication or
 * service `revoked`.
 */
export function cancelledEntry(request: AuthorisableRequest, reason: string): Consequence {
  return updateEntry(cancelledProposal(request, reason), request.meta?.versionId);
}

export interface DecisionWrite<T extends Resource> {
  current: T;
  /** The version the clinician decided on (If-Match). */
  seenVersion: string;
  caller: Caller;
  /** What the Provenance calls it (approve, reject, override, ...). */
  decision: string;
  change: (current: T) => T;
  /**
   * Whether the resource as it is now holds what this request asked for (the window, the reason, the owner). A
   * request on a version this caller already decided the same way is a retry only if it asks the same; asking for
   * something else there is a new decision on a stale version (412). Absent: the decision has nothing to tell apart.
   */
  asked?: (now: T) => boolean | Promise<boolean>;
  reason?: string;
  /** Writes that follow from the decision; they land with it or not at all, and the Provenance lists each. */
  consequences?: ((updated: T) => Consequence | Consequence[] | undefined)[];
  /** Told what the transaction wrote (its answer's entries, the decision's own first); not on a retry that finds it done. */
  written?: (entries: BundleEntry[]) => void;
}

/**
 * Applies a clinician's decision with optimistic concurrency (the client says which version it saw; the write
 * carries If-Match, so of two clinicians acting at once exactly one wins) and writes the decision, what follows from
 * it and its Provenance in ONE transaction: a crash or a lost connection leaves all of it or none of it. Medplum and
 * HAPI honour If-Match inside transactions; an If-Match update is not a conditional entry, so Medplum needs no
 * serializable isolation and no 8-entry limit applies. A retry of a decision that landed (the client never saw the
 * answer) is recognised by the Provenance keyed on the version decided on, and answered like the first time.
 */
@Injectable()
export class DecisionWriter {
  private readonly logger = new Logger(DecisionWriter.name);

  /**
   * Decisions taken at once share their requests: one batch of their reads, one transaction of their writes (each
   * decision's writes still all or nothing; CoalescedTransactions says how).
   */
  private readonly reads: CoalescedReads;
  private readonly transactions: CoalescedTransactions;

  constructor(
    private readonly fhir: FhirClient,
    shared: SharedFhirRequests,
  ) {
    this.reads = shared.reads('decisions', { maxBatch: 32, maxInFlight: 2 });
    this.transactions = shared.transactions('decisions', { maxBatch: 32, maxInFlight: 2 });
  }

  async read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T> {
    try {
      return await this.reads.read<T>(resourceType, id);
    } catch (err) {
      if (err instanceof FhirNotFoundError) throw notFound(`${resourceType}/${id} not found`);
      throw err;
    }
  }

  /** A search shared with the other decisions being taken (one batch of their reads). */
  search<T extends Resource>(resourceType: ResourceType, params: SearchParams): Promise<Bundle<T>> {
    return this.reads.search<T>(resourceType, params);
  }

  async write<T extends Resource>(input: DecisionWrite<T>): Promise<T> {
    const { current, seenVersion, caller, decision } = input;
    const ref = `${current.resourceType}/${current.id}`;
    if (current.meta?.versionId !== seenVersion) return this.alreadyDecided(input);
    const updated = decide(input.change, current);
    const subject = `urn:uuid:${randomUUID()}`;
    const followers = (input.consequences ?? [])
      .flatMap((consequence) => consequence(updated) ?? [])
      .map((c) => ({ ...c, fullUrl: c.fullUrl ?? `urn:uuid:${randomUUID()}` }));
    const key = decisionKey(ref, seenVersion);
    const provenance: Provenance = {
      ...decisionProvenance({
        targets: [{ reference: subject }, ...followers.map((f) => ({ reference: f.fullUrl }))],
        revisionOf: { reference: `${ref}/_history/${seenVersion}` },
        caller,
        decision,
        now: new Date(),
        reason: input.reason,
      }),
      meta: { tag: [{ system: DECISION_KEY_SYSTEM, code: key }] },
    };
    let answer;
    try {
      answer = await this.transactions.transaction([
        { fullUrl: subject, resource: updated, request: { method: 'PUT', url: ref, ifMatch: ifMatchFor(seenVersion) } },
        ...followers,
        { fullUrl: `urn:uuid:${randomUUID()}`, resource: provenance, request: { method: 'POST', url: 'Provenance' } },
      ]);
    } catch (err) {
      // Deleted on the FHIR server (an EHR) after it was read: a refusal of this decision alone, not a failure of the
      // request ($bulk-approve answers the others).
      if (err instanceof FhirNotFoundError) throw deletedSinceRead(current);
      if (!(err instanceof FhirVersionConflictError)) throw err;
      // Someone else changed it first, or this very decision landed and its answer was lost: tell them apart.
      const now = await this.read<T>(current.resourceType, current.id!);
      // Unchanged itself: what changed is a request the decision writes to with it (an order read with it).
      if (now.meta?.versionId === seenVersion) throw requestChangedSinceRead(now);
      return this.alreadyDecided(input, now);
    }
    this.logger.log({ msg: 'decision recorded', decision, resource: ref, by: caller.id });
    input.written?.(answer.entry ?? []);
    const written = answer.entry?.[0]?.resource as T | undefined;
    return written?.resourceType === current.resourceType ? written : this.read<T>(current.resourceType, current.id!);
  }

  /**
   * The resource is no longer at the version the clinician saw. When the change since is this same decision by this
   * same caller (its Provenance, keyed on that version, exists) asking the same (`asked`), the decision stands:
   * answer with the resource as it is now. Anything else is a conflict the clinician must look at.
   */
  private async alreadyDecided<T extends Resource>(input: DecisionWrite<T>, now: T = input.current): Promise<T> {
    const ref = `${now.resourceType}/${now.id}`;
    const [earlier] = await this.fhir.searchAll<Provenance>('Provenance', {
      _tag: `${DECISION_KEY_SYSTEM}|${decisionKey(ref, input.seenVersion)}`,
    });
    const retried = earlier && earlier.activity?.text === input.decision && agentIs(earlier, input.caller);
    if (retried && (await (input.asked?.(now) ?? true))) return now;
    throw new OutcomeException(
      412,
      'conflict',
      `${WHAT_CHANGED[now.resourceType] ?? 'This record'} has changed since you loaded it; reload it and decide again`,
      [ref],
      `${ref} is at version ${now.meta?.versionId}; the decision was taken on version ${input.seenVersion}`,
    );
  }
}

/** 404: the resource, or a request the decision changes with it, was deleted on the FHIR server since it was read. */
function deletedSinceRead(current: Resource): OutcomeException {
  const ref = `${current.resourceType}/${current.id}`;
  return new OutcomeException(
    404,
    'not-found',
    `${WHAT_CHANGED[current.resourceType] ?? 'This record'}, or a request the decision changes with it, was deleted on the FHIR server since you loaded it; reload the list`,
    [ref],
    `The transaction writing the decision on ${ref} was answered 404/410`,
  );
}

/** 409: the decision's own resource is as it was read, but a request it writes to with it changed meanwhile. */
function requestChangedSinceRead(current: Resource): OutcomeException {
  const ref = `${current.resourceType}/${current.id}`;
  return new OutcomeException(
    409,
    'conflict',
    'An order this decision writes to was changed since you loaded it (approved on for another session, or changed in the EHR); reload the task and decide again',
    [ref],
    `A request written with ${ref} in the decision's transaction was answered 409/412 (If-Match on the version read)`,
  );
}

/** A stale decision's subject, as the clinician who took it calls it (the reference goes to the integrator's fields). */
const WHAT_CHANGED: Partial<Record<string, string>> = {
  Task: 'This task',
  DetectedIssue: 'This contraindication',
  CarePlan: 'This care plan',
};

function agentIs(provenance: Provenance, caller: Caller): boolean {
  const who = provenance.agent?.[0]?.who;
  return caller.fhirUser ? who?.reference === caller.fhirUser : who?.identifier?.value === caller.id;
}

/** A decision's change of the resource, its refusals as HTTP answers (an invalid transition 409, a refusal 422). */
export function decide<T>(change: (current: T) => T, current: T): T {
  try {
    return change(current);
  } catch (err) {
    if (err instanceof InvalidTransition) throw conflict(err.message);
    if (err instanceof DecisionRefused) throw unprocessable(err.message);
    throw err;
  }
}
