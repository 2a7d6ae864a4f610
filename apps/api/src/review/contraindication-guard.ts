import { Injectable } from '@nestjs/common';
import type { DetectedIssue } from '@medplum/fhirtypes';
import { unprocessable } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { contraindicationState, heldOrdersOf, isReportedEffect, isUnreadAnswers } from '@kc/protocols';
import { contraindicationName } from '@kc/task-states';

/** Unresolved: not withdrawn and no clinician override (mitigation) on record. */
export function isUnresolved(issue: DetectedIssue): boolean {
  return contraindicationState(issue) === 'unresolved';
}

/**
 * The approval guard: while an unresolved contraindication implicates a plan, no decision that would authorise
 * care under it goes through ($approve, $bulk-approve, $reschedule, $activate): 422 naming each issue.
 */
@Injectable()
export class ContraindicationGuard {
  constructor(private readonly fhir: FhirClient) {}

  async unresolved(carePlan: string): Promise<DetectedIssue[]> {
    const issues = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: carePlan });
    return issues.filter(isUnresolved);
  }

  async assertClear(carePlan: string | undefined): Promise<void> {
    if (!carePlan) return;
    assertNoneUnresolved(carePlan, await this.unresolved(carePlan));
  }
}

/**
 * The guard on issues already read (e.g. `_revinclude` with the Task): refused while any DetectedIssue implicating
 * the plan is unresolved.
 */
export function assertClearOf(carePlan: string | undefined, issues: DetectedIssue[]): void {
  if (!carePlan) return;
  assertNoneUnresolved(carePlan, implicating(issues, carePlan).filter(isUnresolved));
}

/** The DetectedIssues that implicate a plan (`CarePlan/<id>`). */
export function implicating(issues: DetectedIssue[], carePlan: string): DetectedIssue[] {
  return issues.filter((i) => i.implicated?.some((r) => r.reference === carePlan));
}

/**
 * 422 naming each unresolved contraindication: in words for the clinician (details.text, what the page shows), by
 * reference for the integrator (expression, and diagnostics with the call that overrides one).
 */
function assertNoneUnresolved(carePlan: string, open: DetectedIssue[]): void {
  if (!open.length) return;
  throw unprocessable(
    [
      blockedBy(open.filter((i) => !isReportedEffect(i))),
      waitingForReview(open.filter(isReportedEffect)),
      ordersHeld(open),
    ]
      .filter(Boolean)
      .join(' '),
    open.map((i) => `DetectedIssue/${i.id}`),
    `${carePlan}: ${open
      .map((i) => `DetectedIssue/${i.id} (${i.code?.coding?.[0]?.code ?? contraindicationName(i)})`)
      .join('; ')}; override one with POST /detected-issues/{id}/$override`,
  );
}

function blockedBy(contraindications: DetectedIssue[]): string {
  if (!contraindications.length) return '';
  const named = contraindications.map(contraindicationName).join('; ');
  return contraindications.length === 1
    ? `Blocked by an unresolved contraindication on this care plan: ${named}. A clinician may override it with a reason.`
    : `Blocked by ${contraindications.length} unresolved contraindications on this care plan: ${named}. A clinician may override each with a reason.`;
}

/** The orders approved before that these issues hold (a hold adds them to `implicated`), said once. */
function ordersHeld(open: DetectedIssue[]): string {
  const held = new Set(open.flatMap(heldOrdersOf));
  if (!held.size) return '';
  return held.size === 1
    ? 'An order approved before under this care plan is on hold until then.'
    : `${held.size} orders approved before under this care plan are on hold until then.`;
}

/**
 * Effects reported at a check, or a check whose answers could not be read here: the same guard, in the words of a
 * review (its override records what was decided).
 */
function waitingForReview(effects: DetectedIssue[]): string {
  if (!effects.length) return '';
  const reported = effects.filter((i) => !isUnreadAnswers(i));
  const unread = effects.filter(isUnreadAnswers);
  return [
    reported.length
      ? `Waiting for a clinician's review of what the patient reported: ${reported.map(contraindicationName).join('; ')}.`
      : '',
    unread.length
      ? `Waiting for a clinician to read in the EHR the answers that could not be read here: ${unread.map(contraindicationName).join('; ')}.`
      : '',
    'A clinician reviews it by overriding it, saying what was decided.',
  ]
    .filter(Boolean)
    .join(' ');
}
