import * as path from 'node:path';
import type { CommunicationRequest, Task } from '@medplum/fhirtypes';
import { PROTOCOL_ACTION_EXTENSION, PROTOCOL_WINDOW_EXTENSION, ProtocolCatalog, protocolActionOf } from '@kc/protocols';
import { awaitingApproval, heldTask, ordersToHold, transition } from '@kc/task-states';
import {
  deliveryDecision,
  plannedReminders,
  reminderAsSent,
  reminderChanges,
  reminderRuleOf,
  reminderRulesFor,
  remindersEndedBy,
  type PlannedReminder,
} from './reminders';
import { noticeIfDecidedNow, shortNotice } from './reminder-notice';
import { planEndedForDeath } from './deceased-patients';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const lowDose = catalog.findPlanDefinition('ketamine-low-dose-series')!;
const NOW = new Date('2027-01-01T00:00:00.000Z');

function approvedTask(action: string, start: string, end: string): Task & { id: string } {
  const draft: Task = {
    resourceType: 'Task',
    id: `t-${action}`,
    ...awaitingApproval(),
    description: action,
    for: { reference: 'Patient/p1' },
    basedOn: [{ reference: 'CarePlan/cp1' }, { reference: 'RequestGroup/rg1' }],
    restriction: { period: { start, end } },
    extension: [{ url: PROTOCOL_ACTION_EXTENSION, valueString: action }],
  };
  return { ...transition(draft, { event: 'approve', now: NOW }), id: draft.id! };
}

function remindersOf(task: Task & { id: string }, now = NOW, zone?: string): Record<string, PlannedReminder> {
  const rules = reminderRulesFor({ plan: lowDose, definitions: catalog }, protocolActionOf(task));
  return Object.fromEntries(plannedReminders(task, rules, now, zone).map((r) => [r.actionId, r]));
}

describe('reminder rules (fhir-profiles)', () => {
  it('every session kind gets a ride-home, a fasting and a no-driving reminder, timed from its window start', () => {
    for (const action of ['infusion-session', 'next-induction-session', 'maintenance-booster']) {
      const planned = remindersOf(approvedTask(action, '2027-01-10T09:00:00.000Z', '2027-01-10T12:00:00.000Z'));
      expect(Object.keys(planned).sort()).toEqual(['reminder-fasting', 'reminder-no-driving', 'reminder-ride-home']);
      expect(planned['reminder-ride-home'].request.occurrenceDateTime).toBe('2027-01-08T09:00:00.000Z');
      expect(planned['reminder-fasting'].request.occurrenceDateTime).toBe('2027-01-09T15:00:00.000Z');
      expect(planned['reminder-no-driving'].request.occurrenceDateTime).toBe('2027-01-10T09:00:00.000Z');
    }
  });

  it("days before a session count on the clinic's calendar: the ride home two days before 09:00 is at 09:00", () => {
    // 09:00 EDT on Monday 15 March 2027; the clocks went forward on Sunday the 14th.
    const planned = remindersOf(
      approvedTask('infusion-session', '2027-03-15T13:00:00.000Z', '2027-03-15T16:00:00.000Z'),
      NOW,
      'America/New_York',
    );
    expect(planned['reminder-ride-home'].request.occurrenceDateTime).toBe('2027-03-13T14:00:00.000Z'); // 09:00 EST
    // Hours are hours: the fasting reminder 18 h before the start.
    expect(planned['reminder-fasting'].request.occurrenceDateTime).toBe('2027-03-14T19:00:00.000Z');
  });

  it('goes out saying when what it is about is, in the clinic’s days; as planned when the Task has no window', () => {
    const task = approvedTask('infusion-session', '2027-03-15T13:00:00.000Z', '2027-03-15T16:00:00.000Z');
    const ride = remindersOf(task)['reminder-ride-home'].request;
    const sent = reminderAsSent(ride, task, 'America/New_York');
    expect(sent.payload?.map((p) => p.contentString)).toEqual([
      ride.payload![0].contentString,
      'It is booked for Monday 15 March 2027 at 09:00 EDT.',
    ]);
    expect(reminderAsSent(ride, { ...task, restriction: undefined })).toBe(ride);
  });

  it('the post-infusion check gets its reminder 5 days into its window; instructions get none', () => {
    const check = remindersOf(
      approvedTask('post-infusion-check', '2027-01-04T10:00:00.000Z', '2027-01-11T10:00:00.000Z'),
    );
    expect(Object.keys(check)).toEqual(['reminder-one-week-check']);
    expect(check['reminder-one-week-check'].request).toMatchObject({
      occurrenceDateTime: '2027-01-09T10:00:00.000Z',
      about: [{ reference: 'Task/t-post-infusion-check' }],
      basedOn: [{ reference: 'CarePlan/cp1' }],
      status: 'active',
    });
    expect(
      remindersOf(approvedTask('patient-instructions', '2027-01-01T00:00:00.000Z', '2027-01-02T00:00:00.000Z')),
    ).toEqual({});
  });

  it('none once the window has closed', () => {
    const task = approvedTask('infusion-session', '2026-12-01T09:00:00.000Z', '2026-12-01T12:00:00.000Z');
    expect(remindersOf(task)).toEqual({});
  });
});

