import { tryGetDataType } from '@medplum/core';

/**
 * The root elements a resource type requires (min 1, from the R4 definitions the process indexed at start; a choice
 * element as `value[x]`).
 */
export function requiredElements(type: string): string[] {
  const definition = tryGetDataType(type);
  if (!definition) return [];
  return Object.entries(definition.elements)
    .filter(([path, element]) => element.min > 0 && !path.includes('.'))
    .map(([path]) => path);
}
