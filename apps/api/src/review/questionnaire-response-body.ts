import type { QuestionnaireResponseItem } from '@medplum/fhirtypes';
import { badRequest } from '@kc/common';

const MAX_ITEMS = 200;
const LINK_ID = /^[A-Za-z0-9\-._]{1,64}$/;

/**
 * The items of a QuestionnaireResponse sent as a body, checked for shape only (items with a linkId, answers as
 * objects, nesting no deeper than a Questionnaire's groups): anything malformed is a 400 naming where. What the answers
 * mean is checked against the Questionnaire itself (libs/protocols checkAnswers).
 */
export function responseItemsOf(response: Record<string, unknown>): QuestionnaireResponseItem[] {
  if (response.resourceType !== 'QuestionnaireResponse')
    throw badRequest('response must be a QuestionnaireResponse', ['response.resourceType']);
  let count = 0;
  const items = (value: unknown, path: string, depth: number): QuestionnaireResponseItem[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw badRequest(`${path} must be a list of items`, [path]);
    if (depth > 5) throw badRequest(`${path} is nested too deep`, [path]);
    return value.map((item, i) => {
      const at = `${path}[${i}]`;
      if (++count > MAX_ITEMS) throw badRequest(`response holds more than ${MAX_ITEMS} items`, [at]);
      if (typeof item !== 'object' || item === null) throw badRequest(`${at} must be an item`, [at]);
      const { linkId, answer, item: children } = item as Record<string, unknown>;
      if (typeof linkId !== 'string' || !LINK_ID.test(linkId))
        throw badRequest(`${at}.linkId is missing or malformed`, [`${at}.linkId`]);
      if (answer !== undefined && (!Array.isArray(answer) || answer.some((a) => typeof a !== 'object' || a === null)))
        throw badRequest(`${at}.answer must be a list of answers`, [`${at}.answer`]);
      const nested = items(children, `${at}.item`, depth + 1);
      return {
        linkId,
        ...(answer ? { answer: answer as QuestionnaireResponseItem['answer'] } : {}),
        ...(nested.length ? { item: nested } : {}),
      };
    });
  };
  return items(response.item, 'response.item', 0);
}
