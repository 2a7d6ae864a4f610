import type { DetectedIssue, Procedure } from '@medplum/fhirtypes';
import { clinicAlertKindOf, clinicAlertMessage } from './clinic-alert';
import { resolvedNoticeMessage } from './clinic-alert-resolved';
import { contraindicationState } from './contraindication-state';
import {
  INFUSION_LINKED_BY_CLINICIAN,
  INFUSION_LINKED_IN_EHR,
  infusionNotLinkedIssue,
  infusionNotLinkedOf,
  isInfusionNotLinked,
  isNotLinkedResolvedByService,
  notLinkedInfusionSettled,
  resolvedInfusionNotLinked,
} from './infusion-not-linked';

const procedure: Procedure & { id: string } = {
  resourceType: 'Procedure',
  id: 'proc-1',
  status: 'completed',
  code: { text: 'Intravenous infusion' },
  subject: { reference: 'Patient/p1' },
  performedPeriod: { start: '2027-01-04T09:00:00Z', end: '2027-01-04T10:00:00Z' },
};
const issue = (): DetectedIssue => ({
  ...infusionNotLinkedIssue({
    procedure,
    carePlans: ['CarePlan/a', 'CarePlan/b'],
    patient: { reference: 'Patient/p1' },
    identified: '2027-01-04T10:05:00Z',
    zone: 'America/New_York',
  }),
  id: 'issue-1',
});

describe('an infusion charted naming no care plan, that may be a session of the patient’s plans', () => {
  it('is an unresolved issue implicating those plans, its infusion the evidence, when it was on the clinic’s clock', () => {
    const raised = issue();
    expect(isInfusionNotLinked(raised)).toBe(true);
    expect(contraindicationState(raised)).toBe('unresolved');
    expect(infusionNotLinkedOf(raised)).toBe('proc-1');
    expect(raised.implicated).toEqual([{ reference: 'CarePlan/a' }, { reference: 'CarePlan/b' }]);
    expect(raised.evidence?.[0].detail?.[0].display).toBe(
      'Infusion charted 2027-01-04 04:00 .. 2027-01-04 05:00 (America/New_York), naming no care plan',
    );
    expect(raised.detail).toMatch(/patient’s 2 plans are held/);
  });

  it('settles without a clinician when the EHR takes it back or links it; not while it names no plan', () => {
    const plans = ['CarePlan/a', 'CarePlan/b'];
    expect(notLinkedInfusionSettled(procedure, plans)).toBeUndefined();
    expect(notLinkedInfusionSettled(undefined, plans)?.text).toMatch(/deleted in the EHR/);
    expect(notLinkedInfusionSettled({ ...procedure, status: 'entered-in-error' }, plans)?.how.code).toBe(
      'infusion-taken-back',
    );
    // Linked to a plan of the EHR's own: no link to the plans it may be a session of.
    const ehrEpisode = { reference: 'CarePlan/ehr-episode' };
    expect(notLinkedInfusionSettled({ ...procedure, basedOn: [ehrEpisode] }, plans)).toBeUndefined();
    expect(
      notLinkedInfusionSettled({ ...procedure, basedOn: [ehrEpisode, { reference: 'CarePlan/b' }] }, plans),
    ).toEqual({
      how: INFUSION_LINKED_IN_EHR,
      text: 'Linked to CarePlan/b in the EHR, and followed up',
    });
  });

  it('resolved, as an override resolves an issue; by the service, the clinic is told it was resolved, not reviewed', () => {
    const byService = resolvedInfusionNotLinked(issue(), INFUSION_LINKED_IN_EHR, 'Linked', '2027-01-04T11:00:00Z');
    expect([byService.status, contraindicationState(byService), isNotLinkedResolvedByService(byService)]).toEqual([
      'final',
      'overridden',
      true,
    ]);
    expect(resolvedNoticeMessage(byService).subject).toBe(
      'Ketamine care plans: resolved: an infusion charted without its care plan',
    );
    const byClinician = resolvedInfusionNotLinked(
      issue(),
      INFUSION_LINKED_BY_CLINICIAN,
      'Linked to CarePlan/a',
      '2027-01-04T11:00:00Z',
      'Practitioner/dr',
    );
    expect(byClinician.mitigation?.[0].author).toEqual({ reference: 'Practitioner/dr' });
    expect(isNotLinkedResolvedByService(byClinician)).toBe(false);
    expect(resolvedNoticeMessage(byClinician).subject).toMatch(/: reviewed: /);
  });

  it('is told to the clinic whatever it holds, by email naming no patient', () => {
    const raised = issue();
    expect(clinicAlertKindOf(raised)).toBe('infusion-not-linked');
    const { subject, text } = clinicAlertMessage(raised, { worklistUrl: 'https://c.test/ui' });
    expect(subject).toBe('Ketamine care plans: an infusion was charted without its care plan, to link');
    expect(text).toMatch(/any approved order under it is held/);
    expect(text).toMatch(/This email names no patient/);
    expect(text).not.toMatch(/p1|proc-1/);
    const held = { ...raised, implicated: [...raised.implicated!, { reference: 'MedicationRequest/o1' }] };
    expect(clinicAlertMessage(held).text).toMatch(/its approved order is on hold/);
  });
});
