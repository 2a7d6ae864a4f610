import type { DataRequirement, PlanDefinition } from '@medplum/fhirtypes';
import { flattenActions } from './catalog';
import { personRecords } from './patient-records';

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

/**
 * Searches that fetch what a PlanDefinition's action.input asks for, for one patient: under their record, and the other
 * records of the same person it links (`linked`, linkedPatientRecords: a merge that did not move their data).
 */
export function patientDataQueries(plan: PlanDefinition, patientId: string, linked: string[] = []): PatientDataQuery[] {
  const inputs = flattenActions(plan.action ?? []).flatMap((a) => a.input ?? []);
  const subject = personRecords(patientId, linked).join(',');
  return inputs
    .filter((input): input is DataRequirement & { id: string } => Boolean(input.id))
    .map((input) => toQuery(input, subject));
}

function toQuery(input: DataRequirement & { id: string }, subject: string): PatientDataQuery {
  const params: Record<string, string> = { subject };
  for (const filter of input.codeFilter ?? []) {
    if (filter.path !== 'code' || !filter.code?.length) continue;
    params.code = filter.code.map((c) => (c.system ? `${c.system}|${c.code}` : `${c.code}`)).join(',');
  }
  const sort = input.sort?.map((s) => (s.direction === 'descending' ? '-' : '') + s.path).join(',');
  if (sort) params._sort = sort;
  params._count = String(input.limit ?? EVERY_MATCH_PAGE);
  return { name: input.id, resourceType: input.type, params, everyMatch: !input.limit };
}
