import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Questionnaire, QuestionnaireResponseItem } from '@medplum/fhirtypes';
import { SERVICE_CODE_SYSTEM } from './canonical';
import {
  effectsToReview,
  isReportedAt,
  isReportedEffect,
  REPORTED_EFFECT_KEY_SYSTEM,
  reportedEffectIssue,
} from './reported-effects';

const check = JSON.parse(
  fs.readFileSync(
    path.join(__dirname, '..', '..', '..', 'fhir-profiles', 'Questionnaire-post-infusion-check.json'),
    'utf8',
  ),
) as Questionnaire;

const effects = (...codes: string[]): QuestionnaireResponseItem[] => [
  { linkId: 'pain-now', answer: [{ valueInteger: 4 }] },
  { linkId: 'effects', answer: codes.map((code) => ({ valueCoding: { system: SERVICE_CODE_SYSTEM, code } })) },
];

describe('effects reported at a check that a clinician reviews (fhir-profiles marks them)', () => {
  it('takes the marked effects, with their severity, and leaves the common ones', () => {
    const found = effectsToReview(
      check,
      effects('effect-nausea', 'effect-hallucinations', 'effect-raised-blood-pressure'),
    );
    expect(found.map((r) => [r.effect.code, r.effect.display, r.severity])).toEqual([
      ['effect-hallucinations', 'Hallucinations', 'high'],
      ['effect-raised-blood-pressure', 'Raised blood pressure', 'high'],
    ]);
    expect(effectsToReview(check, effects('effect-none'))).toEqual([]);
    expect(effectsToReview(check, effects('effect-dissociation', 'effect-nausea', 'effect-dizziness'))).toEqual([]);
  });

  it('matches the option by system and code, not the code alone', () => {
    const foreign = [
      { linkId: 'effects', answer: [{ valueCoding: { system: 'urn:other', code: 'effect-hallucinations' } }] },
    ];
    expect(effectsToReview(check, foreign)).toEqual([]);
  });

  it('is a DetectedIssue on the plan, keyed by the check and the effect, unresolved until overridden', () => {
    const [reported] = effectsToReview(check, effects('effect-hallucinations'));
    const issue = reportedEffectIssue(reported, {
      check: 'Task/c1',
      patient: { reference: 'Patient/p1' },
      carePlan: 'CarePlan/cp1',
      identified: '2027-01-05T10:00:00.000Z',
      response: { reference: 'urn:uuid:r1' },
    });
    expect(issue).toMatchObject({
      status: 'preliminary',
      severity: 'high',
      identifier: [{ system: REPORTED_EFFECT_KEY_SYSTEM, value: 'Task/c1:effect-hallucinations' }],
      implicated: [{ reference: 'CarePlan/cp1' }],
      evidence: [{ detail: [{ reference: 'urn:uuid:r1' }] }],
      code: { text: 'Hallucinations reported after an infusion' },
    });
    expect(issue.mitigation).toBeUndefined();
    expect(isReportedEffect(issue)).toBe(true);
    expect(isReportedEffect({ ...issue, identifier: [] })).toBe(false);
    expect(isReportedAt(issue, 'Task/c1')).toBe(true);
    expect(isReportedAt(issue, 'Task/c')).toBe(false);
  });
});
