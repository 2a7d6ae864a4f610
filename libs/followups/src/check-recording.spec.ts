import * as path from 'node:path';
import type { QuestionnaireResponseItem, QuestionnaireResponseItemAnswer, Task } from '@medplum/fhirtypes';
import { AnswersRefused, PROTOCOL_ACTION_EXTENSION, ProtocolCatalog } from '@kc/protocols';
import { awaitingApproval, InvalidTransition, stateOf, transition } from '@kc/task-states';
import { recordCheck } from './check-recording';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const lowDose = catalog.findPlanDefinition('ketamine-low-dose-series')!;
const questionnaire = catalog.questionnaireOf(lowDose, 'post-infusion-check')!;
const NOW = new Date('2027-01-08T10:00:00.000Z');
const LOINC = 'http://loinc.org';
const CS = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';
const AUTHOR = { reference: 'Practitioner/ada', display: 'Dr Ada Lovelace' };

function check(): Task {
  return {
    resourceType: 'Task',
    id: 'check-1',
    ...awaitingApproval(),
    description: 'Post-infusion check within one week',
    for: { reference: 'Patient/p1' },
    basedOn: [{ reference: 'CarePlan/cp1' }],
    restriction: { period: { start: '2027-01-04T10:00:00Z', end: '2027-01-11T10:00:00Z' } },
    extension: [{ url: PROTOCOL_ACTION_EXTENSION, valueString: 'post-infusion-check' }],
  };
}

const answer = (linkId: string, ...values: QuestionnaireResponseItemAnswer[]): QuestionnaireResponseItem => ({
  linkId,
  answer: values,
});
const effect = (code: string) => ({ valueCoding: { system: CS, code } });

/** A whole check, as the page sends it: flat, no calculated score. */
function answers(overrides: Record<string, QuestionnaireResponseItem['answer']> = {}): QuestionnaireResponseItem[] {
  const base: Record<string, QuestionnaireResponseItem['answer']> = {
    'pain-now': [{ valueInteger: 4 }],
    'peg-average-pain': [{ valueInteger: 5 }],
    'peg-enjoyment-of-life': [{ valueInteger: 6 }],
    'peg-general-activity': [{ valueInteger: 6 }],
    effects: [effect('effect-nausea'), effect('effect-dizziness')],
    ...overrides,
  };
  return Object.entries(base).flatMap(([linkId, values]) => (values ? [{ linkId, answer: values }] : []));
}

function record(items = answers(), task = check()) {
  return recordCheck({ task, questionnaire, answers: items, author: AUTHOR, now: NOW, responseUrl: 'urn:uuid:qr' });
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof AnswersRefused) return err.problems.map((p) => `${p.linkId}: ${p.text}`);
    throw err;
  }
  throw new Error('the answers were taken');
}

