import * as path from 'node:path';
import type { CommunicationRequest, Period, Task } from '@medplum/fhirtypes';
import { PROTOCOL_ACTION_EXTENSION, PROTOCOL_WINDOW_EXTENSION, ProtocolCatalog } from '@kc/protocols';
import { awaitingApproval, stateOf, transition, windowAsSet, windowMovedOutside, withWindow } from '@kc/task-states';
import { plannedReminders, reminderRulesFor } from './reminders';
import { changesOfWindowMovedInEhr, dueOutsideProtocolWindow } from './windows-moved-in-ehr';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const rules = reminderRulesFor(
  { plan: catalog.findPlanDefinition('ketamine-low-dose-series')!, definitions: catalog },
  'infusion-session',
);
const NOW = new Date('2027-01-01T00:00:00.000Z');
const SET: Period = { start: '2027-01-10T09:00:00.000Z', end: '2027-01-10T12:00:00.000Z' };
const ALLOWED: Period = { start: '2027-01-08T00:00:00.000Z', end: '2027-01-15T00:00:00.000Z' };

function draft(): Task & { id: string } {
  const task: Task = withWindow(
    {
      resourceType: 'Task',
      id: 't1',
      meta: { versionId: '3' },
      ...awaitingApproval(),
      description: 'Infusion session',
      basedOn: [{ reference: 'CarePlan/cp1' }],
      extension: [
        { url: PROTOCOL_ACTION_EXTENSION, valueString: 'infusion-session' },
        { url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: ALLOWED },
      ],
    },
    SET,
  );
  return { ...task, id: 't1' };
}
const approved = () => ({ ...transition(draft(), { event: 'approve', now: NOW }), id: 't1' });
const movedTo = <T extends Task>(task: T, period: Period): T => ({ ...task, restriction: { period } });
/** The reminders its approval wrote, as on record. */
const onRecord = (task: Task & { id: string }): CommunicationRequest[] =>
  plannedReminders(task, rules, NOW).map((r, i) => ({ ...r.request, id: `r${i}`, meta: { versionId: '1' } }));

describe('the window this service set (window-as-set)', () => {
  it('is written with every window set here; a window edited elsewhere differs from it, as instants', () => {
    expect(windowAsSet(draft())).toEqual(SET);
    expect(windowMovedOutside(draft())).toBe(false);
    // The same instants written otherwise are not a move.
    expect(
      windowMovedOutside(movedTo(draft(), { start: '2027-01-10T09:00:00Z', end: '2027-01-10T12:00:00+00:00' })),
    ).toBe(false);
    expect(windowMovedOutside(movedTo(draft(), { ...SET, start: '2027-01-11T09:00:00.000Z' }))).toBe(true);
    // A clinician's reschedule sets it.
    const rescheduled = transition(draft(), { event: 'reschedule', now: NOW, window: ALLOWED });
    expect([windowAsSet(rescheduled), windowMovedOutside(rescheduled)]).toEqual([ALLOWED, false]);
  });

  it('says nothing of a Task without it (written before session 44, or by someone else), nor of a closed one', () => {
    const { extension: _all, ...bare } = draft();
    expect(windowMovedOutside(movedTo(bare as Task, ALLOWED))).toBe(false);
    const rejected = transition(draft(), { event: 'reject', now: NOW, reason: 'no' });
    expect(windowMovedOutside(movedTo(rejected, ALLOWED))).toBe(false);
  });
});

describe('a window moved in the EHR, followed', () => {
  const later: Period = { start: '2027-01-12T09:00:00.000Z', end: '2027-01-12T12:00:00.000Z' };

  it('an approved session: each reminder moves to its time for the new window, the window is the one set', () => {
    const task = approved();
    const changes = changesOfWindowMovedInEhr({
      task: movedTo(task, later),
      rules,
      reminders: onRecord(task),
      now: NOW,
    });
    expect(changes?.create).toEqual([]);
    expect(changes?.move.map((r) => [r.id, r.occurrenceDateTime])).toEqual(
      onRecord(task).map((r) => [r.id, new Date(Date.parse(r.occurrenceDateTime!) + 2 * 86_400_000).toISOString()]),
    );
    expect([changes?.task.restriction?.period, windowAsSet(changes!.task), stateOf(changes!.task)]).toEqual([
      later,
      later,
      'approved',
    ]);
    expect(changes?.reason).toMatch(/^Its window was moved outside ketamine-careplans, from 2027-01-10 09:00/);
    expect(windowMovedOutside(changes!.task)).toBe(false);
  });

  it('a reminder sent for the old time: a new one for the new time (the patient is told of the new date)', () => {
    const task = approved();
    const sent = onRecord(task).map((r) => ({ ...r, status: 'completed' as const }));
    const changes = changesOfWindowMovedInEhr({ task: movedTo(task, later), rules, reminders: sent, now: NOW });
    expect([changes?.move, changes?.create.length]).toEqual([[], sent.length]);
  });

  it('awaiting approval: no reminders; overdue and due again, awaiting approval (approved: rescheduled)', () => {
    const future = { start: '2027-02-01T09:00:00.000Z', end: '2027-02-01T12:00:00.000Z' };
    const after = new Date('2027-01-20T00:00:00.000Z');
    const overdueDraft = { ...transition(draft(), { event: 'mark-overdue', now: after }), id: 't1' };
    const followed = changesOfWindowMovedInEhr({
      task: movedTo(overdueDraft, future),
      rules,
      reminders: [],
      now: after,
    });
    expect([followed?.task.status, stateOf(followed!.task), followed?.create, followed?.move]).toEqual([
      'draft',
      'awaiting-approval',
      [],
      [],
    ]);
    const overdueApproved = { ...transition(approved(), { event: 'mark-overdue', now: after }), id: 't1' };
    const again = changesOfWindowMovedInEhr({
      task: movedTo(overdueApproved, future),
      rules,
      reminders: [],
      now: after,
    });
    expect([again?.task.status, stateOf(again!.task)]).toEqual(['ready', 'rescheduled']);
    // Moved to another window that has ended too: overdue still.
    const past = { start: '2027-01-16T09:00:00.000Z', end: '2027-01-16T12:00:00.000Z' };
    const still = changesOfWindowMovedInEhr({ task: movedTo(overdueDraft, past), rules, reminders: [], now: after });
    expect(stateOf(still!.task)).toBe('overdue');
  });

  it('not moved: nothing to do', () => {
    expect(changesOfWindowMovedInEhr({ task: approved(), rules, reminders: [], now: NOW })).toBeUndefined();
  });
});

describe('a due window outside its protocol window', () => {
  it('is said with the window the protocol allows; within it, or either unknown, nothing', () => {
    expect(dueOutsideProtocolWindow({ start: '2027-01-20T09:00:00Z', end: '2027-01-20T12:00:00Z' }, ALLOWED)).toBe(
      'Due outside its protocol window (2027-01-08 00:00 .. 2027-01-15 00:00 (UTC))',
    );
    expect(dueOutsideProtocolWindow(SET, ALLOWED)).toBeUndefined();
    expect(dueOutsideProtocolWindow(SET, undefined)).toBeUndefined();
  });
});
