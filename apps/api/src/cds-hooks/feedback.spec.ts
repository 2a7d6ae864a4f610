import type { OperationOutcome } from '@medplum/fhirtypes';
import { OutcomeException } from '@kc/common';
import { parseFeedback } from './feedback';

const CARD = '4f1e6b1c-2d3a-4b5c-8d9e-0f1a2b3c4d5e';
const AT = '2026-12-02T10:15:00Z';

/** The OperationOutcome location a refused body names. */
function refusedAt(body: unknown): string | undefined {
  try {
    parseFeedback(body);
  } catch (err) {
    expect(err).toBeInstanceOf(OutcomeException);
    return ((err as OutcomeException).getResponse() as OperationOutcome).issue?.[0].expression?.[0];
  }
  throw new Error('accepted');
}

describe('CDS Hooks feedback body (pure)', () => {
  it('accepted with its suggestions, overridden with a reason and a comment, as the spec shapes them', () => {
    const feedback = parseFeedback({
      feedback: [
        { card: CARD, outcome: 'accepted', acceptedSuggestions: [{ id: CARD }], outcomeTimestamp: AT },
        {
          card: `urn:uuid:${CARD}`,
          outcome: 'overridden',
          overrideReason: {
            reason: { system: 'https://ehr.example/reasons', code: 'benefit-outweighs-risk' },
            userComment: 'Discussed with the patient',
          },
          outcomeTimestamp: '2026-12-02T11:15:00.123+01:00',
        },
      ],
    });
    expect(feedback.map((f) => [f.outcome, f.acceptedSuggestions?.length, f.overrideReason?.reason?.code])).toEqual([
      ['accepted', 1, undefined],
      ['overridden', undefined, 'benefit-outweighs-risk'],
    ]);
  });

  it('anything else is refused, naming where', () => {
    expect(refusedAt({})).toBe('feedback');
    expect(refusedAt({ feedback: [] })).toBe('feedback');
    expect(refusedAt({ feedback: [{ card: 'card-1', outcome: 'accepted', outcomeTimestamp: AT }] })).toBe(
      'feedback[0].card',
    );
    expect(refusedAt({ feedback: [{ card: CARD, outcome: 'ignored', outcomeTimestamp: AT }] })).toBe(
      'feedback[0].outcome',
    );
    expect(refusedAt({ feedback: [{ card: CARD, outcome: 'accepted', outcomeTimestamp: '2026-12-02' }] })).toBe(
      'feedback[0].outcomeTimestamp',
    );
    expect(
      refusedAt({
        feedback: [{ card: CARD, outcome: 'overridden', acceptedSuggestions: [{ id: CARD }], outcomeTimestamp: AT }],
      }),
    ).toBe('feedback[0].acceptedSuggestions');
    expect(
      refusedAt({
        feedback: [{ card: CARD, outcome: 'accepted', overrideReason: { userComment: 'no' }, outcomeTimestamp: AT }],
      }),
    ).toBe('feedback[0].overrideReason');
    expect(
      refusedAt({
        feedback: Array.from({ length: 101 }, () => ({ card: CARD, outcome: 'accepted', outcomeTimestamp: AT })),
      }),
    ).toBe('feedback');
  });
});