describe('recording a post-infusion check', () => {
  it('the protocol names the Questionnaire its check is done with, and none for an infusion', () => {
    expect(questionnaire.url).toBe('https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check');
    expect(catalog.questionnaireOf(lowDose, 'first-infusion')).toBeUndefined();
    for (const id of ['ketamine-high-dose-as-needed', 'ketamine-monthly-maintenance'])
      expect(catalog.questionnaireOf(catalog.findPlanDefinition(id), 'post-infusion-check')).toBe(questionnaire);
  });

  it('completes the Task with the response, calculates the PEG score and extracts the scores and each effect', () => {
    const { task, response, observations } = record();
    expect(task.status).toBe('completed');
    expect(stateOf(task)).toBe('done');
    expect(task.output?.at(-1)?.valueReference?.reference).toBe('urn:uuid:qr');
    expect(task.executionPeriod?.end).toBe(NOW.toISOString());

    expect(response).toMatchObject({
      status: 'completed',
      questionnaire: `${questionnaire.url}|1.0.0`,
      subject: { reference: 'Patient/p1' },
      basedOn: [{ reference: 'CarePlan/cp1' }],
      authored: NOW.toISOString(),
      author: AUTHOR,
    });
    // Laid out as the Questionnaire is: the PEG items inside their group, with the calculated mean (17 / 3).
    const peg = response.item!.find((i) => i.linkId === 'peg')!;
    expect(peg.item!.map((i) => i.linkId)).toEqual([
      'peg-average-pain',
      'peg-enjoyment-of-life',
      'peg-general-activity',
      'peg-score',
    ]);
    expect(peg.item!.at(-1)!.answer).toEqual([{ valueDecimal: 5.7 }]);

    const byCode = (code: string) => observations.filter((o) => o.code.coding?.[0]?.code === code);
    expect(byCode('72514-3')).toEqual([
      expect.objectContaining({
        status: 'final',
        subject: { reference: 'Patient/p1' },
        effectiveDateTime: NOW.toISOString(),
        performer: [AUTHOR],
        derivedFrom: [{ reference: 'urn:uuid:qr' }],
        basedOn: [{ reference: 'CarePlan/cp1' }],
        valueInteger: 4,
      }),
    ]);
    expect(byCode('72514-3')[0].code.coding?.[0].system).toBe(LOINC);
    expect(byCode('91147-9').map((o) => o.valueQuantity?.value)).toEqual([5.7]);
    expect(byCode('infusion-effect').map((o) => o.valueCodeableConcept?.coding?.[0].code)).toEqual([
      'effect-nausea',
      'effect-dizziness',
    ]);
    // The PEG items themselves are in the response only (no verified LOINC codes for them here).
    expect(observations).toHaveLength(4);
  });

  it('takes answers nested as the Questionnaire groups them, and ignores a score a client calculated itself', () => {
    const flat = answers();
    const nested: QuestionnaireResponseItem[] = [
      flat[0],
      { linkId: 'peg', item: [...flat.slice(1, 4), answer('peg-score', { valueDecimal: 9.9 })] },
      flat[4],
    ];
    const { response } = record(nested);
    expect(response.item!.find((i) => i.linkId === 'peg')!.item!.at(-1)!.answer).toEqual([{ valueDecimal: 5.7 }]);
  });

  it('refuses missing, out-of-range, mistyped, unknown and contradictory answers, naming each question', () => {
    expect(problemsOf(() => record(answers({ 'pain-now': undefined })))).toEqual([
      'pain-now: “Pain now (0 no pain .. 10 worst imaginable)” needs an answer',
    ]);
    expect(problemsOf(() => record(answers({ 'pain-now': [{ valueInteger: 11 }] })))).toEqual([
      'pain-now: “Pain now (0 no pain .. 10 worst imaginable)”: 11 is outside 0 .. 10',
    ]);
    expect(problemsOf(() => record(answers({ 'peg-average-pain': [{ valueDecimal: 4.5 }] }))).join()).toContain(
      'needs a whole number (valueInteger)',
    );
    expect(
      problemsOf(() => record(answers({ 'pain-now': [{ valueInteger: 3 }, { valueInteger: 4 }] }))).join(),
    ).toContain('takes one answer, not 2');
    expect(problemsOf(() => record([...answers(), answer('mood', { valueInteger: 3 })]))).toEqual([
      'mood: "mood" is not a question of Post-infusion check',
    ]);
    expect(problemsOf(() => record(answers({ effects: [effect('effect-euphoria')] }))).join()).toContain(
      '"effect-euphoria" is not one of its options',
    );
    expect(
      problemsOf(() => record(answers({ effects: [effect('effect-none'), effect('effect-nausea')] }))).join(),
    ).toContain('“No effects” cannot be given with other answers');
    expect(problemsOf(() => record(answers({ effects: [] }))).join()).toContain(
      '“Effects since the infusion” needs an answer',
    );
    // What the FHIR server's own validation would refuse is refused here, in words, before anything is sent.
    expect(problemsOf(() => record(answers({ note: [{ valueString: 'fine\u0000' }] }))).join()).toContain(
      'needs text (valueString)',
    );
    expect(problemsOf(() => record(answers({ 'pain-now': [{ valueInteger: 1e12 }] }))).join()).toContain(
      'needs a whole number',
    );
    expect(problemsOf(() => record(answers({ peg: [{ valueInteger: 5 }] }))).join()).toContain(
      '“PEG-3: the past week” is a heading, not a question',
    );
    // Everything wrong at once is listed at once.
    expect(problemsOf(() => record(answers({ 'pain-now': undefined, effects: undefined })))).toHaveLength(2);
  });

  it('"No effects" alone is an answer, and is kept as one', () => {
    const { observations } = record(answers({ effects: [effect('effect-none')] }));
    expect(observations.filter((o) => o.code.coding?.[0].code === 'infusion-effect')).toHaveLength(1);
  });

  it('an approved or overdue check can be recorded; a rejected or done one cannot', () => {
    const approved = transition(check(), { event: 'approve', now: NOW });
    expect(record(answers(), approved).task.status).toBe('completed');
    const overdue = transition(approved, { event: 'mark-overdue', now: new Date('2027-01-12T00:00:00Z') });
    expect(record(answers(), overdue).task.status).toBe('completed');
    const rejected = transition(check(), { event: 'reject', now: NOW, reason: 'patient unreachable' });
    expect(() => record(answers(), rejected)).toThrow(InvalidTransition);
    const done = record().task;
    expect(() => record(answers(), done)).toThrow(InvalidTransition);
  });
});
