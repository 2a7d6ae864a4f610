import * as path from 'node:path';
import type { CarePlan, Period, Procedure, Task } from '@medplum/fhirtypes';
import { ProtocolCatalog, protocolWindowOf } from '@kc/protocols';
import { stateOf, transition, windowAsSet } from '@kc/task-states';
import { bodyWeight, searchset } from '../../../test/fixtures/patient-data';
import { toInfusionCompleted } from './infusion-event';
import { followUpWindow, planFollowUps } from './plan-follow-ups';
import { followUpsOfRetimedInfusion, performedTimesOf } from './retimed-infusions';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const plan = catalog.findPlanDefinition('ketamine-low-dose-series')!;
const DAY_MS = 86_400_000;
const charted: Procedure = {
  resourceType: 'Procedure',
  id: 'proc-1',
  status: 'completed',
  subject: { reference: 'Patient/p1' },
  basedOn: [{ reference: 'CarePlan/cp-1' }],
  performedPeriod: { start: '2027-01-04T09:00:00.000Z', end: '2027-01-04T10:00:00.000Z' },
};
const shifted = (p: Period, ms: number): Period => ({
  start: new Date(Date.parse(p.start!) + ms).toISOString(),
  end: new Date(Date.parse(p.end!) + ms).toISOString(),
});
/** The infusion as corrected in the EHR: `ms` later (negative: earlier) than first charted. */
const retimed = (ms: number, from: Procedure = charted): Procedure => ({
  ...from,
  performedPeriod: shifted(from.performedPeriod!, ms),
});

/** The follow-up Tasks written for the infusion as charted, on `now`, each with an id as the server gave it. */
function followUpsWritten(procedure: Procedure = charted, now = new Date('2027-01-04T10:05:00Z')): Task[] {
  const carePlan: CarePlan = { resourceType: 'CarePlan', id: 'cp-1', status: 'active', intent: 'plan', subject: {} };
  const check = toInfusionCompleted(procedure);
  if (!check.ok) throw new Error(check.reason);
  const planned = planFollowUps({
    event: check.event,
    carePlan,
    plan,
    catalog,
    completedInfusionCount: 1,
    patientData: {
      bodyWeight: searchset(bodyWeight(80)),
      bloodPressure: searchset(),
      pregnancyStatus: searchset(),
      conditions: searchset(),
    },
    now,
  });
  return planned.followUps.map((f) => ({ ...f.task, id: f.actionId }));
}

const recount = (versions: Procedure[], tasks: Task[]) =>
  followUpsOfRetimedInfusion({ procedureId: 'proc-1', versions, tasks, plan });
const action = (id: string) => plan.action!.flatMap((a) => [a, ...(a.action ?? [])]).find((a) => a.id === id)!;

