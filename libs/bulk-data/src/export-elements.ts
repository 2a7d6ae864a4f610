import type { Coding, Resource } from '@medplum/fhirtypes';

/** The tag a resource missing elements carries (FHIR's "SUBSETTED"), as the IG asks of `_elements`. */
export const SUBSETTED: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'SUBSETTED',
  display: 'subsetted',
};

/** A root element's name; `value[x]` for a choice element (its JSON keys valueQuantity, valueString, ...). */
const ELEMENT = /^[a-z][A-Za-z0-9]{0,63}(\[x\])?$/;

/**
 * `_elements` (`status,Task.owner`: root elements, for every type or one type): per type (`*` for all), the elements
 * asked; or why not (an element that is not a root element's name, or names a type not exported).
 */
export function elementsAsked(
  values: string[],
  types: string[],
): { byType: Record<string, string[]> } | { reason: string } {
  const byType: Record<string, string[]> = {};
  for (const item of values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean)) {
    const [first, second] = item.split('.', 3);
    const [type, element] = second === undefined ? ['*', first] : [first, second];
    if (item.split('.').length > 2 || !ELEMENT.test(element))
      return { reason: `_elements: ${item.slice(0, 80)} is not a root element (such as status, or Task.status)` };
    if (type !== '*' && !types.includes(type))
      return { reason: `_elements: ${type} is not a type being exported (${types.join(', ')})` };
    (byType[type] ??= []).push(element);
  }
  return { byType };
}

/**
 * The resource with only the elements asked for its type (and those asked for every type), and those it must keep
 * (`resourceType`, `id`, `meta`, and the elements its type requires), tagged SUBSETTED. As it is when nothing was asked
 * for its type.
 */
export function withElements<T extends Resource>(
  resource: T,
  asked: Record<string, string[]> | undefined,
  required: (type: string) => readonly string[],
): T {
  const wanted = [...(asked?.['*'] ?? []), ...(asked?.[resource.resourceType] ?? [])];
  if (!asked || !wanted.length) return resource;
  const kept = ['resourceType', 'id', 'meta', ...required(resource.resourceType), ...wanted];
  const subset = Object.fromEntries(Object.entries(resource).filter(([key]) => kept.some((e) => names(e, key)))) as T;
  const tags = (resource.meta?.tag ?? []).filter((t) => t.code !== SUBSETTED.code);
  return { ...subset, meta: { ...resource.meta, tag: [...tags, SUBSETTED] } };
}

/** Whether a JSON key is the element: itself, or for a choice element (`value[x]`) one of its typed keys. */
function names(element: string, key: string): boolean {
  if (!element.endsWith('[x]')) return key === element;
  const stem = element.slice(0, -3);
  return key.startsWith(stem) && /^[A-Z]/.test(key.slice(stem.length));
}
