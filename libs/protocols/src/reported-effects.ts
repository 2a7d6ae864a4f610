import type { Coding, DetectedIssue, Questionnaire, QuestionnaireResponseItem, Reference } from '@medplum/fhirtypes';
import { CANONICAL_BASE, SERVICE_CODE_SYSTEM } from './canonical';
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

/** The issue of a check whose answers could not be read here (fhir-profiles' CodeSystem). */
export const CHECK_ANSWERS_UNREAD: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'check-answers-unread',
  display: 'Answers to a check not read',
};

/** An issue recorded because a check's answers could not be read here (unreadAnswersIssue). */
export function isUnreadAnswers(issue: DetectedIssue): boolean {
  return Boolean(
    issue.code?.coding?.some((c) => c.system === CHECK_ANSWERS_UNREAD.system && c.code === CHECK_ANSWERS_UNREAD.code),
  );
}

/**
 * The severity with which a Questionnaire has its answers reviewed when they cannot be read here (its own
 * effect-review extension, on the Questionnaire itself): a check done in the EHR with no answers linked, or answers
 * that do not fit it. The effects it asks about were then not judged. None: such a check is taken as done, as it is.
 */
export function unreadAnswersSeverity(questionnaire: Questionnaire): Severity | undefined {
  const severity = questionnaire.extension?.find((e) => e.url === EFFECT_REVIEW_EXTENSION)?.valueCode;
  return severity && SEVERITIES.includes(severity) ? (severity as Severity) : undefined;
}

/**
 * A check whose answers could not be read here, as an EHR reads an issue with the patient's care: reviewed as an
 * effect reported at it would be (the same key system, `Task/<check id>:check-answers-unread`), since the effects it
 * asks about were not judged: the plan's next infusions wait until a clinician has read the answers where they are
 * and overrides it with what was decided.
 */
export function unreadAnswersIssue(
  severity: Severity,
  at: Omit<ReportedAt, 'response'> & { title: string; why: string; evidence: Reference },
): DetectedIssue {
  return {
    resourceType: 'DetectedIssue',
    identifier: [{ system: REPORTED_EFFECT_KEY_SYSTEM, value: `${at.check}:${CHECK_ANSWERS_UNREAD.code}` }],
    status: 'preliminary',
    code: { coding: [CHECK_ANSWERS_UNREAD], text: `Answers to the ${at.title} not read` },
    severity,
    patient: at.patient,
    identifiedDateTime: at.identified,
    ...(at.author ? { author: at.author } : {}),
    implicated: [{ reference: at.carePlan }],
    evidence: [{ detail: [at.evidence] }],
    detail:
      `The ${at.title} was done in the EHR, but its answers could not be read here (${at.why}), so the effects it ` +
      "asks about were not judged. The plan's next infusions are not approved, and its approved orders are held, " +
      'until a clinician reads them in the EHR and overrides this with what was decided.',
  };
}
