import type { Provenance, ProvenanceAgent, Reference } from '@medplum/fhirtypes';

const ACTIVITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-DataOperation';

/** Who changed what, when and why: one Provenance per decision on a Task, a clinician's or the service's own. */
export interface ChangeRecord {
  /** What the change wrote (updated or created). */
  targets: Reference[];
  /**
   * The version the change was made on. Targets written in the same transaction cannot name the version they are
   * about to get, so the changed version is named here (entity role `revision`), as FHIR intends.
   */
  revisionOf?: Reference;
  /** The author: a clinician (Practitioner), or the service itself for what it does on its own. */
  who: ProvenanceAgent['who'];
  /** What was done (`approve`, `withdraw`...). */
  activity: string;
  now: Date;
  reason?: string;
}

export function changeProvenance(record: ChangeRecord): Provenance {
  const { targets, who, activity, now, reason, revisionOf } = record;
  return {
    resourceType: 'Provenance',
    target: targets,
    recorded: now.toISOString(),
    occurredDateTime: now.toISOString(),
    activity: { coding: [{ system: ACTIVITY_SYSTEM, code: 'UPDATE', display: 'revise' }], text: activity },
    reason: reason ? [{ text: reason }] : undefined,
    entity: revisionOf ? [{ role: 'revision', what: revisionOf }] : undefined,
    agent: [
      {
        type: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }],
        },
        who,
      },
    ],
  };
}

/** The service as the author of what it does on its own (no clinician decided it). */
export const THIS_SERVICE: ProvenanceAgent['who'] = {
  identifier: { system: 'urn:ketamine-careplans:service', value: 'ketamine-careplans' },
  display: 'ketamine-careplans (automatic)',
};

/** The activity of an infusion's answers' Provenance (the Tasks and orders it answered): what an EHR reading it sees. */
export const ANSWERED_BY_AN_INFUSION = 'answer what an infusion gave';
