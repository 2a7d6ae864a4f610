import * as path from 'node:path';
import type { Procedure, Task } from '@medplum/fhirtypes';
import { PROTOCOL_ACTION_EXTENSION, ProtocolCatalog, SERVICE_CODE_SYSTEM } from '@kc/protocols';
import { toInfusionCompleted } from './infusion-event';
import { carePlanTakesFollowUps } from './care-plan-state';
import { completedInfusionCount, infusionDefinitionFor, isInfusion, sameTimeInfusions } from './infusion-history';
import { infusionFollowUpActions, infusionTaskUpdates, applyInfusionUpdate } from './superseded';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const lowDose = infusionDefinitionFor(catalog.findPlanDefinition('ketamine-low-dose-series')!, catalog);

const infusion = (id: string, end: string, extra: Partial<Procedure> = {}): Procedure => ({
  resourceType: 'Procedure',
  id,
  status: 'completed',
  subject: { reference: 'Patient/p1' },
  basedOn: [{ reference: 'CarePlan/cp-1' }],
  code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002' }] },
  performedPeriod: { start: end, end },
  ...extra,
});

const eventOf = (procedure: Procedure) => {
  const check = toInfusionCompleted(procedure);
  if (!check.ok) throw new Error(check.reason);
  return check.event;
};

describe('which procedures are the protocol infusions', () => {
  it('takes the infusion code from the ActivityDefinition the follow-up rules are anchored on', () => {
    expect(lowDose.codes).toContainEqual(
      expect.objectContaining({ system: 'http://snomed.info/sct', code: '14152002' }),
    );
    expect(lowDose.canonicals).toContain(
      'https://ketamine-careplans.example/fhir/ActivityDefinition/ketamine-low-dose-infusion|1.0.0',
    );
  });

  it('recognises an infusion by code or by instantiatesCanonical, and nothing else', () => {
    expect(isInfusion(infusion('a', '2027-01-01T10:00:00Z'), lowDose)).toBe(true);
    const byDefinition = infusion('b', '2027-01-01T10:00:00Z', {
      code: { text: 'ketamine' },
      instantiatesCanonical: ['https://ketamine-careplans.example/fhir/ActivityDefinition/ketamine-low-dose-infusion'],
    });
    expect(isInfusion(byDefinition, lowDose)).toBe(true);
    const checkUp = infusion('c', '2027-01-01T10:00:00Z', {
      code: { coding: [{ system: 'http://snomed.info/sct', code: '185389009' }] },
    });
    expect(isInfusion(checkUp, lowDose)).toBe(false);
  });
});

describe('completedInfusionCount', () => {
  const history = [
    infusion('i1', '2027-01-01T10:00:00Z'),
    infusion('i2', '2027-01-04T10:00:00Z'),
    infusion('i3', '2027-01-07T10:00:00Z'),
    infusion('planned', '2027-01-02T10:00:00Z', { status: 'in-progress' }),
    infusion('other-plan', '2027-01-02T10:00:00Z', { basedOn: [{ reference: 'CarePlan/cp-2' }] }),
    infusion('not-an-infusion', '2027-01-02T10:00:00Z', { code: { text: 'follow-up visit' } }),
  ];

  it('counts completed infusions on the same CarePlan that ended no later than this one', () => {
    expect(completedInfusionCount(eventOf(history[1]), history, lowDose)).toBe(2);
    expect(completedInfusionCount(eventOf(history[2]), history, lowDose)).toBe(3);
  });

  it('gives the same answer when processed late, after later infusions are on record', () => {
    const early = eventOf(history[0]);
    expect(completedInfusionCount(early, history.slice(0, 1), lowDose)).toBe(1);
    expect(completedInfusionCount(early, history, lowDose)).toBe(1);
  });

  it('counts the triggering infusion even when the search has not indexed it yet', () => {
    expect(completedInfusionCount(eventOf(history[2]), history.slice(0, 2), lowDose)).toBe(3);
  });

  it('counts an infusion charted twice (overlapping times on the plan) once, whichever copy the event is', () => {
    const hour = (h: number) => `2027-01-04T${String(h).padStart(2, '0')}:00:00Z`;
    const span = (id: string, start: number, end: number) =>
      infusion(id, hour(end), { performedPeriod: { start: hour(start), end: hour(end) } });
    const twice = [
      infusion('i1', '2027-01-01T10:00:00Z'),
      span('i2', 9, 10),
      span('i2-again', 9, 10),
      span('i2-corrected', 9, 11),
    ];
    expect(completedInfusionCount(eventOf(twice[2]), twice, lowDose)).toBe(2);
    expect(completedInfusionCount(eventOf(twice[3]), twice, lowDose)).toBe(2);
    const later = infusion('i3', '2027-01-07T10:00:00Z');
    expect(completedInfusionCount(eventOf(later), [...twice, later], lowDose)).toBe(3);
    expect(sameTimeInfusions(eventOf(twice[1]), twice, lowDose).map((p) => p.id)).toEqual(['i2-again', 'i2-corrected']);
    expect(sameTimeInfusions(eventOf(later), [...twice, later], lowDose)).toEqual([]);
  });

  it('takes records closer together than one infusion lasts (the protocol’s dosage duration) for one infusion', () => {
    const highDose = infusionDefinitionFor(catalog.findPlanDefinition('ketamine-high-dose-as-needed')!, catalog);
    expect([lowDose.lengthMs, highDose.lengthMs]).toEqual([40 * 60_000, 60 * 60_000]);
    const ran = infusion('ran', '2027-01-04T10:00:00Z', {
      performedPeriod: { start: '2027-01-04T09:20:00Z', end: '2027-01-04T10:00:00Z' },
    });
    const at = (id: string, instant: string) =>
      infusion(id, instant, { performedPeriod: undefined, performedDateTime: instant });
    const chartedLater = at('charted', '2027-01-04T10:39:00Z');
    const nextSession = at('next', '2027-01-04T10:41:00Z');
    expect(sameTimeInfusions(eventOf(chartedLater), [ran, chartedLater], lowDose).map((p) => p.id)).toEqual(['ran']);
    expect(sameTimeInfusions(eventOf(nextSession), [ran, nextSession], lowDose)).toEqual([]);
    // The high-dose infusion lasts an hour: 41 minutes apart is the same one.
    expect(sameTimeInfusions(eventOf(nextSession), [ran, nextSession], highDose).map((p) => p.id)).toEqual(['ran']);
    expect(completedInfusionCount(eventOf(chartedLater), [ran, chartedLater], lowDose)).toBe(1);
    expect(completedInfusionCount(eventOf(nextSession), [ran, nextSession], lowDose)).toBe(2);
  });
});

