import * as path from 'node:path';
import type { QuestionnaireResponse, Task } from '@medplum/fhirtypes';
import {
  CHECK_ANSWERS_UNREAD,
  isReportedEffect,
  PROTOCOL_ACTION_EXTENSION,
  ProtocolCatalog,
  REPORTED_EFFECT_KEY_SYSTEM,
} from '@kc/protocols';
import { businessStatus, stateOf } from '@kc/task-states';
import { adoptCheckDoneElsewhere, isCheckDoneElsewhere, responseReferenceOf } from './check-done-elsewhere';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const questionnaire = catalog.questionnaireOf(
  catalog.findPlanDefinition('ketamine-low-dose-series'),
  'post-infusion-check',
)!;
const NOW = new Date('2027-01-08T10:00:00.000Z');
const CS = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';

/** The check as an EHR's form filler leaves it: completed, its answers in output, this service's state still open. */
function completedInEhr(overrides: Partial<Task> = {}): Task {
  return {
    resourceType: 'Task',
    id: 'check-1',
    status: 'completed',
    intent: 'plan',
    businessStatus: businessStatus('approved'),
    for: { reference: 'Patient/p1' },
    basedOn: [{ reference: 'CarePlan/cp1' }],
    output: [{ type: { text: 'answers' }, valueReference: { reference: 'QuestionnaireResponse/qr1' } }],
    extension: [{ url: PROTOCOL_ACTION_EXTENSION, valueString: 'post-infusion-check' }],
    ...overrides,
  };
}

function response(overrides: Partial<QuestionnaireResponse> = {}): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    id: 'qr1',
    status: 'completed',
    questionnaire: `${questionnaire.url}|${questionnaire.version}`,
    authored: '2027-01-07T15:00:00Z',
    author: { reference: 'Practitioner/ehr-nurse' },
    item: [
      { linkId: 'pain-now', answer: [{ valueInteger: 4 }] },
      { linkId: 'peg-average-pain', answer: [{ valueInteger: 5 }] },
      { linkId: 'peg-enjoyment-of-life', answer: [{ valueInteger: 6 }] },
      { linkId: 'peg-general-activity', answer: [{ valueInteger: 6 }] },
      { linkId: 'effects', answer: [{ valueCoding: { system: CS, code: 'effect-none' } }] },
    ],
    ...overrides,
  };
}

describe('a check completed in the EHR', () => {
  it('is one while this service still has it open; not once recorded, nor when not completed', () => {
    expect(isCheckDoneElsewhere(completedInEhr())).toBe(true);
    expect(isCheckDoneElsewhere(completedInEhr({ businessStatus: businessStatus('done') }))).toBe(false);
    expect(isCheckDoneElsewhere(completedInEhr({ status: 'ready' }))).toBe(false);
    // Not this service's (no businessStatus of its own): not its business.
    expect(isCheckDoneElsewhere(completedInEhr({ businessStatus: undefined }))).toBe(false);
    expect(responseReferenceOf(completedInEhr())).toBe('QuestionnaireResponse/qr1');
    expect(responseReferenceOf(completedInEhr({ output: [{ type: { text: 'x' }, valueString: 'done' }] }))).toBe(
      undefined,
    );
  });

  it('is taken as done with the scores and effects extracted from the EHR answers, which stay as they are', () => {
    const task = completedInEhr();
    const adopted = adoptCheckDoneElsewhere({ task, questionnaire, response: response(), now: NOW });
    expect(stateOf(adopted.task)).toBe('done');
    expect(adopted.task.status).toBe('completed');
    expect(adopted.task.output).toEqual(task.output);
    expect(adopted.notTaken).toBeUndefined();
    expect(adopted.observations.map((o) => o.code.coding?.[0].code)).toEqual(['72514-3', '91147-9', 'infusion-effect']);
    for (const o of adopted.observations) {
      expect(o.derivedFrom).toEqual([{ reference: 'QuestionnaireResponse/qr1' }]);
      expect(o.performer).toEqual([{ reference: 'Practitioner/ehr-nurse' }]);
      expect(o.effectiveDateTime).toBe('2027-01-07T15:00:00Z');
    }
  });

  it('is done with nothing extracted, saying why, when the answers are missing, unfinished, for another form or do not fit', () => {
    const cases: [QuestionnaireResponse | undefined, RegExp][] = [
      [undefined, /^no answers to the Post-infusion check are linked to it/],
      [
        response({ questionnaire: 'https://example.org/Questionnaire/phq-9' }),
        /another questionnaire \(https:\/\/example.org/,
      ],
      [response({ status: 'in-progress' }), /not final \(in-progress\)/],
      [
        response({ item: [{ linkId: 'pain-now', answer: [{ valueInteger: 11 }] }] }),
        /do not fit the Post-infusion check: .*11 is outside 0 \.\. 10/,
      ],
    ];
    for (const [answers, why] of cases) {
      const adopted = adoptCheckDoneElsewhere({ task: completedInEhr(), questionnaire, response: answers, now: NOW });
      expect(stateOf(adopted.task)).toBe('done');
      expect(adopted.observations).toEqual([]);
      expect(adopted.notTaken).toMatch(why);
      // The effects it asks about were not judged: reviewed as a moderate effect (the Questionnaire's effect-review).
      expect(adopted.issues).toEqual([
        expect.objectContaining({
          identifier: [{ system: REPORTED_EFFECT_KEY_SYSTEM, value: 'Task/check-1:check-answers-unread' }],
          code: { coding: [CHECK_ANSWERS_UNREAD], text: 'Answers to the Post-infusion check not read' },
          severity: 'moderate',
          implicated: [{ reference: 'CarePlan/cp1' }],
        }),
      ]);
      expect(adopted.issues[0].detail).toContain(`could not be read here (${adopted.notTaken})`);
      expect(isReportedEffect(adopted.issues[0])).toBe(true);
    }
  });

  it('answers read here already, or a Questionnaire that does not ask for it: no review of unread answers', () => {
    expect(
      adoptCheckDoneElsewhere({ task: completedInEhr(), questionnaire, answersRecordedAlready: true, now: NOW }).issues,
    ).toEqual([]);
    const { extension: _none, ...asIs } = questionnaire;
    expect(adoptCheckDoneElsewhere({ task: completedInEhr(), questionnaire: asIs, now: NOW }).issues).toEqual([]);
  });
});
