import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest } from '@kc/common';

export interface ApplyRequest {
  patientId: string;
  /** Canonical of the PlanDefinition, for the type-level operation. */
  planDefinition?: string;
  startDate?: Date;
  persist: boolean;
}

const PATIENT_REFERENCE = /^Patient\/([A-Za-z0-9\-.]{1,64})$/;

/**
 * Reads the $apply input Parameters. Beyond the R4 operation's own (subject, planDefinition) it takes
 * `startDate` (when the plan starts; default now) and `persist` (write the result in one transaction).
 */
export function parseApplyParameters(body: unknown): ApplyRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw badRequest('Body must be a FHIR Parameters resource');
  const parameters = body as Parameters;
  if (parameters.resourceType !== 'Parameters')
    throw badRequest(`Body must be a Parameters resource, not ${JSON.stringify(parameters.resourceType ?? null)}`, [
      'Parameters',
    ]);
  if (parameters.parameter !== undefined && !Array.isArray(parameters.parameter))
    throw badRequest('Parameters.parameter must be an array', ['Parameters.parameter']);
  const list = parameters.parameter ?? [];
  if (list.some((p) => !p || typeof p !== 'object' || typeof p.name !== 'string'))
    throw badRequest('Every parameter needs a name', ['Parameters.parameter']);

  const subject = single(list, 'subject');
  const subjectRef = subject?.valueReference?.reference ?? subject?.valueString;
  if (typeof subjectRef !== 'string' || !subjectRef)
    throw badRequest('subject is required: a Patient reference such as Patient/123', ['Parameters.parameter.subject']);
  const match = PATIENT_REFERENCE.exec(subjectRef);
  if (!match) throw badRequest('subject must reference a Patient, e.g. Patient/123', ['Parameters.parameter.subject']);

  const plan = single(list, 'planDefinition');
  const planDefinition = plan?.valueCanonical ?? plan?.valueUri ?? plan?.valueString;
  if (plan && typeof planDefinition !== 'string')
    throw badRequest('planDefinition must be a canonical URL', ['Parameters.parameter.planDefinition']);

  const start = single(list, 'startDate');
  let startDate: Date | undefined;
  if (start) {
    const raw = start.valueDateTime ?? start.valueDate;
    startDate = typeof raw === 'string' && /^\d{4}-\d{2}-\d{2}/.test(raw) ? new Date(raw) : undefined;
    if (!startDate || Number.isNaN(startDate.getTime()))
      throw badRequest('startDate must be a valueDate (YYYY-MM-DD) or valueDateTime', [
        'Parameters.parameter.startDate',
      ]);
  }

  const persist = single(list, 'persist');
  if (persist && typeof persist.valueBoolean !== 'boolean')
    throw badRequest('persist must be a valueBoolean', ['Parameters.parameter.persist']);
  return { patientId: match[1], planDefinition, startDate, persist: persist?.valueBoolean ?? false };
}

function single(list: ParametersParameter[], name: string): ParametersParameter | undefined {
  const found = list.filter((p) => p.name === name);
  if (found.length > 1) throw badRequest(`Parameter ${name} may appear only once`, [`Parameters.parameter.${name}`]);
  return found[0];
}