describe('carePlanTakesFollowUps', () => {
  it('refuses closed plans and accepts draft and active ones', () => {
    const plan = { resourceType: 'CarePlan', intent: 'plan', subject: { reference: 'Patient/p1' } } as const;
    expect(carePlanTakesFollowUps({ ...plan, status: 'active' }).ok).toBe(true);
    expect(carePlanTakesFollowUps({ ...plan, status: 'draft' }).ok).toBe(true);
    expect(carePlanTakesFollowUps({ ...plan, status: 'revoked' })).toEqual({
      ok: false,
      reason: 'CarePlan is revoked',
    });
  });
});

describe('infusionTaskUpdates', () => {
  const plan = catalog.findPlanDefinition('ketamine-low-dose-series')!;
  const actions = infusionFollowUpActions(plan, catalog, lowDose);
  const task = (
    id: string,
    action: string,
    trigger: string | undefined,
    start: string,
    state: 'awaiting-approval' | 'rejected' = 'awaiting-approval',
  ): Task => ({
    resourceType: 'Task',
    id,
    status: state === 'rejected' ? 'rejected' : 'draft',
    intent: 'plan',
    businessStatus: { coding: [{ system: SERVICE_CODE_SYSTEM, code: state }] },
    reasonReference: trigger ? { reference: trigger } : undefined,
    restriction: { period: { start, end: '2027-03-01T00:00:00Z' } },
    extension: [{ url: PROTOCOL_ACTION_EXTENSION, valueString: action }],
  });
  const history = [infusion('i1', '2027-01-01T10:00:00Z'), infusion('i2', '2027-01-04T10:00:00Z')];
  const openTasks = [
    task('from-apply', 'infusion-session', undefined, '2026-12-20T00:00:00Z'),
    task('next-from-i1', 'next-induction-session', 'Procedure/i1', '2027-01-03T00:00:00Z'),
    task('check-from-i1', 'post-infusion-check', 'Procedure/i1', '2027-01-01T00:00:00Z'),
    task('next-from-i2', 'next-induction-session', 'Procedure/i2', '2027-01-06T00:00:00Z'),
    task('rejected-from-i1', 'maintenance-booster', 'Procedure/i1', '2027-02-01T00:00:00Z', 'rejected'),
  ];
  const updates = (event: Procedure, all = openTasks) =>
    infusionTaskUpdates({
      event: eventOf(event),
      procedure: event,
      openTasks: all,
      history,
      definition: lowDose,
      infusionActions: actions,
    });

  it('the actions that plan an infusion are the first session, the next session and the booster, not the check', () => {
    expect([...actions].sort()).toEqual(['infusion-session', 'maintenance-booster', 'next-induction-session']);
  });

  it('the first infusion fulfils the first-session Task from $apply (done, output the Procedure)', () => {
    const result = updates(history[0], [openTasks[0]]);
    expect(result.map((u) => [u.task.id, u.outcome])).toEqual([['from-apply', 'done']]);
    expect(applyInfusionUpdate(result[0], new Date())).toMatchObject({
      status: 'completed',
      businessStatus: { coding: [{ code: 'done' }] },
      output: [{ valueReference: { reference: 'Procedure/i1' } }],
    });
  });

  it('the second infusion fulfils the next session planned by the first; the first session was the first infusion', () => {
    const result = updates(history[1], openTasks.slice(1));
    expect(result.map((u) => [u.task.id, u.outcome, u.by.reference])).toEqual([
      ['next-from-i1', 'done', 'Procedure/i2'],
    ]);
    // Handled in either order, the first session is answered by i1 and the next one by i2.
    for (const event of [history[0], history[1]]) {
      expect(updates(event).map((u) => [u.task.id, u.outcome, u.by.reference])).toEqual([
        ['from-apply', 'done', 'Procedure/i1'],
        ['next-from-i1', 'done', 'Procedure/i2'],
      ]);
    }
  });

  it('two Tasks answered by the same infusion: the one due soonest is done, the other superseded', () => {
    const booster = task('booster-from-i1', 'maintenance-booster', 'Procedure/i1', '2027-02-10T00:00:00Z');
    const result = updates(history[1], [openTasks[1], booster]);
    expect(result.map((u) => [u.task.id, u.outcome])).toEqual([
      ['next-from-i1', 'done'],
      ['booster-from-i1', 'superseded'],
    ]);
    expect(applyInfusionUpdate(result[1], new Date())).toMatchObject({
      status: 'cancelled',
      businessStatus: { coding: [{ code: 'superseded' }] },
      statusReason: { text: 'Superseded: a later infusion was completed' },
    });
  });

  it('a Procedure that names its Task in basedOn fulfils that one', () => {
    const booster = task('booster-from-i1', 'maintenance-booster', 'Procedure/i1', '2027-02-10T00:00:00Z');
    const named = { ...history[1], basedOn: [...(history[1].basedOn ?? []), { reference: 'Task/booster-from-i1' }] };
    const result = infusionTaskUpdates({
      event: eventOf(named),
      procedure: named,
      openTasks: [openTasks[1], booster],
      history: [history[0], named],
      definition: lowDose,
      infusionActions: actions,
    });
    expect(result.find((u) => u.outcome === 'done')?.task.id).toBe('booster-from-i1');
  });

  describe("a session the pump recorded giving during this infusion is this infusion's, done", () => {
    const approved = (t: Task): Task => ({
      ...t,
      status: 'ready',
      businessStatus: { coding: [{ system: SERVICE_CODE_SYSTEM, code: 'approved' }] },
    });
    const given = (event: Procedure, tasks: Task[], recorded: Procedure[], givenTaskIds: string[]) =>
      infusionTaskUpdates({
        event: eventOf(event),
        procedure: event,
        openTasks: tasks,
        history: recorded,
        definition: lowDose,
        infusionActions: actions,
        givenTaskIds: new Set(givenTaskIds),
        begunTaskIds: new Set(givenTaskIds),
      }).map((u) => [u.task.id, u.outcome, u.by.reference]);

    it('when the infusion that planned it is no longer on record (entered in error): not left open', () => {
      // Before: "planned by an infusion no longer on record" left it to the clinician, approved with its order active
      // after the pump gave it (found by the clinic day, its plan then stopped with the session open).
      const session = approved(task('next-from-i1', 'next-induction-session', 'Procedure/i1', '2027-01-03T00:00:00Z'));
      expect(given(history[1], [session], [history[1]], ['next-from-i1'])).toEqual([
        ['next-from-i1', 'done', 'Procedure/i2'],
      ]);
    });

    it('when another infusion came between its planning and this one: this one gave it', () => {
      const session = approved(task('next-from-i1', 'next-induction-session', 'Procedure/i1', '2027-01-03T00:00:00Z'));
      const between = infusion('i1b', '2027-01-02T10:00:00Z');
      expect(given(history[1], [session], [history[0], between, history[1]], ['next-from-i1'])).toEqual([
        ['next-from-i1', 'done', 'Procedure/i2'],
      ]);
    });

    it('two sessions it gave in one infusion are both done, neither superseded (their orders were given)', () => {
      const next = approved(task('next-from-i1', 'next-induction-session', 'Procedure/i1', '2027-01-03T00:00:00Z'));
      const booster = approved(task('booster-from-i1', 'maintenance-booster', 'Procedure/i1', '2027-02-10T00:00:00Z'));
      expect(given(history[1], [next, booster], history, ['next-from-i1', 'booster-from-i1'])).toEqual([
        ['next-from-i1', 'done', 'Procedure/i2'],
        ['booster-from-i1', 'done', 'Procedure/i2'],
      ]);
    });
  });
});
