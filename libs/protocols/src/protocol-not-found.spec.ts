import type { DetectedIssue } from '@medplum/fhirtypes';
import { clinicAlertMessage } from './clinic-alert';
import { resolvedNoticeMessage } from './clinic-alert-resolved';
import { contraindicationState } from './contraindication-state';
import {
  isFoundAgain,
  isProtocolNotFound,
  protocolNotFoundIssue,
  reopenedProtocolNotFound,
  resolvedProtocolNotFound,
} from './protocol-not-found';

const issue = (): DetectedIssue => ({
  ...protocolNotFoundIssue({
    carePlan: 'CarePlan/cp1',
    patient: { reference: 'Patient/p1' },
    canonical: 'http://ehr.example/PlanDefinition/series|2',
    identified: '2027-01-03T08:00:00.000Z',
  }),
  id: 'i1',
});

describe('a care plan whose protocol is not found', () => {
  it('is an unresolved issue on the plan, naming the protocol and what it holds', () => {
    const found = issue();
    expect(isProtocolNotFound(found)).toBe(true);
    expect(contraindicationState(found)).toBe('unresolved');
    expect(found.implicated).toEqual([{ reference: 'CarePlan/cp1' }]);
    expect(found.identifier).toEqual([
      { system: 'https://ketamine-careplans.example/fhir/NamingSystem/protocol-not-found-key', value: 'CarePlan/cp1' },
    ]);
    expect(found.detail).toMatch(/^This care plan’s protocol \(http:\/\/ehr.example\/PlanDefinition\/series\|2\)/);
  });

  it('resolved by the service when found again, and reopened when gone again; a clinician’s override stands', () => {
    const resolved = resolvedProtocolNotFound(issue(), '2027-01-04T08:00:00.000Z');
    expect([contraindicationState(resolved), isFoundAgain(resolved)]).toEqual(['overridden', true]);
    const reopened = reopenedProtocolNotFound(resolved, '2027-01-05T08:00:00.000Z');
    expect(reopened).toMatchObject({ status: 'preliminary', identifiedDateTime: '2027-01-05T08:00:00.000Z' });
    expect(contraindicationState(reopened!)).toBe('unresolved');
    // Unresolved already: nothing to change.
    expect(reopenedProtocolNotFound(issue(), '2027-01-05T08:00:00.000Z')).toBeUndefined();
    const overridden: DetectedIssue = {
      ...issue(),
      status: 'final',
      mitigation: [{ action: { text: 'Clinician override: last session goes ahead' }, date: '2027-01-04T09:00:00Z' }],
    };
    expect(reopenedProtocolNotFound(overridden, '2027-01-05T08:00:00.000Z')).toBeUndefined();
    expect(isFoundAgain(overridden)).toBe(false);
  });

  it('the clinic is told in words of its own, naming no patient, and told again when the protocol is back', () => {
    const holding: DetectedIssue = {
      ...issue(),
      implicated: [{ reference: 'CarePlan/cp1' }, { reference: 'MedicationRequest/m1' }, { reference: 'Task/t1' }],
    };
    const alert = clinicAlertMessage(holding, { heldDueFrom: '2027-01-06T09:00:00Z' });
    expect(alert.subject).toBe(
      "Ketamine care plans: an approved infusion is on hold (its care plan's protocol is not found), to review",
    );
    expect(alert.text).toContain(
      "The protocol a patient's ketamine care plan follows is not found any more (found 2027-01-03): neither one of this service's nor on the FHIR server",
    );
    expect(alert.text).toContain('The held session is due from 2027-01-06.');
    for (const named of ['cp1', 'p1', 'm1', 't1']) expect(alert.text).not.toContain(named);
    const notice = resolvedNoticeMessage(resolvedProtocolNotFound(holding, '2027-01-04T08:00:00.000Z'));
    expect(notice.subject).toBe(
      "Ketamine care plans: resolved: an approved infusion held (its care plan's protocol not found)",
    );
    expect(notice.text).toContain(
      'it was resolved on 2027-01-04, its protocol being found again (the held orders are released)',
    );
  });
});
