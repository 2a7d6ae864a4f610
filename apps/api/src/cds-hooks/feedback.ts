import type { Coding } from '@medplum/fhirtypes';
import { badRequest } from '@kc/common';

/**
 * Pure: the body of a CDS Hooks 2.0 feedback call (POST /cds-services/{id}/feedback), checked as the spec defines
 * it: `{"feedback": [{card, outcome, acceptedSuggestions?, overrideReason?, outcomeTimestamp}]}`, suggestions only
 * with `accepted`, a reason only with `overridden`.
 */

export interface CdsFeedback {
  /** The uuid of the card the user acted on. */
  card: string;
  outcome: 'accepted' | 'overridden';
  acceptedSuggestions?: { id: string }[];
  /** `userComment` is free text a clinician typed: it may name the patient, so it is never logged. */
  overrideReason?: { reason?: Coding; userComment?: string };
  outcomeTimestamp: string;
}

const UUID = /^(urn:uuid:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** More than a client could send for one user's actions at once. */
const MAX_FEEDBACK = 100;

export function parseFeedback(body: unknown): CdsFeedback[] {
  const list = (body as { feedback?: unknown } | undefined)?.feedback;
  if (!Array.isArray(list) || !list.length) throw badRequest('The body must be {"feedback": [...]}', ['feedback']);
  if (list.length > MAX_FEEDBACK) throw badRequest(`At most ${MAX_FEEDBACK} feedback entries a call`, ['feedback']);
  return list.map((entry, i) => parseEntry(entry, `feedback[${i}]`));
}

function parseEntry(entry: unknown, at: string): CdsFeedback {
  if (!entry || typeof entry !== 'object') throw badRequest('A feedback entry must be an object', [at]);
  const e = entry as Record<string, unknown>;
  if (typeof e.card !== 'string' || !UUID.test(e.card))
    throw badRequest('card must be the uuid of a card', [`${at}.card`]);
  if (e.outcome !== 'accepted' && e.outcome !== 'overridden')
    throw badRequest('outcome must be accepted or overridden', [`${at}.outcome`]);
  if (
    typeof e.outcomeTimestamp !== 'string' ||
    !INSTANT.test(e.outcomeTimestamp) ||
    isNaN(Date.parse(e.outcomeTimestamp))
  )
    throw badRequest('outcomeTimestamp must be an instant with a time zone', [`${at}.outcomeTimestamp`]);
  if (e.acceptedSuggestions !== undefined && e.outcome !== 'accepted')
    throw badRequest('acceptedSuggestions only come with outcome accepted', [`${at}.acceptedSuggestions`]);
  if (e.overrideReason !== undefined && e.outcome !== 'overridden')
    throw badRequest('overrideReason only comes with outcome overridden', [`${at}.overrideReason`]);
  const suggestions = e.acceptedSuggestions;
  if (
    suggestions !== undefined &&
    (!Array.isArray(suggestions) || suggestions.some((s) => typeof (s as { id?: unknown })?.id !== 'string'))
  )
    throw badRequest('acceptedSuggestions must be [{"id": "<suggestion uuid>"}]', [`${at}.acceptedSuggestions`]);
  const reason = e.overrideReason as CdsFeedback['overrideReason'] | undefined;
  if (reason !== undefined && (typeof reason !== 'object' || reason === null))
    throw badRequest('overrideReason must be {"reason": Coding, "userComment": "..."}', [`${at}.overrideReason`]);
  return {
    card: e.card,
    outcome: e.outcome,
    ...(suggestions ? { acceptedSuggestions: (suggestions as { id: string }[]).map((s) => ({ id: s.id })) } : {}),
    ...(reason ? { overrideReason: reason } : {}),
    outcomeTimestamp: e.outcomeTimestamp,
  };
}
