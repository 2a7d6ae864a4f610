import type { Appointment, Task } from '@medplum/fhirtypes';
import { PROTOCOL_WINDOW_EXTENSION } from '@kc/protocols';
import { awaitingApproval, transition } from '@kc/task-states';
import { bookingFor } from './appointment-booking';

const now = new Date('2027-01-01T00:00:00Z');

/** An approved infusion session of Patient/p1: due 4-6 January, the protocol allowing 3-10 January. */
const session = (id: string, due = { start: '2027-01-04T00:00:00Z', end: '2027-01-06T23:59:59Z' }): Task =>
  transition(
    {
      resourceType: 'Task',
      id,
      ...awaitingApproval(),
      for: { reference: 'Patient/p1' },
      focus: { reference: `MedicationRequest/proposal-${id}` },
      restriction: { period: due },
      extension: [
        { url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: { start: '2027-01-03T00:00:00Z', end: '2027-01-10T23:59:59Z' } },
      ],
    },
    { event: 'approve', now },
  );

const appointment = (extra: Partial<Appointment> = {}): Appointment => ({
  resourceType: 'Appointment',
  id: 'appt-1',
  status: 'booked',
  start: '2027-01-05T14:00:00Z',
  end: '2027-01-05T15:00:00Z',
  participant: [
    { actor: { reference: 'Practitioner/nurse' }, status: 'accepted' },
    { actor: { reference: 'Patient/p1' }, status: 'accepted' },
  ],
  ...extra,
});

describe('an appointment booked in the scheduling system: the session it is for', () => {
  it("the patient's approved session whose protocol window holds it: booked at the appointment's start and end", () => {
    const booking = bookingFor(appointment(), [session('s1')]);
    expect(booking).toEqual({
      task: expect.objectContaining({ id: 's1' }) as Task,
      window: { start: '2027-01-05T14:00:00.000Z', end: '2027-01-05T15:00:00.000Z' },
    });
  });

  it('one whose serviceType says it is for another service books nothing, unless it names the session', () => {
    const INFUSION = { system: 'http://snomed.info/sct', code: '14152002' };
    const psychiatry = { serviceType: [{ coding: [{ system: 'http://snomed.info/sct', code: '394913002' }] }] };
    expect(bookingFor(appointment(psychiatry), [session('s1')], [INFUSION])).toEqual({
      none: 'it is for another service (its serviceType is not an infusion)',
    });
    expect(
      bookingFor(
        appointment({ ...psychiatry, supportingInformation: [{ reference: 'Task/s1' }] }),
        [session('s1')],
        [INFUSION],
      ),
    ).toMatchObject({ task: { id: 's1' } });
    const infusion = { serviceType: [{ coding: [INFUSION] }] };
    expect(bookingFor(appointment(infusion), [session('s1')], [INFUSION])).toMatchObject({ task: { id: 's1' } });
  });

  it('the Task it names, else of several the one due then, else the soonest due', () => {
    const first = session('first');
    const second = session('second', { start: '2027-01-07T00:00:00Z', end: '2027-01-08T23:59:59Z' });
    const taskOf = (b: ReturnType<typeof bookingFor>) => ('task' in b ? b.task.id : 'none' in b ? b.none : 'cancelled');
    expect(
      taskOf(bookingFor(appointment({ supportingInformation: [{ reference: 'Task/second' }] }), [first, second])),
    ).toBe('second');
    expect(
      taskOf(bookingFor(appointment({ start: '2027-01-07T09:00:00Z', end: '2027-01-07T10:00:00Z' }), [first, second])),
    ).toBe('second');
    expect(
      taskOf(bookingFor(appointment({ start: '2027-01-09T09:00:00Z', end: '2027-01-09T10:00:00Z' }), [second, first])),
    ).toBe('first');
  });

  it('none: no slot held, no times, no patient, no approved session, outside the protocol window, booked already', () => {
    const none = (a: Appointment, tasks = [session('s1')]) => {
      const b = bookingFor(a, tasks);
      return 'none' in b ? b.none : 'task' in b ? b.task.id : `cancelled ${b.cancelled.id}`;
    };
    expect(none(appointment({ status: 'noshow' }))).toBe('it holds no slot (noshow)');
    expect(none(appointment({ status: 'proposed' }))).toBe('it holds no slot (proposed)');
    expect(none(appointment({ end: undefined }))).toBe('it has no start and end');
    expect(none(appointment({ participant: [{ actor: { reference: 'Practitioner/x' }, status: 'accepted' }] }))).toBe(
      'it names no patient',
    );
    const draft: Task = { ...session('d'), status: 'draft' };
    expect(none(appointment(), [draft])).toBe('the patient has no approved session');
    expect(none(appointment({ start: '2027-01-12T09:00:00Z', end: '2027-01-12T10:00:00Z' }))).toBe(
      "it is outside every approved session's protocol window",
    );
    expect(
      none(
        appointment({
          start: '2027-01-12T09:00:00Z',
          end: '2027-01-12T10:00:00Z',
          supportingInformation: [{ reference: 'Task/s1' }],
        }),
      ),
    ).toBe("it is outside the session's protocol window, 2027-01-03 00:00 .. 2027-01-10 23:59 (UTC)");
    // In the clinic's days and times.
    expect(
      bookingFor(
        appointment({
          start: '2027-01-12T09:00:00Z',
          end: '2027-01-12T10:00:00Z',
          supportingInformation: [{ reference: 'Task/s1' }],
        }),
        [session('s1')],
        [],
        'America/New_York',
      ),
    ).toEqual({
      none: "it is outside the session's protocol window, 2027-01-02 19:00 .. 2027-01-10 18:59 (America/New_York)",
    });
    expect(none(appointment({ basedOn: [{ reference: 'Task/other' }] }))).toBe(
      'the Task it names is not an approved session of the patient',
    );
    const booked = session('b', { start: '2027-01-05T14:00:00.000Z', end: '2027-01-05T15:00:00.000Z' });
    expect(none(appointment(), [booked])).toBe('the session is booked at that time already');
  });

  it('cancelled: the session booked at its slot is at no time now (once); one never booked there is left alone', () => {
    const slot = { start: '2027-01-05T14:00:00.000Z', end: '2027-01-05T15:00:00.000Z' };
    const booked = session('b', slot);
    const cancelled = appointment({ status: 'cancelled' });
    const outcome = bookingFor(cancelled, [session('other'), booked]);
    expect(outcome).toEqual({
      cancelled: booked,
      why: 'Its appointment was cancelled in the scheduling system (Appointment/appt-1): book it again',
    });
    // Told already (a notification again), or booked at another time since: nothing.
    const told = { ...booked, statusReason: { text: (outcome as { why: string }).why } };
    expect(bookingFor(cancelled, [told])).toEqual({ none: 'the session says its appointment was cancelled already' });
    expect(bookingFor(cancelled, [session('elsewhere')])).toEqual({
      none: 'no approved session is booked at its time',
    });
    expect(bookingFor(appointment({ status: 'entered-in-error' }), [booked])).toMatchObject({ cancelled: booked });
  });
});
