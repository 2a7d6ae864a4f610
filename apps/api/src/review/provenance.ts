import type { Provenance, Reference } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';

const ACTIVITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-DataOperation';

/** Who decided what, when: one Provenance per clinician decision, naming what it changed and what it created. */
export interface DecisionRecord {
  /** What the decision changed and what it created. */
  targets: Reference[];
  /**
   * The version the decision was taken on. Targets written in the same transaction cannot name the version they are
   * about to get, so the decided-on version is named here (entity role `revision`), as FHIR intends.
   */
  revisionOf?: Reference;
  caller: Caller;
  decision: string;
  now: Date;
  reason?: string;
}

export function decisionProvenance(record: DecisionRecord): Provenance {
  const { targets, caller, decision, now, reason, revisionOf } = record;
  return {
    resourceType: 'Provenance',
    target: targets,
    recorded: now.toISOString(),
    occurredDateTime: now.toISOString(),
    activity: { coding: [{ system: ACTIVITY_SYSTEM, code: 'UPDATE', display: 'revise' }], text: decision },
    reason: reason ? [{ text: reason }] : undefined,
    entity: revisionOf ? [{ role: 'revision', what: revisionOf }] : undefined,
    agent: [
      {
        type: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }],
        },
        who: caller.fhirUser
          ? { reference: caller.fhirUser, display: caller.display }
          : {
              identifier: { system: 'urn:ketamine-careplans:token-subject', value: caller.id },
              display: caller.display,
            },
      },
    ],
  };
}
