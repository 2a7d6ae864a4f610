import type { ActivityDefinition } from '@medplum/fhirtypes';

/**
 * Canonical URLs and code systems of this service (see docs/domain-model.md). Identifiers, not clinical
 * numbers: the numbers live in fhir-profiles/.
 */
export const CANONICAL_BASE = 'https://ketamine-careplans.example/fhir';
export const SERVICE_CODE_SYSTEM = `${CANONICAL_BASE}/CodeSystem/ketamine-careplans`;
export const TASK_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/task-key`;
/** Tags a decision's Provenance with the version decided on (`Task/<id>/_history/<version>`): one decision per version. */
export const DECISION_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/decision-key`;

/** The DECISION_KEY_SYSTEM code of a decision on a version (`Task/<id>/_history/<version>`): one decision per version. */
export function decisionKey(reference: string, versionId: string): string {
  return `${reference}/_history/${versionId}`;
}
export const PROTOCOL_WINDOW_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/protocol-window`;
export const PROTOCOL_ACTION_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/protocol-action`;
/** The treatment phase (induction, maintenance) a Task belongs to (fhir-profiles/StructureDefinition-protocol-phase.json). */
export const PROTOCOL_PHASE_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/protocol-phase`;
/** The phase codes of SERVICE_CODE_SYSTEM: a protocol action carries one among its codes when it plans a phase's infusion. */
export const PHASE_CODES = ['induction', 'maintenance'] as const;
/** Moves a proposed booster by the patient's scores (fhir-profiles/StructureDefinition-outcome-driven-timing.json). */
export const OUTCOME_TIMING_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/outcome-driven-timing`;
/** Marks an applicability condition as a contraindication check (fhir-profiles/StructureDefinition-contraindication.json). */
export const CONTRAINDICATION_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/contraindication`;

/** The TriggerDefinition name that marks follow-up rules in a PlanDefinition. */
export const INFUSION_COMPLETED_TRIGGER = 'infusion-completed';
/**
 * The TriggerDefinition name that marks patient reminders: instantiated when a clinician approves a Task of the
 * action the reminder's relatedAction names, never at $apply.
 */
export const TASK_APPROVED_TRIGGER = 'task-approved';
/** Identifies a reminder (CommunicationRequest) by the Task it follows and its action: one per Task and action. */
export const REMINDER_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/reminder-key`;

/** Deterministic Task key: the same CarePlan, trigger and action always give the same key. */
export function taskKey(carePlanId: string, triggerId: string, actionId: string): string {
  // No "|" inside: FHIR token search splits system|value on it, and some servers split on the last one.
  return `${carePlanId}:${triggerId}:${actionId}`;
}
/** The least notice a reminder's instruction needs (fhir-profiles/StructureDefinition-minimum-notice.json). */
export const MINIMUM_NOTICE_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/minimum-notice`;
/**
 * On an approved session's order's note: the rate per kg its protocol proposes from the pump's record of the last
 * session, written after the approval (fhir-profiles/StructureDefinition-rate-given-since-approval.json).
 */
export const RATE_SINCE_APPROVAL_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/rate-given-since-approval`;
/** Tags each access AuditEvent with its own key: a batch written twice (its answer lost) can be told apart. */
export const AUDIT_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/audit-key`;

/** CPG: the Questionnaire an information-collecting activity is done with (on the ActivityDefinition). */
export const COLLECT_WITH_EXTENSION = 'http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-collectWith';
/**
 * CPG's activity type of an information-collecting Task: its `input` names the Questionnaire (valueCanonical) and its
 * `output` the answers (cpg-questionnairetask), so any form filler knows what to ask.
 */
export const CPG_ACTIVITY_TYPE_SYSTEM = 'http://hl7.org/fhir/uv/cpg/CodeSystem/cpg-activity-type';
export const COLLECT_INFORMATION = 'collect-information';

/** A definition's canonical as others name it: `url|version`, or its url alone when it has no version. */
export function canonicalOf(definition: { url?: string; version?: string }): string | undefined {
  if (!definition.url) return undefined;
  return definition.version ? `${definition.url}|${definition.version}` : definition.url;
}

/** The Questionnaire (url|version) an ActivityDefinition's cpg-collectWith names, if any. */
export function collectWithOf(activity: ActivityDefinition | undefined): string | undefined {
  return activity?.extension?.find((e) => e.url === COLLECT_WITH_EXTENSION)?.valueCanonical;
}
