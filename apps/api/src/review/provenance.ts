import type { Provenance, ProvenanceAgent, Reference } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { changeProvenance } from '@kc/task-states';

/** Who decided what, when: one Provenance per clinician decision, naming what it changed and what it created. */
export interface DecisionRecord {
  /** What the decision changed and what it created. */
  targets: Reference[];
  /** The version the decision was taken on (entity role `revision`). */
  revisionOf?: Reference;
  caller: Caller;
  decision: string;
  now: Date;
  reason?: string;
}

export function decisionProvenance(record: DecisionRecord): Provenance {
  const { caller, decision, ...rest } = record;
  return changeProvenance({ ...rest, activity: decision, who: deciderOf(caller) });
}

/** The clinician as a Provenance names them: their FHIR user, else the token's subject. */
export function deciderOf(caller: Caller): ProvenanceAgent['who'] {
  return caller.fhirUser
    ? { reference: caller.fhirUser, display: caller.display }
    : { identifier: { system: 'urn:ketamine-careplans:token-subject', value: caller.id }, display: caller.display };
}
