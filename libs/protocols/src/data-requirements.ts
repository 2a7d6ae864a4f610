import type { DataRequirement, PlanDefinition } from '@medplum/fhirtypes';
import { flattenActions } from './catalog';

export interface PatientDataQuery {
  /** The FHIRPath variable the result is bound to (DataRequirement.id). */
  name: string;
  resourceType: string;
  params: Record<string, string>;
  /**
   * No `limit`: the rules see every match (a contraindicating Condition may be the patient's 1,001st), so the
   * reader follows next links past the first page. With a limit, the first `limit` matches are the answer.
   */
  everyMatch: boolean;
}

/** The page an input without a limit is read in: the most Medplum's server answers in one page. */
export const EVERY_MATCH_PAGE = 1000;

/** Searches that fetch what a PlanDefinition's action.input asks for, for one patient. */
export function patientDataQueries(plan: PlanDefinition, patientId: string): PatientDataQuery[] {
  const inputs = flattenActions(plan.action ?? []).flatMap((a) => a.input ?? []);
  return inputs
    .filter((input): input is DataRequirement & { id: string } => Boolean(input.id))
    .map((input) => toQuery(input, patientId));
}

function toQuery(input: DataRequirement & { id: string }, patientId: string): PatientDataQuery {
  const params: Record<string, string> = { subject: `Patient/${patientId}` };
  for (const filter of input.codeFilter ?? []) {
    if (filter.path !== 'code' || !filter.code?.length) continue;
    params.code = filter.code.map((c) => (c.system ? `${c.system}|${c.code}` : `${c.code}`)).join(',');
  }
  const sort = input.sort?.map((s) => (s.direction === 'descending' ? '-' : '') + s.path).join(',');
  if (sort) params._sort = sort;
  params._count = String(input.limit ?? EVERY_MATCH_PAGE);
  return { name: input.id, resourceType: input.type, params, everyMatch: !input.limit };
}
