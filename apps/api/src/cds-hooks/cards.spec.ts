import { reportedEffectIssue } from '@kc/protocols';
import { businessStatus } from '@kc/task-states';
import type { DetectedIssue, MedicationRequest, Task } from '@medplum/fhirtypes';
import { bloodPressure, activeCondition, PREGNANCY } from '../../../../test/fixtures/patient-data';
import { infusionNotLinkedIssue } from '@kc/protocols';
import { unreadCheckIssue } from '../../../../test/fixtures/plans';
import {
  codeDisplays,
  contraindicationCards,
  describeEvidence,
  followUpTaskCards,
  isUnresolvedContraindication,
  orderContraindications,
  orderSignCards,
  summary,
  taskDueState,
  type CardOptions,
} from './cards';

const SYSTEM = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';
const NOW = new Date('2027-03-10T12:00:00Z');
const options: CardOptions = {
  sourceLabel: 'Ketamine care plans',
  worklistUrl: 'https://cds.clinic.example/ui',
  displays: {
    'post-infusion-check': 'Post-infusion check',
    pregnancy: 'Pregnancy',
    'effect-hallucinations': 'Hallucinations',
  },
};

const order: MedicationRequest = {
  resourceType: 'MedicationRequest',
  id: 'mr1',
  status: 'draft',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
};

function task(id: string, start: string, end: string, status: Task['status'] = 'draft'): Task {
  return {
    resourceType: 'Task',
    id,
    status,
    intent: 'plan',
    businessStatus: businessStatus(status === 'ready' ? 'approved' : status === 'draft' ? 'awaiting-approval' : 'done'),
    code: { coding: [{ system: SYSTEM, code: 'post-infusion-check' }] },
    for: { reference: 'Patient/p1' },
    restriction: { period: { start, end } },
  };
}

function issue(id: string, code: string, extra: Partial<DetectedIssue> = {}): DetectedIssue {
  return {
    resourceType: 'DetectedIssue',
    id,
    status: 'preliminary',
    code: { coding: [{ system: SYSTEM, code }], text: 'Pregnancy on record.' },
    severity: 'high',
    patient: { reference: 'Patient/p1' },
    identifiedDateTime: '2027-03-01T09:00:00Z',
    detail: 'Pregnancy on record. Activation is blocked until a clinician overrides it.',
    ...extra,
  };
}

