import type { CarePlan, DetectedIssue } from '@medplum/fhirtypes';
import {
  contraindicationState,
  overriddenContraindications,
  plansClearedBy,
  withListedActivities,
} from './contraindication-state';

const issue = (code: string, extra: Partial<DetectedIssue> = {}): DetectedIssue => ({
  resourceType: 'DetectedIssue',
  status: 'preliminary',
  code: { coding: [{ code }] },
  ...extra,
});
const mitigation = [{ action: { text: 'Clinician override: reason' } }];

describe('contraindication state', () => {
  it('unresolved until overridden (mitigation) or withdrawn (cancelled, entered in error)', () => {
    expect(contraindicationState(issue('pregnancy'))).toBe('unresolved');
    expect(contraindicationState(issue('pregnancy', { status: 'final', mitigation }))).toBe('overridden');
    expect(contraindicationState(issue('pregnancy', { status: 'cancelled' as never }))).toBe('withdrawn');
    expect(contraindicationState(issue('pregnancy', { status: 'entered-in-error', mitigation }))).toBe('withdrawn');
  });

  it('the plans a contraindication no longer holds back: those it implicates once overridden or withdrawn', () => {
    const implicated = [{ reference: 'CarePlan/p1' }, { reference: 'MedicationRequest/o1' }, { reference: 'Task/t1' }];
    expect(plansClearedBy(issue('pregnancy', { implicated }))).toEqual([]);
    expect(plansClearedBy(issue('pregnancy', { implicated, mitigation }))).toEqual(['CarePlan/p1']);
    expect(plansClearedBy(issue('pregnancy', { implicated, status: 'entered-in-error' }))).toEqual(['CarePlan/p1']);
    expect(plansClearedBy(issue('pregnancy', { mitigation }))).toEqual([]);
  });

  it('the overridden codes are those with a mitigation', () => {
    expect([...overriddenContraindications([issue('pregnancy', { mitigation }), issue('psychosis')])]).toEqual([
      'pregnancy',
    ]);
  });
});

describe('withListedActivities', () => {
  const carePlan: CarePlan = {
    resourceType: 'CarePlan',
    status: 'draft',
    intent: 'plan',
    subject: { reference: 'Patient/p1' },
    activity: [{ reference: { reference: 'Task/a' } }],
  };

  it('appends each Task not yet listed, once', () => {
    expect(withListedActivities(carePlan, ['Task/a', 'Task/b', 'Task/b'])?.activity).toEqual([
      { reference: { reference: 'Task/a' } },
      { reference: { reference: 'Task/b' } },
    ]);
  });

  it('nothing to change: undefined', () => {
    expect(withListedActivities(carePlan, ['Task/a'])).toBeUndefined();
  });
});
