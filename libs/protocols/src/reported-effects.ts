import type { Coding, DetectedIssue, Questionnaire, QuestionnaireResponseItem, Reference } from '@medplum/fhirtypes';
import { CANONICAL_BASE } from './canonical';
import { answersByLinkId, flattenItems } from './questionnaire-answers';

/** Marks an answer option as an effect a clinician reviews (fhir-profiles/StructureDefinition-effect-review.json). */
export const EFFECT_REVIEW_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/effect-review`;
/** Identifies the DetectedIssue of an effect reported at a check: `Task/<check id>:<effect code>`, one per check and effect. */
export const REPORTED_EFFECT_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/reported-effect-key`;

type Severity = NonNullable<DetectedIssue['severity']>;
const SEVERITIES: readonly string[] = ['high', 'moderate', 'low'] satisfies Severity[];

export interface ReportedEffect {
  effect: Coding;
  severity: Severity;
}

/** The effects among the answers that the Questionnaire marks for a clinician's review, each with its severity. */
export function effectsToReview(questionnaire: Questionnaire, answers: QuestionnaireResponseItem[]): ReportedEffect[] {
  const byLinkId = answersByLinkId(answers);
  return flattenItems(questionnaire.item ?? []).flatMap((item) =>
    (byLinkId.get(item.linkId) ?? []).flatMap((answer) => {
      const given = answer.valueCoding;
      const option = item.answerOption?.find(
        (o) => o.valueCoding?.system === given?.system && o.valueCoding?.code === given?.code,
      );
      const severity = option?.extension?.find((e) => e.url === EFFECT_REVIEW_EXTENSION)?.valueCode;
      return given && severity && SEVERITIES.includes(severity)
        ? [{ effect: option.valueCoding!, severity: severity as Severity }]
        : [];
    }),
  );
}

export interface ReportedAt {
  /** The check Task the effect was reported at (`Task/<id>`): with the effect, the issue's key. */
  check: string;
  patient: NonNullable<DetectedIssue['patient']>;
  /** The plan whose next infusions wait for the review (`CarePlan/<id>`). */
  carePlan: string;
  /** When the answers were given. */
  identified: string;
  /** The answers (the QuestionnaireResponse, a urn:uuid inside the transaction that writes both). */
  response: Reference;
  author?: DetectedIssue['author'];
}

/**
 * An effect reported at a check, as an EHR reads an issue with the patient's care: a DetectedIssue implicating the
 * plan, unresolved (no mitigation) until a clinician overrides it with what was decided. The approval guard, the
 * order holds and the worklist treat it as they treat a contraindication: the plan's infusions wait for the review.
 */
export function reportedEffectIssue({ effect, severity }: ReportedEffect, at: ReportedAt): DetectedIssue {
  const name = effect.display ?? effect.code ?? 'An effect';
  return {
    resourceType: 'DetectedIssue',
    identifier: [{ system: REPORTED_EFFECT_KEY_SYSTEM, value: `${at.check}:${effect.code}` }],
    status: 'preliminary',
    code: { coding: [effect], text: `${name} reported after an infusion` },
    severity,
    patient: at.patient,
    identifiedDateTime: at.identified,
    ...(at.author ? { author: at.author } : {}),
    implicated: [{ reference: at.carePlan }],
    evidence: [{ detail: [at.response] }],
    detail:
      `${name} was reported at the post-infusion check. The plan's next infusions are not approved, and its ` +
      'approved orders are held, until a clinician reviews it and overrides it with what was decided.',
  };
}

/** An issue recorded for an effect reported at this check (`Task/<id>`). */
export function isReportedAt(issue: DetectedIssue, check: string): boolean {
  return Boolean(
    issue.identifier?.some((i) => i.system === REPORTED_EFFECT_KEY_SYSTEM && i.value?.startsWith(`${check}:`)),
  );
}

/** An issue recorded for an effect reported at a check (not a contraindication found in the patient's data). */
export function isReportedEffect(issue: DetectedIssue): boolean {
  return Boolean(issue.identifier?.some((i) => i.system === REPORTED_EFFECT_KEY_SYSTEM));
}