describe('shortNotice (fhir-profiles: the fasting instruction needs 6 hours)', () => {
  const session = approvedTask('infusion-session', '2027-01-10T09:00:00.000Z', '2027-01-10T12:00:00.000Z');
  const rules = reminderRulesFor({ plan: lowDose, definitions: catalog }, 'infusion-session');
  const planned = remindersOf(session);
  const ruleFor = (kind: string) => reminderRuleOf({ ...planned[kind].request, id: kind }, rules);
  const at = (iso: string) => new Date(iso);

  it('finds the rule a reminder on record was planned by, from its key', () => {
    expect(ruleFor('reminder-fasting')?.action.id).toBe('reminder-fasting');
    expect(ruleFor('reminder-ride-home')?.action.id).toBe('reminder-ride-home');
  });

  it('nothing to say when the fasting reminder goes out 6 hours or more before the session', () => {
    const rule = ruleFor('reminder-fasting');
    expect(shortNotice({ rule, task: session, now: at('2027-01-09T15:00:00.000Z') })).toBeUndefined();
    expect(shortNotice({ rule, task: session, now: at('2027-01-10T03:00:00.000Z') })).toBeUndefined();
  });

  it('with less, says how much notice the patient got and what the instruction needs', () => {
    const rule = ruleFor('reminder-fasting');
    expect(shortNotice({ rule, task: session, now: at('2027-01-10T06:20:00.000Z') })).toBe(
      'Sent 2 h 40 min before the window of “infusion-session” opened (2027-01-10 09:00 UTC); this instruction needs 6 hours ' +
        'of notice: confirm with the patient before the infusion.',
    );
    expect(shortNotice({ rule, task: session, now: at('2027-01-10T08:15:00.000Z') })).toMatch(/^Sent 45 min before/);
    // After the window opened: only when a clinician booked the session to that slot. The protocol's own window
    // (days wide, not yet booked) is not the session's time, and booking it reminds the patient again.
    const booked = {
      ...session,
      extension: [
        ...session.extension!,
        {
          url: PROTOCOL_WINDOW_EXTENSION,
          valuePeriod: { start: '2027-01-08T00:00:00.000Z', end: '2027-01-21T00:00:00.000Z' },
        },
      ],
    };
    expect(shortNotice({ rule, task: booked, now: at('2027-01-10T10:00:00.000Z') })).toMatch(
      /^Sent after the window of “infusion-session” opened/,
    );
    const unbooked = { ...booked, restriction: { period: booked.extension.at(-1)!.valuePeriod } };
    expect(shortNotice({ rule, task: unbooked, now: at('2027-01-10T10:00:00.000Z') })).toBeUndefined();
    expect(shortNotice({ rule, task: unbooked, now: at('2027-01-07T20:00:00.000Z') })).toMatch(/^Sent 4 h before/);
  });

  it('reminders whose instruction needs no notice (a ride home, no driving) never say so', () => {
    for (const kind of ['reminder-ride-home', 'reminder-no-driving'])
      expect(shortNotice({ rule: ruleFor(kind), task: session, now: at('2027-01-10T08:59:00.000Z') })).toBeUndefined();
  });
});

describe('noticeIfDecidedNow (the worklist warns before a clinician approves)', () => {
  const rules = reminderRulesFor({ plan: lowDose, definitions: catalog }, 'infusion-session');
  // Awaiting approval, its window the protocol's (not booked): 2027-01-10 09:00 to 12:00.
  const awaiting: Task = {
    ...approvedTask('infusion-session', '2027-01-10T09:00:00.000Z', '2027-01-10T12:00:00.000Z'),
    ...awaitingApproval(),
  };
  const at = (iso: string) => new Date(iso);

  it('nothing while every reminder would still go out with the notice it needs', () => {
    // The fasting reminder's time (18 h before) has passed, but sent now it still gives 7 h.
    expect(noticeIfDecidedNow({ rules, task: awaiting, now: at('2027-01-10T02:00:00.000Z') })).toBeUndefined();
  });

  it('says which reminder would go out short, and by how much', () => {
    expect(noticeIfDecidedNow({ rules, task: awaiting, now: at('2027-01-10T05:30:00.000Z') })).toBe(
      'Approving now sends “Reminder: nothing to eat or drink for 6 hours before” 3 h 30 min before the window opens; ' +
        'it needs 6 hours of notice.',
    );
  });

  it('a window already open and not booked: no warning (booking it reminds the patient again)', () => {
    expect(noticeIfDecidedNow({ rules, task: awaiting, now: at('2027-01-10T10:00:00.000Z') })).toBeUndefined();
  });
});

