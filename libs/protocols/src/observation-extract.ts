import type {
  Observation,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import { answersByLinkId, OPTION_EXCLUSIVE_EXTENSION } from './questionnaire-answers';

export const OBSERVATION_EXTRACT_EXTENSION =
  'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-observationExtract';

/** Where extracted Observations belong: who, when, by whom, from which response, for which plan. */
export interface ExtractContext {
  subject: NonNullable<Observation['subject']>;
  /** When the answers describe (the check), as an instant. */
  effective: string;
  performer?: NonNullable<Observation['performer']>[number];
  /** The QuestionnaireResponse (a urn:uuid inside the transaction that writes both). */
  derivedFrom: NonNullable<Observation['derivedFrom']>[number];
  basedOn?: NonNullable<Observation['basedOn']>[number];
}

/**
 * SDC observation-based extraction: each answered question marked `observationExtract` (on itself or on its group)
 * and carrying a code becomes an Observation coded as the question, one per answer (a repeating choice gives one per
 * effect reported), `derivedFrom` the response. Numbers go in valueInteger, or valueQuantity in `{score}` for a
 * decimal (R4 Observation has no valueDecimal); a choice in valueCodeableConcept. Pure: the caller writes them.
 */
export function extractObservations(
  questionnaire: Questionnaire,
  answers: QuestionnaireResponseItem[],
  context: ExtractContext,
): Observation[] {
  const byLinkId = answersByLinkId(answers);
  return extractedQuestions(questionnaire).flatMap((item) =>
    (byLinkId.get(item.linkId) ?? []).flatMap((answer) => {
      const value = observationValue(answer);
      return value ? [observation(item, value, context)] : [];
    }),
  );
}

/** The questions whose answers become Observations, in the Questionnaire's order. */
export function extractedQuestions(questionnaire: Questionnaire): QuestionnaireItem[] {
  return extractable(questionnaire.item ?? [], false);
}

/** Questions to extract: marked themselves or inside a marked group, with a code to give the Observation. */
function extractable(items: QuestionnaireItem[], marked: boolean): QuestionnaireItem[] {
  return items.flatMap((item) => {
    const flag = item.extension?.find((e) => e.url === OBSERVATION_EXTRACT_EXTENSION)?.valueBoolean;
    const extract = flag ?? marked;
    if (item.type === 'group') return extractable(item.item ?? [], extract);
    return extract && item.code?.length ? [item] : [];
  });
}

function observationValue(answer: QuestionnaireResponseItemAnswer): Partial<Observation> | undefined {
  if (answer.valueInteger !== undefined) return { valueInteger: answer.valueInteger };
  if (answer.valueDecimal !== undefined)
    return {
      valueQuantity: {
        value: answer.valueDecimal,
        unit: '{score}',
        system: 'http://unitsofmeasure.org',
        code: '{score}',
      },
    };
  if (answer.valueCoding)
    return { valueCodeableConcept: { coding: [answer.valueCoding], text: answer.valueCoding.display } };
  if (answer.valueBoolean !== undefined) return { valueBoolean: answer.valueBoolean };
  if (answer.valueString !== undefined) return { valueString: answer.valueString };
  return undefined;
}

function observation(item: QuestionnaireItem, value: Partial<Observation>, context: ExtractContext): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey', display: 'Survey' },
        ],
      },
    ],
    code: { coding: item.code, text: item.text },
    subject: context.subject,
    effectiveDateTime: context.effective,
    issued: context.effective,
    ...(context.performer ? { performer: [context.performer] } : {}),
    ...(context.basedOn ? { basedOn: [context.basedOn] } : {}),
    derivedFrom: [context.derivedFrom],
    ...value,
  };
}

/**
 * The coded choices a set of Questionnaires extracts (the effects reported at a check): the questions' codes
 * (`system|code`, to search their Observations by) and the answers that report nothing (options marked exclusive,
 * "No effects").
 */
export function extractedChoices(questionnaires: Questionnaire[]): { codes: string[]; nothingReported: Set<string> } {
  const questions = questionnaires.flatMap(extractedQuestions).filter((q) => q.type === 'choice');
  const codes = questions.flatMap((q) => (q.code ?? []).map((c) => `${c.system}|${c.code}`));
  const nothingReported = questions.flatMap((q) =>
    (q.answerOption ?? [])
      .filter((o) => o.extension?.some((e) => e.url === OPTION_EXCLUSIVE_EXTENSION && e.valueBoolean))
      .map((o) => `${o.valueCoding?.system}|${o.valueCoding?.code}`),
  );
  return { codes: [...new Set(codes)], nothingReported: new Set(nothingReported) };
}
