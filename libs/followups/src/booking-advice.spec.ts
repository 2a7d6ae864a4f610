import type { Appointment, Task } from '@medplum/fhirtypes';
import { PROTOCOL_WINDOW_EXTENSION } from '@kc/protocols';
import { awaitingApproval, transition } from '@kc/task-states';
import { bookingAdvice } from './booking-advice';

const now = new Date('2027-01-01T00:00:00Z');
const ALLOWED = { start: '2027-01-03T00:00:00Z', end: '2027-01-10T23:59:59Z' };

/** An infusion session of Patient/p1 due 4-6 January, the protocol allowing 3-10 January. */
const session = (id: string, approved: boolean): Task => {
  const proposed: Task = {
    resourceType: 'Task',
    id,
    ...awaitingApproval(),
    for: { reference: 'Patient/p1' },
    focus: { reference: `MedicationRequest/proposal-${id}` },
    restriction: { period: { start: '2027-01-04T00:00:00Z', end: '2027-01-06T23:59:59Z' } },
    extension: [{ url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: ALLOWED }],
  };
  return approved ? transition(proposed, { event: 'approve', now }) : proposed;
};

const at = (start: string): Appointment => ({
  resourceType: 'Appointment',
  status: 'proposed',
  start,
  end: new Date(Date.parse(start) + 3_600_000).toISOString(),
  participant: [{ actor: { reference: 'Patient/p1' }, status: 'needs-action' }],
});

describe('what booking an appointment means for the patient’s ketamine sessions', () => {
  const kind = (appointment: Appointment, tasks: Task[]) => bookingAdvice(appointment, 'Patient/p1', tasks).kind;

  it('an approved session may be given then; one held may not; one awaiting approval must be approved first', () => {
    expect(kind(at('2027-01-05T14:00:00Z'), [session('s', false), session('a', true)])).toBe('books');
    const held: Task = { ...session('h', true), status: 'on-hold', statusReason: { text: 'Held: pregnancy' } };
    expect(kind(at('2027-01-05T14:00:00Z'), [held])).toBe('on-hold');
    expect(kind(at('2027-01-05T14:00:00Z'), [session('s', false)])).toBe('not-approved');
  });

  it('outside every open session’s protocol window: the soonest due one’s window; no session or no time: unrelated', () => {
    expect(bookingAdvice(at('2027-01-20T14:00:00Z'), 'Patient/p1', [session('a', true)])).toMatchObject({
      kind: 'outside-window',
      allowed: ALLOWED,
    });
    expect(kind(at('2027-01-05T14:00:00Z'), [])).toBe('unrelated');
    expect(kind({ ...at('2027-01-05T14:00:00Z'), start: undefined, end: undefined }, [session('a', true)])).toBe(
      'unrelated',
    );
    // Another patient's sessions, or a closed one, are not this patient's.
    expect(kind(at('2027-01-05T14:00:00Z'), [{ ...session('x', true), for: { reference: 'Patient/p2' } }])).toBe(
      'unrelated',
    );
  });

  it('an appointment whose serviceType says it is for another service is not judged as a session', () => {
    const INFUSION = { system: 'http://snomed.info/sct', code: '14152002' };
    const typed = (code: string) => ({
      ...at('2027-01-20T14:00:00Z'),
      serviceType: [{ coding: [{ system: 'http://snomed.info/sct', code }] }],
    });
    const sessions = [session('s', false)];
    // A psychiatry review outside the session's window: no warning about the session.
    expect(bookingAdvice(typed('394913002'), 'Patient/p1', sessions, [INFUSION]).kind).toBe('unrelated');
    // Coded as the infusion, or not typed at all: judged by its time.
    expect(bookingAdvice(typed('14152002'), 'Patient/p1', sessions, [INFUSION]).kind).toBe('outside-window');
    expect(bookingAdvice(at('2027-01-20T14:00:00Z'), 'Patient/p1', sessions, [INFUSION]).kind).toBe('outside-window');
  });
});