describe('reminderChanges', () => {
  const task = approvedTask('infusion-session', '2027-01-10T09:00:00.000Z', '2027-01-10T12:00:00.000Z');
  const planned = Object.values(remindersOf(task));

  it('moves the active one of a kind, creates what is missing, and re-creates a kind already sent for another time', () => {
    const onRecord = planned.map((p, i) => ({ ...p.request, id: `cr${i}` }));
    onRecord[0] = { ...onRecord[0], occurrenceDateTime: '2027-01-01T00:00:00.000Z' };
    onRecord[1] = { ...onRecord[1], status: 'completed', occurrenceDateTime: '2027-01-01T00:00:00.000Z' };
    const { create, move } = reminderChanges(planned, onRecord.slice(0, 2));
    expect(create.map((c) => c.occurrenceDateTime)).toEqual([
      planned[1].request.occurrenceDateTime,
      planned[2].request.occurrenceDateTime,
    ]);
    expect(move).toEqual([{ ...onRecord[0], occurrenceDateTime: planned[0].request.occurrenceDateTime }]);
  });

  it('writes nothing when every kind is on record for its time, sent or not', () => {
    const onRecord = planned.map(
      (p, i) => ({ ...p.request, id: `cr${i}`, status: i ? 'completed' : 'active' }) as const,
    );
    expect(reminderChanges(planned, onRecord)).toEqual({ create: [], move: [] });
  });

  it('makes one revoked for that very time active again (approved again after its order was closed in the EHR)', () => {
    const onRecord = planned.map((p, i) => ({
      ...p.request,
      id: `cr${i}`,
      status: i === 0 ? ('revoked' as const) : ('completed' as const),
      statusReason: i === 0 ? { text: 'Not to be given now: its order was cancelled in the EHR' } : undefined,
    }));
    const { create, move } = reminderChanges(planned, onRecord);
    expect(create).toEqual([]);
    const { statusReason: _gone, ...again } = onRecord[0];
    expect(move).toEqual([{ ...again, status: 'active' }]);
  });
});

