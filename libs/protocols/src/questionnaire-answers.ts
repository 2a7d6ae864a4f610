import { evalFhirPath, toTypedValue, validationRegexes } from '@medplum/core';
import type {
  Coding,
  Extension,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireItemAnswerOption,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';

/** SDC and core extensions the answers are checked and calculated with (all data in the Questionnaire). */
export const CALCULATED_EXPRESSION_EXTENSION =
  'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';
export const MIN_VALUE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/minValue';
export const MAX_VALUE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/maxValue';
export const OPTION_EXCLUSIVE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive';

/** One thing wrong with the answers, by the question it concerns (its linkId), in words for the clinician. */
export interface AnswerProblem {
  linkId: string;
  text: string;
}

export class AnswersRefused extends Error {
  constructor(readonly problems: AnswerProblem[]) {
    super(problems.map((p) => p.text).join('; '));
  }
}

/** The answer types this service takes, by item type (R4 QuestionnaireResponse.item.answer.value[x]). */
const VALUE_KEY: Partial<Record<QuestionnaireItem['type'], keyof QuestionnaireResponseItemAnswer>> = {
  integer: 'valueInteger',
  decimal: 'valueDecimal',
  boolean: 'valueBoolean',
  string: 'valueString',
  text: 'valueString',
  choice: 'valueCoding',
  date: 'valueDate',
  dateTime: 'valueDateTime',
};

/**
 * The answers to a Questionnaire, checked against it and laid out as it is: every answered question exists, each
 * answer has the question's type (a choice one of its options), a question that does not repeat has one answer,
 * required questions are answered, numbers lie within minValue/maxValue, an exclusive option ("No effects") stands
 * alone. Read-only questions with a calculatedExpression (SDC) are calculated here from the other answers: whatever
 * a client sent for them is replaced. Answers may come nested as the Questionnaire's groups or flat; they come back
 * nested. Throws AnswersRefused listing every problem.
 */
export function checkAnswers(
  questionnaire: Questionnaire,
  sent: QuestionnaireResponseItem[],
): QuestionnaireResponseItem[] {
  const problems: AnswerProblem[] = [];
  const questions = new Map(flattenItems(questionnaire.item ?? []).map((i) => [i.linkId, i]));
  const answered = new Map<string, QuestionnaireResponseItemAnswer[]>();
  for (const item of flattenItems(sent)) {
    if (!item.answer?.length) continue;
    const question = questions.get(item.linkId);
    if (!question)
      problems.push({ linkId: item.linkId, text: `"${item.linkId}" is not a question of ${titleOf(questionnaire)}` });
    else if (answered.has(item.linkId))
      problems.push({ linkId: item.linkId, text: `${labelOf(question)} is answered twice` });
    else answered.set(item.linkId, item.answer);
  }
  const laidOut = layOut(questionnaire.item ?? [], answered, problems);
  if (problems.length) throw new AnswersRefused(problems);
  return calculate(questionnaire, laidOut);
}

/** Every item of a tree, groups included, depth first. */
export function flattenItems<T extends { item?: T[] }>(items: T[]): T[] {
  return items.flatMap((i) => [i, ...flattenItems(i.item ?? [])]);
}

/** The answers of a response by linkId, wherever they are nested. */
export function answersByLinkId(items: QuestionnaireResponseItem[]): Map<string, QuestionnaireResponseItemAnswer[]> {
  return new Map(flattenItems(items).flatMap((i) => (i.answer?.length ? [[i.linkId, i.answer] as const] : [])));
}

function layOut(
  items: QuestionnaireItem[],
  answered: Map<string, QuestionnaireResponseItemAnswer[]>,
  problems: AnswerProblem[],
): QuestionnaireResponseItem[] {
  const out: QuestionnaireResponseItem[] = [];
  for (const item of items) {
    if ((item.type === 'group' || item.type === 'display') && answered.has(item.linkId))
      problems.push({
        linkId: item.linkId,
        text: `${labelOf(item)} is a heading, not a question: answer the questions under it`,
      });
    if (item.type === 'display') continue;
    if (item.type === 'group') {
      const children = layOut(item.item ?? [], answered, problems);
      out.push({ linkId: item.linkId, text: item.text, item: children });
      continue;
    }
    if (isCalculated(item)) {
      out.push({ linkId: item.linkId, text: item.text });
      continue;
    }
    const answers = answered.get(item.linkId) ?? [];
    problems.push(...answerProblems(item, answers));
    out.push({
      linkId: item.linkId,
      text: item.text,
      ...(answers.length ? { answer: answers.map((a) => onlyValue(item, a)) } : {}),
    });
  }
  return out;
}

function answerProblems(item: QuestionnaireItem, answers: QuestionnaireResponseItemAnswer[]): AnswerProblem[] {
  const label = labelOf(item);
  const problem = (text: string) => ({ linkId: item.linkId, text });
  if (!answers.length) return item.required ? [problem(`${label} needs an answer`)] : [];
  if (answers.length > 1 && !item.repeats) return [problem(`${label} takes one answer, not ${answers.length}`)];
  const key = VALUE_KEY[item.type];
  if (!key) return [problem(`${label} is a ${item.type} question, which this service does not take answers to`)];
  const problems: AnswerProblem[] = [];
  for (const answer of answers) {
    const value = answer[key];
    if (!isValueOf(item.type, value)) {
      problems.push(problem(`${label} needs ${WHAT[item.type] ?? item.type} (${key})`));
      continue;
    }
    if (typeof value === 'number') {
      const min = numberExtension(item.extension, MIN_VALUE_EXTENSION);
      const max = numberExtension(item.extension, MAX_VALUE_EXTENSION);
      if ((min !== undefined && value < min) || (max !== undefined && value > max))
        problems.push(problem(`${label}: ${value} is outside ${min ?? '…'} .. ${max ?? '…'}`));
    }
    if (item.type === 'choice' && !optionOf(item, value as Coding))
      problems.push(problem(`${label}: "${(value as Coding).code}" is not one of its options (${optionCodes(item)})`));
  }
  if (item.type === 'choice' && answers.length > 1) {
    const exclusive = answers.map((a) => optionOf(item, a.valueCoding!)).find((o) => o && isExclusive(o));
    if (exclusive)
      problems.push(problem(`${label}: “${exclusive.valueCoding?.display}” cannot be given with other answers`));
  }
  return problems;
}

const WHAT: Partial<Record<QuestionnaireItem['type'], string>> = {
  integer: 'a whole number',
  decimal: 'a number',
  boolean: 'yes or no',
  string: 'text',
  text: 'text',
  choice: 'one of its options',
  date: 'a date',
  dateTime: 'a date and time',
};

/** A value of the item's type as FHIR defines it (what the FHIR server's own validation would take: its regexes). */
function isValueOf(type: QuestionnaireItem['type'], value: unknown): boolean {
  switch (type) {
    case 'integer':
      return Number.isInteger(value) && Math.abs(value as number) <= FHIR_INTEGER_MAX;
    case 'decimal':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'choice':
      return typeof value === 'object' && value !== null && typeof (value as Coding).code === 'string';
    default: {
      const pattern = validationRegexes[type === 'text' ? 'string' : type] ?? validationRegexes.string;
      return typeof value === 'string' && value.trim().length > 0 && value.length <= MAX_TEXT && pattern.test(value);
    }
  }
}

const FHIR_INTEGER_MAX = 2_147_483_647;
/** A note longer than this is not a note (the body limit bounds the request; this bounds one answer). */
const MAX_TEXT = 10_000;

/** The answer with its value alone, a choice's coding as the Questionnaire words it. */
function onlyValue(item: QuestionnaireItem, answer: QuestionnaireResponseItemAnswer): QuestionnaireResponseItemAnswer {
  const key = VALUE_KEY[item.type]!;
  if (item.type === 'choice') return { valueCoding: optionOf(item, answer.valueCoding!)?.valueCoding };
  return { [key]: answer[key] };
}

function optionOf(item: QuestionnaireItem, coding: Coding): QuestionnaireItemAnswerOption | undefined {
  return item.answerOption?.find(
    (o) => o.valueCoding?.code === coding.code && (!coding.system || o.valueCoding?.system === coding.system),
  );
}

function optionCodes(item: QuestionnaireItem): string {
  return (item.answerOption ?? []).map((o) => o.valueCoding?.code).join(', ');
}

function isExclusive(option: QuestionnaireItemAnswerOption): boolean {
  return option.extension?.some((e) => e.url === OPTION_EXCLUSIVE_EXTENSION && e.valueBoolean) ?? false;
}

function isCalculated(item: QuestionnaireItem): boolean {
  return item.extension?.some((e) => e.url === CALCULATED_EXPRESSION_EXTENSION) ?? false;
}

function numberExtension(extensions: Extension[] | undefined, url: string): number | undefined {
  const e = extensions?.find((x) => x.url === url);
  return e?.valueInteger ?? e?.valueDecimal;
}

/**
 * Fills the calculated questions, in the Questionnaire's order, each from the answers so far (`%resource` is the
 * response). An expression that gives nothing (an input unanswered) leaves its question unanswered.
 */
function calculate(questionnaire: Questionnaire, items: QuestionnaireResponseItem[]): QuestionnaireResponseItem[] {
  const response = { resourceType: 'QuestionnaireResponse', status: 'completed', item: items };
  const byLinkId = new Map(flattenItems(items).map((i) => [i.linkId, i]));
  for (const item of flattenItems(questionnaire.item ?? []).filter(isCalculated)) {
    const expression = item.extension!.find((e) => e.url === CALCULATED_EXPRESSION_EXTENSION)!.valueExpression!
      .expression!;
    const [value] = evalFhirPath(expression, response, { '%resource': toTypedValue(response) });
    const key = VALUE_KEY[item.type];
    const target = byLinkId.get(item.linkId);
    if (target && key && value !== undefined && isValueOf(item.type, value)) target.answer = [{ [key]: value }];
  }
  return items;
}

function labelOf(item: QuestionnaireItem): string {
  return `“${item.text ?? item.linkId}”`;
}

function titleOf(questionnaire: Questionnaire): string {
  return questionnaire.title ?? questionnaire.name ?? 'the questionnaire';
}