describe('card builder (pure)', () => {
  it('summaries stay under 140 characters', () => {
    expect(summary('short')).toBe('short');
    const long = summary('x'.repeat(300));
    expect(long.length).toBeLessThan(140);
    expect(long.endsWith('…')).toBe(true);
  });

  it('a follow-up is overdue once its window closed, due while open, nothing before or once closed', () => {
    expect(taskDueState(task('a', '2027-03-01', '2027-03-08'), NOW)).toBe('overdue');
    expect(taskDueState(task('b', '2027-03-09', '2027-03-12'), NOW)).toBe('due');
    expect(taskDueState(task('c', '2027-03-11', '2027-03-15'), NOW)).toBeUndefined();
    expect(taskDueState(task('d', '2027-03-01', '2027-03-08', 'completed'), NOW)).toBeUndefined();
    expect(taskDueState(task('e', '2027-03-01', '2027-03-08', 'rejected'), NOW)).toBeUndefined();
    expect(taskDueState({ ...task('f', '', ''), restriction: undefined }, NOW)).toBeUndefined();
  });

  it('follow-up cards: overdue (warning) before due (info), with the window, the Task and the worklist link', () => {
    const cards = followUpTaskCards(
      [
        task('due', '2027-03-09T00:00:00Z', '2027-03-12T00:00:00Z', 'ready'),
        task('later', '2027-03-20T00:00:00Z', '2027-03-25T00:00:00Z'),
        task('overdue', '2027-03-01T00:00:00Z', '2027-03-07T00:00:00Z'),
      ],
      NOW,
      options,
    );
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['warning', 'Overdue: Post-infusion check (window closed 2027-03-07)'],
      ['info', 'Due now: Post-infusion check (window 2027-03-09 to 2027-03-11)'],
    ]);
    expect(cards[0].detail).toContain('closed 3 days ago');
    expect(cards[0].detail).toContain('Status: Awaiting clinician approval.');
    expect(cards[0].detail).not.toMatch(/Task\//);
    expect(cards[0].links).toEqual([
      { label: 'Open the clinician worklist', url: 'https://cds.clinic.example/ui', type: 'absolute' },
    ]);
    expect(cards[0].uuid).toBe(followUpTaskCards([task('overdue', '2027-03-01', '2027-03-07')], NOW, options)[0].uuid);
  });

  it('unresolved contraindications: no mitigation and not cancelled or entered in error, as the approval guard says', () => {
    expect(isUnresolvedContraindication(issue('a', 'pregnancy'))).toBe(true);
    expect(
      isUnresolvedContraindication(issue('b', 'pregnancy', { mitigation: [{ action: { text: 'override' } }] })),
    ).toBe(false);
    expect(isUnresolvedContraindication(issue('c', 'pregnancy', { status: 'entered-in-error' }))).toBe(false);
    expect(isUnresolvedContraindication({ ...issue('d', 'pregnancy'), status: 'cancelled' as never })).toBe(false);
    // A status alone, with no mitigation saying who and why, still blocks approval: the card stays.
    expect(isUnresolvedContraindication(issue('e', 'pregnancy', { status: 'mitigated' }))).toBe(true);
  });

  it('patient-view contraindication cards: severity sets the indicator, the name comes from the CodeSystem', () => {
    const cards = contraindicationCards(
      [
        issue('high', 'pregnancy'),
        issue('moderate', 'unknown-code', {
          severity: 'moderate',
          code: { coding: [{ system: SYSTEM, code: 'x-y' }] },
        }),
        issue('resolved', 'pregnancy', { mitigation: [{ action: { text: 'override' } }] }),
      ],
      options,
    );
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['critical', 'Unresolved ketamine contraindication: Pregnancy'],
      ['warning', 'Unresolved ketamine contraindication: x y'],
    ]);
    expect(cards[0].detail).toContain('Recorded as a contraindication on 2027-03-01, not resolved');
    expect(cards[0].detail).not.toMatch(/DetectedIssue\/|CarePlan\//);
    expect(cards[0].source.topic).toEqual({ system: SYSTEM, code: 'pregnancy' });
  });

  it('patient-view: an infusion charted without its care plan is a warning to link it, in words (no references)', () => {
    const notLinked = infusionNotLinkedIssue({
      procedure: {
        resourceType: 'Procedure',
        id: 'proc-1',
        status: 'completed',
        code: { text: 'Intravenous infusion' },
        subject: { reference: 'Patient/p1' },
        performedPeriod: { start: '2027-03-09T09:00:00Z', end: '2027-03-09T10:00:00Z' },
      },
      carePlans: ['CarePlan/cp1'],
      patient: { reference: 'Patient/p1' },
      identified: '2027-03-09T10:05:00Z',
    });
    const [card] = contraindicationCards([{ ...notLinked, id: 'di1' }], options);
    expect([card.indicator, card.summary]).toEqual([
      'warning',
      'Infusion charted without its ketamine care plan, to link',
    ]);
    expect(card.detail).toContain(
      'Found on 2027-03-09, not resolved: Infusion charted 2027-03-09 09:00 .. 2027-03-09 10:00 (UTC), naming no care plan',
    );
    expect(card.detail).toMatch(/link it to that plan \(the Procedure's basedOn\)/);
    expect(card.detail).not.toMatch(/Procedure\/|DetectedIssue\/|CarePlan\//);
  });

  it('evidence lines name the record, its values and date, in words (no references)', () => {
    expect(describeEvidence({ ...bloodPressure(195, 115, '2027-03-09T08:00:00Z'), id: 'bp1' })).toBe(
      'Blood pressure panel: Systolic blood pressure 195 mmHg, Diastolic blood pressure 115 mmHg (2027-03-09)',
    );
    expect(describeEvidence({ ...activeCondition(...PREGNANCY), id: 'c1' })).toBe('Condition: Pregnancy, active');
  });

  it("cards name the clinic's days (CLINIC_TIME_ZONE), not UTC's", () => {
    const zoned = { ...options, zone: 'America/New_York' };
    const [card] = contraindicationCards(
      [issue('late', 'pregnancy', { identifiedDateTime: '2027-03-02T03:00:00Z' })],
      zoned,
    );
    expect(card.detail).toContain('Recorded as a contraindication on 2027-03-01, not resolved');
    // A blood pressure taken at 01:00 UTC on the 9th was taken on the evening of the 8th in New York.
    expect(describeEvidence({ ...bloodPressure(195, 115, '2027-03-09T01:00:00Z'), id: 'bp1' }, zoned.zone)).toMatch(
      /\(2027-03-08\)$/,
    );
  });

  it('order-sign: one critical card per contraindication, merging the DetectedIssue and the failed condition', () => {
    const contraindications = orderContraindications([issue('di1', 'pregnancy')], {
      failed: [
        {
          code: 'pregnancy',
          description: 'Pregnancy on record (active pregnancy condition or a pregnant status observation).',
          evidence: [{ ...activeCondition(...PREGNANCY), id: 'c1' }],
          emptyVariables: [],
        },
      ],
      unchecked: [{ code: 'uncontrolled-hypertension', description: 'Latest blood pressure at or above 180/110.' }],
    });
    expect(contraindications).toHaveLength(1);
    const cards = orderSignCards(
      { orders: [order], contraindications, unchecked: [{ code: 'x', description: 'Needs BP.' }] },
      options,
    );
    expect(cards.map((c) => [c.indicator, c.summary])).toEqual([
      ['critical', 'Ketamine contraindicated: Pregnancy'],
      ['warning', 'Ketamine order: 1 eligibility check could not run (data missing)'],
    ]);
    expect(cards[0].detail).toContain('- Condition: Pregnancy, active');
    expect(cards[0].detail).toContain('- Recorded as a contraindication on 2027-03-01, not resolved');
    expect(cards[0].detail).toContain('Sign this ketamine order only with a documented clinical override.');
    expect(cards[0].detail).not.toMatch(/(Condition|DetectedIssue|MedicationRequest)\//);
    expect(cards[0].selectionBehavior).toBe('at-most-one');
    expect(cards[0].suggestions?.[0].actions).toEqual([
      { type: 'delete', description: 'Remove the ketamine order', resourceId: ['MedicationRequest/mr1'] },
    ]);
    expect(orderSignCards({ orders: [], contraindications, unchecked: [] }, options)).toEqual([]);
  });

  it('an effect reported at a check reads as waiting for review, not as a contraindication, on both hooks', () => {
    const effect = {
      ...reportedEffectIssue(
        { effect: { system: SYSTEM, code: 'effect-hallucinations', display: 'Hallucinations' }, severity: 'high' },
        {
          check: 'Task/check1',
          patient: { reference: 'Patient/p1' },
          carePlan: 'CarePlan/cp1',
          identified: '2027-03-02T10:00:00Z',
          response: { reference: 'QuestionnaireResponse/qr1' },
        },
      ),
      id: 'di9',
    };
    const [card] = contraindicationCards([effect], options);
    expect(card.summary).toBe('Reported after ketamine, awaiting review: Hallucinations');
    expect(card.indicator).toBe('critical');
    expect(card.detail).toContain('Reported at a post-infusion check on 2027-03-02, not reviewed yet');
    expect(card.detail).not.toMatch(/contraindication/i);

    const found = orderContraindications([effect, issue('di1', 'pregnancy')], { failed: [], unchecked: [] });
    const cards = orderSignCards({ orders: [order], contraindications: found, unchecked: [] }, options);
    expect(cards.map((c) => c.summary)).toEqual([
      'Ketamine order: Hallucinations reported, not reviewed yet',
      'Ketamine contraindicated: Pregnancy',
    ]);
    expect(cards[0].detail).toContain('- Reported at a post-infusion check on 2027-03-02, not reviewed yet');
    expect(cards[0].detail).toContain('Sign this ketamine order only after a clinician has reviewed what the patient');
    expect(cards[1].detail).toContain('only with a documented clinical override');
  });

  it('a check whose answers could not be read reads as such on both hooks, not as an effect the patient reported', () => {
    const unread = unreadCheckIssue('di10', '2027-03-02T10:00:00Z');
    const [card] = contraindicationCards([unread], options);
    expect(card.summary).toMatch(/^Ketamine check not read, awaiting review: /);
    expect(card.indicator).toBe('warning');
    expect(card.detail).toContain('Recorded on 2027-03-02, not reviewed yet');
    expect(card.detail).not.toMatch(/reported at a post-infusion check/i);

    const found = orderContraindications([unread], { failed: [], unchecked: [] });
    const [signCard] = orderSignCards({ orders: [order], contraindications: found, unchecked: [] }, options);
    expect(signCard.summary).toBe('Ketamine order: Answers to the Post-infusion check not read, not reviewed yet');
    expect(signCard.detail).toContain("only after a clinician has read the check's answers in the EHR");
  });

  it('codeDisplays reads the service CodeSystem only', () => {
    expect(
      codeDisplays([
        {
          resourceType: 'CodeSystem',
          url: SYSTEM,
          status: 'active',
          content: 'complete',
          concept: [{ code: 'a', display: 'A' }],
        },
        {
          resourceType: 'CodeSystem',
          url: 'http://other',
          status: 'active',
          content: 'complete',
          concept: [{ code: 'b', display: 'B' }],
        },
      ]),
    ).toEqual({ a: 'A' });
  });
});
