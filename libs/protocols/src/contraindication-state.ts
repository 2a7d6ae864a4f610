import type { CarePlan, DetectedIssue } from '@medplum/fhirtypes';

const WITHDRAWN = new Set<string>(['cancelled', 'entered-in-error']);

/**
 * Where a contraindication (DetectedIssue) stands: withdrawn (cancelled or entered in error), overridden (a
 * clinician recorded a mitigation) or unresolved, which blocks every decision that would authorise care.
 */
export function contraindicationState(issue: DetectedIssue): 'withdrawn' | 'overridden' | 'unresolved' {
  if (WITHDRAWN.has(issue.status)) return 'withdrawn';
  return issue.mitigation?.length ? 'overridden' : 'unresolved';
}

/**
 * The plans (`CarePlan/<id>`) a contraindication no longer holds back: those it implicates, once it is withdrawn or
 * overridden (say by a clinician in the EHR, not through `$override`), whose holds may then be lifted. None while it
 * is unresolved.
 */
export function plansClearedBy(issue: DetectedIssue): string[] {
  return contraindicationState(issue) === 'unresolved' ? [] : plansImplicatedBy(issue);
}

/** The CarePlans an issue implicates (`CarePlan/<id>`), whatever its state. */
export function plansImplicatedBy(issue: DetectedIssue): string[] {
  return (issue.implicated ?? []).flatMap((r) => (/^CarePlan\/[^/]+$/.test(r.reference ?? '') ? [r.reference!] : []));
}

/** Contraindication codes a clinician overrode (mitigated DetectedIssues): the actions under them go ahead. */
export function overriddenContraindications(issues: DetectedIssue[]): Set<string> {
  return new Set(issues.filter((i) => i.mitigation?.length).flatMap((i) => (i.code?.coding ?? []).map((c) => c.code!)));
}

/** The CarePlan with every given Task reference listed once in its activity; undefined when all are listed. */
export function withListedActivities(carePlan: CarePlan, references: string[]): CarePlan | undefined {
  const listed = new Set((carePlan.activity ?? []).map((a) => a.reference?.reference));
  const unlisted = [...new Set(references)].filter((r) => r && !listed.has(r));
  if (!unlisted.length) return undefined;
  return {
    ...carePlan,
    activity: [...(carePlan.activity ?? []), ...unlisted.map((reference) => ({ reference: { reference } }))],
  };
}
