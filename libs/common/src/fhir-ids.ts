/** The body of a FHIR resource id (R4 `id` datatype: 1-64 of A-Z, a-z, 0-9, `-`, `.`), to compose larger patterns. */
export const RESOURCE_ID_PATTERN = '[A-Za-z0-9\\-.]{1,64}';

/** A whole FHIR resource id, e.g. `123` or `a-b.c`. */
export const RESOURCE_ID = new RegExp(`^${RESOURCE_ID_PATTERN}$`);

/** Who a Task can be for (Task.owner's target types this service accepts): `<type>/<id>`, the type and id captured. */
export const TASK_OWNER_REFERENCE = new RegExp(
  `^(Practitioner|PractitionerRole|Organization|CareTeam)/(${RESOURCE_ID_PATTERN})$`,
);

/** Whether `value` is a string that is a valid FHIR resource id. */
export function isResourceId(value: unknown): value is string {
  return typeof value === 'string' && RESOURCE_ID.test(value);
}