describe('deliveryDecision', () => {
  const task = approvedTask('infusion-session', '2027-01-10T09:00:00.000Z', '2027-01-10T12:00:00.000Z');
  const request: CommunicationRequest = {
    ...remindersOf(task)['reminder-fasting'].request,
    id: 'cr1',
  };
  const at = request.occurrenceDateTime!;
  const decide = (over: Partial<Parameters<typeof deliveryDecision>[0]>) =>
    deliveryDecision({ request, plannedAt: at, task, now: new Date('2027-01-09T15:00:00.000Z'), ...over });

  it('sends an active reminder at its time about an approved, open Task', () => {
    expect(decide({})).toEqual({ action: 'send' });
  });
  it('a job queued for an earlier time stands down and points at the new time', () => {
    expect(decide({ plannedAt: '2027-01-05T00:00:00.000Z' })).toEqual({ action: 'reschedule', sendAt: at });
  });
  it('does nothing for a request that is no longer active', () => {
    expect(decide({ request: { ...request, status: 'revoked' } })).toMatchObject({ action: 'skip' });
  });
  it('revokes a reminder whose session was rejected, superseded or done, or no longer exists', () => {
    const rejected = transition(task, { event: 'reject', now: NOW, reason: 'no' });
    const done = transition(task, { event: 'complete', now: NOW });
    expect(decide({ task: rejected })).toMatchObject({ action: 'revoke' });
    expect(decide({ task: done })).toMatchObject({ action: 'revoke' });
    expect(decide({ task: undefined })).toMatchObject({ action: 'revoke' });
  });
  it('holds a reminder, unsent, while a contraindication gating its session awaits a clinician', () => {
    expect(decide({ contraindications: [] })).toEqual({ action: 'send' });
    expect(decide({ contraindications: ['Pregnancy on record'] })).toEqual({
      action: 'skip',
      why: 'Not sent: a contraindication on its plan awaits a clinician (Pregnancy on record)',
    });
  });
  it('keeps a reminder unsent, not revoked, while its session is held with its order', () => {
    const [{ held: order }] = ordersToHold(
      [{ resourceType: 'MedicationRequest', id: 'o', status: 'active', intent: 'order', subject: {} }],
      [{ resourceType: 'DetectedIssue', id: 'd1', status: 'preliminary' }],
    );
    expect(decide({ task: heldTask(task, order) })).toEqual({
      action: 'skip',
      why: 'Not sent: its session is on hold for a contraindication',
    });
  });
  it('revokes a reminder whose plan was stopped, over or entered in error; keeps one of a paused plan unsent', () => {
    const carePlan = { resourceType: 'CarePlan', status: 'active', intent: 'plan', subject: {} } as const;
    expect(decide({ carePlan })).toEqual({ action: 'send' });
    expect(decide({ carePlan: { ...carePlan, status: 'revoked' } })).toEqual({
      action: 'revoke',
      why: 'Not sent: its care plan was stopped (revoked)',
    });
    expect(decide({ carePlan: { ...carePlan, status: 'completed' } })).toMatchObject({ action: 'revoke' });
    expect(decide({ carePlan: { ...carePlan, status: 'on-hold' } })).toEqual({
      action: 'skip',
      why: 'its care plan is on hold',
    });
  });
  it("sends a post-infusion check's reminder under a plan stopped, completed or paused since; not under one ended for a death or in error", () => {
    const check: Task = {
      ...task,
      focus: undefined,
      reasonReference: { reference: 'Procedure/infusion-1' },
      description: 'Post-infusion check',
    };
    const carePlan = { resourceType: 'CarePlan', status: 'active', intent: 'plan', subject: {} } as const;
    for (const status of ['revoked', 'completed', 'on-hold'] as const)
      expect(decide({ task: check, carePlan: { ...carePlan, status } })).toEqual({ action: 'send' });
    expect(decide({ task: check, carePlan: { ...carePlan, status: 'entered-in-error' } })).toEqual({
      action: 'revoke',
      why: 'Not sent: its care plan was entered in error',
    });
    const endedForDeath = planEndedForDeath(carePlan, NOW)!;
    expect(decide({ task: check, carePlan: endedForDeath })).toMatchObject({ action: 'revoke' });
  });
  it('revokes the reminder of a Task already done (a check recorded early), saying so', () => {
    expect(decide({ task: { ...task, status: 'completed', description: 'Post-infusion check' } })).toEqual({
      action: 'revoke',
      why: 'Not sent: the Post-infusion check was already done',
    });
  });
  it('revokes a reminder that could only go out after its session window closed', () => {
    expect(decide({ now: new Date('2027-01-10T12:00:00.000Z') })).toMatchObject({ action: 'revoke' });
  });
});

describe('remindersEndedBy (an infusion answered the Tasks)', () => {
  const session = approvedTask('infusion-session', '2027-01-10T09:00:00.000Z', '2027-01-10T12:00:00.000Z');
  const booster = approvedTask('maintenance-booster', '2027-02-20T09:00:00.000Z', '2027-03-06T12:00:00.000Z');
  const withIds = (task: Task & { id: string }): CommunicationRequest[] =>
    Object.values(remindersOf(task)).map((r) => ({ ...r.request, id: `${task.id}-${r.actionId}` }));
  const ofSession = withIds(session);
  const ofBooster = withIds(booster);
  const by = { reference: 'Procedure/pr9', display: 'infusion of 2027-01-04' };

  it("revokes every pending reminder of a done or superseded Task, saying why, and no other Task's", () => {
    const ended = remindersEndedBy(
      [
        { task: session, outcome: 'done', by },
        { task: booster, outcome: 'superseded', by },
      ],
      [...ofSession, ...ofBooster, { ...ofSession[0], id: 'other', about: [{ reference: 'Task/t-other' }] }],
    );
    expect(ended.map((r) => r.id).sort()).toEqual([...ofSession, ...ofBooster].map((r) => r.id).sort());
    expect(ended.every((r) => r.status === 'revoked')).toBe(true);
    expect(ended.find((r) => r.id === ofSession[0].id)!.statusReason!.text).toBe(
      'Not sent: the infusion-session took place (infusion of 2027-01-04)',
    );
    expect(ended.find((r) => r.id === ofBooster[0].id)!.statusReason!.text).toBe(
      'Not sent: the maintenance-booster is no longer planned (superseded by the infusion of 2027-01-04)',
    );
  });

  it('leaves reminders already sent or revoked, and CommunicationRequests that are not reminders', () => {
    const [first, second, third] = ofSession;
    const notOurs = { ...third, identifier: [{ system: 'urn:other', value: 'x' }] };
    const ended = remindersEndedBy(
      [{ task: session, outcome: 'done', by }],
      [{ ...first, status: 'completed' }, { ...second, status: 'revoked' }, notOurs],
    );
    expect(ended).toEqual([]);
  });
});