describe('follow-ups of an infusion re-timed in the EHR', () => {
  it('counts the proposed windows again from the infusion’s time now: the check and the next session one day earlier', () => {
    const tasks = followUpsWritten();
    expect(tasks.map((t) => t.id)).toEqual(['next-induction-session', 'post-infusion-check']);
    const earlier = retimed(-DAY_MS);
    const recounted = recount([earlier, charted], tasks);

    expect(recounted.map((r) => [r.task.id, r.dueMoved])).toEqual([
      ['next-induction-session', true],
      ['post-infusion-check', true],
    ]);
    for (const { task } of recounted) {
      const window = followUpWindow(action(task.id), earlier.performedPeriod!);
      expect(task.restriction?.period).toEqual(window);
      expect(protocolWindowOf(task)).toEqual(window);
      // A day earlier than written, whole (the offsets count from the infusion's end).
      const written = tasks.find((t) => t.id === task.id)!;
      expect(window).toEqual(shifted(written.restriction!.period!, -DAY_MS));
    }
    expect(recounted[1].reason).toBe(
      'The infusion it follows was re-timed in the EHR, from 2027-01-04 09:00 .. 2027-01-04 10:00 (UTC) to ' +
        '2027-01-03 09:00 .. 2027-01-03 10:00 (UTC): its protocol window is now 2027-01-03 10:00 .. 2027-01-10 10:00 ' +
        '(UTC), and it is due then (was 2027-01-04 10:00 .. 2027-01-11 10:00 (UTC))',
    );
  });

  it('a clinician’s reschedule stands, its protocol window moves; one outside it now says so', () => {
    const [session, check] = followUpsWritten();
    // Approved for the last day of its protocol window (two days long), then the infusion is put two days earlier.
    const window = session.restriction!.period!;
    expect(Date.parse(window.end!) - Date.parse(window.start!)).toBe(2 * DAY_MS);
    const lastDays = { start: shifted(window, -DAY_MS).end, end: window.end };
    const rescheduled = {
      ...transition(session, { event: 'reschedule', now: new Date(), window: lastDays }),
      id: 'next-induction-session',
    };
    const [recounted, ...more] = recount([retimed(-2 * DAY_MS), charted], [rescheduled]);
    expect(more).toEqual([]);
    expect(recounted.dueMoved).toBe(false);
    expect(recounted.task.restriction?.period).toEqual(lastDays);
    expect(protocolWindowOf(recounted.task)).toEqual(shifted(protocolWindowOf(session)!, -2 * DAY_MS));
    expect(recounted.reason).toMatch(
      /its due window \(.*\), set by the clinic, stands\. Due outside its protocol window/,
    );
    // The check, untouched by anyone, moves.
    expect(recount([retimed(-2 * DAY_MS), charted], [check])[0].dueMoved).toBe(true);
  });

  it('a window moved in the EHR is the EHR’s: only the protocol window moves', () => {
    const [, check] = followUpsWritten();
    const moved = { ...check, restriction: { period: shifted(check.restriction!.period!, DAY_MS) } };
    const [recounted] = recount([retimed(-DAY_MS), charted], [moved]);
    expect(recounted.dueMoved).toBe(false);
    expect(recounted.task.restriction?.period).toEqual(moved.restriction.period);
    // Not yet followed: its stamp is still the window set here (changesOfNewWindow, or the EHR's follow, stamps it).
    expect(windowAsSet(recounted.task)).toEqual(check.restriction?.period);
  });

  it('nothing when the time did not change, the infusion is no longer completed, or the Task is not an open follow-up of it', () => {
    const tasks = followUpsWritten();
    const noted: Procedure = { ...charted, note: [{ text: 'tolerated well' }] };
    expect(recount([noted, charted], tasks)).toEqual([]);
    expect(recount([{ ...retimed(-DAY_MS), status: 'entered-in-error' }, charted], tasks)).toEqual([]);
    expect(recount([charted], tasks)).toEqual([]);
    const done = { ...transition(tasks[0], { event: 'complete', now: new Date() }), id: tasks[0].id };
    const ofAnother = { ...tasks[1], reasonReference: { reference: 'Procedure/other' } };
    const cancelledInEhr = { ...tasks[0], status: 'cancelled' as const };
    expect(recount([retimed(-DAY_MS), charted], [done, ofAnother, cancelledInEhr])).toEqual([]);
  });

  it('re-timed twice: counted from the latest, whichever time the Task was counted from', () => {
    const tasks = followUpsWritten();
    const once = retimed(-DAY_MS);
    const recountedOnce = recount([once, charted], tasks).map((r) => ({
      ...transition(r.task, { event: 'follow-window', now: new Date() }),
      id: r.task.id,
    }));
    const twice = retimed(-3 * DAY_MS);
    // Counted once already (from `once`), and one never counted (written from `charted`): both from `twice`.
    const recounted = recount([twice, once, charted], [recountedOnce[0], tasks[1]]);
    expect(recounted.map((r) => [r.task.id, r.task.restriction?.period])).toEqual([
      ['next-induction-session', followUpWindow(action('next-induction-session'), twice.performedPeriod!)],
      ['post-infusion-check', followUpWindow(action('post-infusion-check'), twice.performedPeriod!)],
    ]);
  });

  it('an infusion charted late (its check written from then on) and put right: the check’s week as the protocol says, past', () => {
    // Charted ten days after it happened: the check's week had ended, so it was written due from the day charted.
    const late = new Date('2027-01-14T10:05:00Z');
    const [, check] = followUpsWritten(charted, late);
    expect(Date.parse(check.restriction!.period!.start!)).toBe(late.getTime());
    const [recounted] = recount([retimed(-DAY_MS), charted], [check]);
    expect(recounted.dueMoved).toBe(true);
    expect(recounted.task.restriction?.period).toEqual(
      followUpWindow(action('post-infusion-check'), retimed(-DAY_MS).performedPeriod!),
    );
    expect(stateOf(recounted.task)).toBe('awaiting-approval');
  });

  it('performedTimesOf: the time now first, then each earlier completed time once', () => {
    const a = retimed(-DAY_MS);
    expect(performedTimesOf([a, charted, a, { ...charted, status: 'in-progress' }])).toEqual([
      a.performedPeriod,
      charted.performedPeriod,
    ]);
    expect(performedTimesOf([{ ...a, status: 'entered-in-error' }, charted])).toEqual([]);
  });
});
