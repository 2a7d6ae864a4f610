import type { CareTeam, CodeableConcept } from '@medplum/fhirtypes';
import { careTeamOwner, onDutyAt } from './care-team-owner';

const PRACTITIONER_ROLE = 'http://terminology.hl7.org/CodeSystem/practitioner-role';
const SNOMED = 'http://snomed.info/sct';
const NURSE: CodeableConcept = {
  coding: [
    { system: PRACTITIONER_ROLE, code: 'nurse' },
    { system: SNOMED, code: '224535009' },
  ],
};
const now = new Date('2027-01-10T00:00:00Z');

const team = (id: string, participants: CareTeam['participant'], extra: Partial<CareTeam> = {}): CareTeam => ({
  resourceType: 'CareTeam',
  id,
  status: 'active',
  participant: participants,
  ...extra,
});
const member = (reference: string, role: { system: string; code: string }, extra = {}) => ({
  member: { reference, display: reference.split('/')[1] },
  role: [{ coding: [role] }],
  ...extra,
});

describe('whose a new Task is on the patient’s care team', () => {
  it('the first member in the role the Task names as performer, in either of its codings', () => {
    const teams = [
      team('t1', [
        member('Practitioner/dr', { system: PRACTITIONER_ROLE, code: 'doctor' }),
        member('PractitionerRole/joy', { system: SNOMED, code: '224535009' }),
        member('Practitioner/other-nurse', { system: PRACTITIONER_ROLE, code: 'nurse' }),
      ]),
    ];
    expect(careTeamOwner(NURSE, teams, {}, now)).toEqual({ reference: 'PractitionerRole/joy', display: 'joy' });
  });

  it("the plan's own team first, then the patient's others", () => {
    const teams = [
      team('clinic-wide', [member('Practitioner/a', { system: PRACTITIONER_ROLE, code: 'nurse' })]),
      team('infusion', [member('Practitioner/b', { system: PRACTITIONER_ROLE, code: 'nurse' })]),
    ];
    expect(careTeamOwner(NURSE, teams, {}, now)?.reference).toBe('Practitioner/a');
    expect(careTeamOwner(NURSE, teams, { careTeam: [{ reference: 'CareTeam/infusion' }] }, now)?.reference).toBe(
      'Practitioner/b',
    );
  });

  it('nobody: no performer named, nobody in the role, a team or a membership not current, a member who is no practitioner', () => {
    const nurse = { system: PRACTITIONER_ROLE, code: 'nurse' };
    expect(careTeamOwner(undefined, [team('t', [member('Practitioner/a', nurse)])], {}, now)).toBeUndefined();
    expect(
      careTeamOwner(NURSE, [team('t', [member('Practitioner/a', { ...nurse, code: 'doctor' })])], {}, now),
    ).toBeUndefined();
    expect(
      careTeamOwner(NURSE, [team('t', [member('Practitioner/a', nurse)], { status: 'inactive' })], {}, now),
    ).toBeUndefined();
    expect(
      careTeamOwner(NURSE, [team('t', [member('Practitioner/a', nurse)], { period: { end: '2027-01-01' } })], {}, now),
    ).toBeUndefined();
    expect(
      careTeamOwner(
        NURSE,
        [team('t', [member('Practitioner/a', nurse, { period: { start: '2027-02-01' } })])],
        {},
        now,
      ),
    ).toBeUndefined();
    expect(careTeamOwner(NURSE, [team('t', [member('RelatedPerson/mum', nurse)])], {}, now)).toBeUndefined();
    // A membership that has started and not ended, or a team with no status: current.
    expect(
      careTeamOwner(
        NURSE,
        [team('t', [member('Practitioner/a', nurse, { period: { start: '2026-01-01' } })], { status: undefined })],
        {},
        now,
      )?.reference,
    ).toBe('Practitioner/a');
  });

  it('a rota: judged when the Task is due (its window’s start), or now when it is due already', () => {
    const nurse = { system: SNOMED, code: '224535009' };
    const rota = [
      team('t', [
        member('Practitioner/january', nurse, { period: { start: '2027-01-01', end: '2027-01-31T23:59:59Z' } }),
        member('Practitioner/february', nurse, { period: { start: '2027-02-01', end: '2027-02-28T23:59:59Z' } }),
      ]),
    ];
    const dueFeb = onDutyAt({ start: '2027-02-10T09:00:00Z', end: '2027-02-12T09:00:00Z' }, new Date('2027-01-20'));
    expect(dueFeb.toISOString()).toBe('2027-02-10T09:00:00.000Z');
    expect(careTeamOwner(NURSE, rota, {}, dueFeb)?.reference).toBe('Practitioner/february');
    // Due already, or no window: now.
    expect(onDutyAt({ start: '2027-01-02T00:00:00Z' }, new Date('2027-01-20')).toISOString()).toBe(
      '2027-01-20T00:00:00.000Z',
    );
    expect(onDutyAt(undefined, new Date('2027-01-20')).toISOString()).toBe('2027-01-20T00:00:00.000Z');
    // Nobody on the rota then: nobody's, not whoever is on duty now.
    expect(careTeamOwner(NURSE, rota, {}, new Date('2027-04-01'))).toBeUndefined();
  });
});
