import type { ActivityDefinition, MedicationRequest, Reference, Task } from '@medplum/fhirtypes';
import {
  dosageAtRate,
  orderedRatePerKg,
  rateGiven,
  rateTitrationOf,
  rateToPropose,
  weightForTitration,
  type LastGiven,
  type ProtocolVariables,
} from '@kc/protocols';
import { isAwaitingApproval } from '@kc/task-states';

/** A session awaiting approval proposed again at the rate its infusion was given, as recorded since. */
export interface RateReproposal {
  proposal: MedicationRequest;
  reproposed: MedicationRequest;
  /** Why, in words: the rate given and the one it was proposed at before. */
  reason: string;
}

/**
 * A session proposed after an infusion is proposed at the rate that infusion was given at the pump (buildRequest). An
 * eMAR often records the administrations after the Procedure, so after the follow-ups were written: the proposal then
 * carries the order's rate. Judged again from the infusion as now recorded (`given`, infusionAsGiven), the same rule
 * gives the rate to propose; when it differs from the proposal's (or names another administration), the proposal's
 * dosage is computed again at it, from the patient's data now, naming the administration it was read from.
 *
 * Only a session still awaiting approval (an approved one's order is the clinician's: $change-dose), only an infusion
 * with administrations of its drug on record or a proposal naming one (taken back since: entered in error, so the
 * order's rate again), and only when the dose can be computed (a body weight on record). Pure: the worker reads the proposal, its ActivityDefinition, the
 * infusion's administrations and the patient's data.
 */
export function reproposedAtRateGiven(input: {
  task: Task;
  proposal: MedicationRequest;
  activity: ActivityDefinition | undefined;
  given: LastGiven | undefined;
  variables: ProtocolVariables;
}): RateReproposal | undefined {
  const { task, proposal, activity, given, variables } = input;
  const titration = rateTitrationOf(activity);
  if (!titration || !activity || !isAwaitingApproval(task) || proposal.status !== 'draft') return undefined;
  // Nothing recorded at the pump, and the proposal named nothing from it: the order's rate stands as proposed.
  const namedBefore = administrationsNamed(proposal);
  if (!given || (!given.administrations?.length && !namedBefore.length)) return undefined;
  const last = rateGiven(given, titration.unit, weightForTitration(titration, variables)?.kg);
  const rate = rateToPropose(titration, last?.ratePerKg);
  const givenAt = last?.reference && rate === last.ratePerKg ? last.reference : undefined;
  const proposedAt = orderedRatePerKg(proposal, titration.unit);
  if (rate === proposedAt && sameReferences(namedBefore, givenAt ? [givenAt] : [])) return undefined;
  const { dosageInstruction, unresolved } = dosageAtRate(activity, rate, variables, proposal.dosageInstruction);
  if (unresolved.length) return undefined;
  const others = (proposal.supportingInformation ?? []).filter((r) => !isAdministration(r));
  const supportingInformation = [...others, ...(givenAt ? [givenAt] : [])];
  const reproposed: MedicationRequest = {
    ...proposal,
    dosageInstruction,
    supportingInformation: supportingInformation.length ? supportingInformation : undefined,
  };
  const before = proposedAt === undefined ? '' : `; proposed at ${proposedAt} ${titration.unit} before`;
  const reason = givenAt
    ? `Proposed at the rate the last session was given, recorded since: ${givenAt.display ?? `${rate} ${titration.unit}`}${before}`
    : `Proposed at ${rate} ${titration.unit}: the administration it was proposed from is no longer on record as given${before}`;
  return { proposal, reproposed, reason };
}

function isAdministration(ref: Reference): boolean {
  return Boolean(ref.reference?.startsWith('MedicationAdministration/'));
}

function administrationsNamed(proposal: MedicationRequest): Reference[] {
  return (proposal.supportingInformation ?? []).filter(isAdministration);
}

function sameReferences(a: Reference[], b: Reference[]): boolean {
  return a.length === b.length && a.every((r, i) => r.reference === b[i].reference && r.display === b[i].display);
}
