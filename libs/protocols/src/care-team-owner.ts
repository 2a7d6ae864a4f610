import type { CareTeam, CarePlan, CodeableConcept, Period, Task } from '@medplum/fhirtypes';

/** Who a Task can be given to from a care team: a practitioner, or one in a role (Task.owner). */
const MEMBER = /^(Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64}$/;

/**
 * Whose a new Task is on the patient's care team (FOLLOW_UP_OWNER=care-team): the first member at `now` (onDutyAt: when
 * the Task is due), in the role the
 * Task's performer is (performerTypeOf: the protocol's participant role, e.g. a nurse; codings compared by system and
 * code). The plan's own teams (`CarePlan.careTeam`) are asked first, then the patient's other active ones,
 * in the order read. Undefined: the Task names no performer, or nobody on the teams has that role (it is nobody's
 * until taken, as without a care team).
 */
export function careTeamOwner(
  performer: CodeableConcept | undefined,
  teams: CareTeam[],
  carePlan: Pick<CarePlan, 'careTeam'>,
  now: Date,
): Task['owner'] {
  const wanted = (performer?.coding ?? []).filter((c) => c.code);
  if (!wanted.length) return undefined;
  const planTeams = new Set((carePlan.careTeam ?? []).map((r) => r.reference));
  const ordered = [
    ...teams.filter((t) => planTeams.has(`CareTeam/${t.id}`)),
    ...teams.filter((t) => !planTeams.has(`CareTeam/${t.id}`)),
  ];
  for (const team of ordered) {
    if ((team.status && team.status !== 'active') || !during(team.period, now)) continue;
    for (const participant of team.participant ?? []) {
      const member = participant.member;
      if (!member?.reference || !MEMBER.test(member.reference) || !during(participant.period, now)) continue;
      const inRole = (participant.role ?? []).some((role) =>
        role.coding?.some((c) => wanted.some((w) => w.system === c.system && w.code === c.code)),
      );
      if (inRole) return { reference: member.reference, ...(member.display ? { display: member.display } : {}) };
    }
  }
  return undefined;
}

/**
 * When a new Task's owner is judged on the care team: when it is due (its window's start), so that membership periods
 * kept as a rota give it to whoever is on duty then; now, when it is due already or has no window.
 */
export function onDutyAt(window: Period | undefined, now: Date): Date {
  const start = Date.parse(window?.start ?? '');
  return start > now.getTime() ? new Date(start) : now;
}

/** Whether `now` falls within the period (open ends: always). */
function during(period: Period | undefined, now: Date): boolean {
  const t = now.getTime();
  const start = Date.parse(period?.start ?? '');
  const end = Date.parse(period?.end ?? '');
  return !(start > t) && !(end < t);
}
