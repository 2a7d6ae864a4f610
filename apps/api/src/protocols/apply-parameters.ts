import type { Parameters, ParametersParameter, PlanDefinition } from '@medplum/fhirtypes';
import { clinicInstant, UTC_ZONE, type ApplyContext } from '@kc/protocols';
import { badRequest, RESOURCE_ID_PATTERN } from '@kc/common';

export interface ApplyRequest {
  patientId: string;
  /** Canonical of the PlanDefinition (planDefinition as a canonical, or the CPG/R5 `url`), type level. */
  planDefinition?: string;
  /** The PlanDefinition itself (R4: planDefinition as a resource), type level. */
  planResource?: PlanDefinition;
  startDate?: Date;
  persist: boolean;
  context: ApplyContext;
  /** Service parameter: `carePlan` (default, the R4 answer) or `parameters` (every part as its own parameter). */
  output: 'carePlan' | 'parameters';
  /** Contraindications overridden on the plan (set by the service when it re-applies after an override). */
  overridden?: ReadonlySet<string>;
  /** The key of the plan applied again (set by the service when it re-applies after an override): written under it. */
  carePlanKey?: string;
}

const PATIENT_REFERENCE = new RegExp(`^Patient/(${RESOURCE_ID_PATTERN})$`);

/**
 * Reads the $apply input Parameters. Beyond the R4 operation's own (subject, planDefinition) it takes
 * `startDate` (when the plan starts; default now; a date alone is that day from midnight in the clinic's time zone,
 * `zone`) and `persist` (write the result in one transaction).
 */
export function parseApplyParameters(body: unknown, zone = UTC_ZONE): ApplyRequest {
  const list = parameterList(body);
  // Checked in this order, so a body with several mistakes is told about the same one as before.
  const patientId = subjectId(list);
  const plan = planOf(list);
  const context: ApplyContext = {
    encounter: reference(list, 'encounter', 'Encounter'),
    practitioner: reference(list, 'practitioner', 'Practitioner'),
    organization: reference(list, 'organization', 'Organization'),
    setting: single(list, 'setting')?.valueCodeableConcept,
  };
  const startDate = startDateOf(list, zone);
  const persist = persistOf(list);
  return { patientId, ...plan, startDate, persist, context, output: outputOf(list) };
}

/** The body's parameters, once it is known to be a Parameters resource whose every parameter has a name. */
function parameterList(body: unknown): ParametersParameter[] {
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
  return list;
}

function subjectId(list: ParametersParameter[]): string {
  const subject = single(list, 'subject');
  const subjectRef = subject?.valueReference?.reference ?? subject?.valueString;
  if (typeof subjectRef !== 'string' || !subjectRef)
    throw badRequest('subject is required: a Patient reference such as Patient/123', ['Parameters.parameter.subject']);
  const match = PATIENT_REFERENCE.exec(subjectRef);
  if (!match) throw badRequest('subject must reference a Patient, e.g. Patient/123', ['Parameters.parameter.subject']);
  return match[1];
}

/** planDefinition as a resource or a canonical, or the CPG/R5 `url` (+ `version`). */
function planOf(list: ParametersParameter[]): Pick<ApplyRequest, 'planDefinition' | 'planResource'> {
  const plan = single(list, 'planDefinition');
  const url = single(list, 'url');
  const planResource = plan?.resource?.resourceType === 'PlanDefinition' ? plan.resource : undefined;
  if (plan?.resource && !planResource)
    throw badRequest('planDefinition must be a PlanDefinition resource or a canonical URL', [
      'Parameters.parameter.planDefinition',
    ]);
  const planCanonical = plan?.valueCanonical ?? plan?.valueUri ?? plan?.valueString;
  if (plan && !planResource && typeof planCanonical !== 'string')
    throw badRequest('planDefinition must be a canonical URL or a PlanDefinition', [
      'Parameters.parameter.planDefinition',
    ]);
  const urlValue = url?.valueCanonical ?? url?.valueUri ?? url?.valueString;
  if (url && typeof urlValue !== 'string')
    throw badRequest('url must be a canonical URL', ['Parameters.parameter.url']);
  const version = single(list, 'version')?.valueString;
  const planDefinition =
    planCanonical ?? (urlValue && version && !urlValue.includes('|') ? `${urlValue}|${version}` : urlValue);
  return { planDefinition, planResource };
}

function startDateOf(list: ParametersParameter[], zone: string): Date | undefined {
  const start = single(list, 'startDate');
  if (!start) return undefined;
  const raw = start.valueDateTime ?? start.valueDate;
  const startDate = typeof raw === 'string' && /^\d{4}-\d{2}-\d{2}/.test(raw) ? clinicInstant(raw, zone) : undefined;
  if (!startDate || Number.isNaN(startDate.getTime()))
    throw badRequest('startDate must be a valueDate (YYYY-MM-DD) or valueDateTime', ['Parameters.parameter.startDate']);
  return startDate;
}

function persistOf(list: ParametersParameter[]): boolean {
  const persist = single(list, 'persist');
  if (persist && typeof persist.valueBoolean !== 'boolean')
    throw badRequest('persist must be a valueBoolean', ['Parameters.parameter.persist']);
  return persist?.valueBoolean ?? false;
}

function outputOf(list: ParametersParameter[]): ApplyRequest['output'] {
  const output = single(list, 'output');
  const outputValue = output?.valueCode ?? output?.valueString ?? 'carePlan';
  if (outputValue !== 'carePlan' && outputValue !== 'parameters')
    throw badRequest('output must be carePlan or parameters', ['Parameters.parameter.output']);
  return outputValue;
}

function reference(list: ParametersParameter[], name: string, type: string) {
  const param = single(list, name);
  if (!param) return undefined;
  const ref = param.valueReference?.reference ?? param.valueString;
  if (typeof ref !== 'string' || !new RegExp(`^${type}/${RESOURCE_ID_PATTERN}$`).test(ref))
    throw badRequest(`${name} must reference a ${type}, e.g. ${type}/123`, [`Parameters.parameter.${name}`]);
  return { reference: ref };
}

/** The GET form of $apply: each query parameter is a string-valued parameter (FHIR operations over GET). */
export function queryToParameters(query: Record<string, unknown>): Parameters {
  const parameter: ParametersParameter[] = [];
  for (const [name, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (typeof item !== 'string') throw badRequest(`Query parameter ${name} must be a string`);
      if (name === 'persist')
        parameter.push({
          name,
          valueBoolean: item === 'true' ? true : item === 'false' ? false : undefined,
        });
      else if (name === 'startDate') parameter.push({ name, valueDateTime: item });
      else parameter.push({ name, valueString: item });
    }
  }
  return { resourceType: 'Parameters', parameter };
}

function single(list: ParametersParameter[], name: string): ParametersParameter | undefined {
  const found = list.filter((p) => p.name === name);
  if (found.length > 1) throw badRequest(`Parameter ${name} may appear only once`, [`Parameters.parameter.${name}`]);
  return found[0];
}
