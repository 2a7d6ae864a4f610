/** Deepest nesting of arrays and objects any request body may have: FHIR resources stay well under 20. */
export const MAX_JSON_DEPTH = 64;

/**
 * True when a parsed JSON value nests deeper than `max`. Iterative, so a hostile body cannot exhaust the stack
 * here, and it stops at the first branch that is too deep.
 */
export function nestedDeeperThan(value: unknown, max = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Parses JSON text and refuses what is not JSON or nests too deep, with a message a client can act on. */
export function parseBoundedJson(text: string, max = MAX_JSON_DEPTH): { value: unknown } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'Request body is not valid JSON' };
  }
  return nestedDeeperThan(value, max) ? { error: `Request body nests deeper than ${max} levels` } : { value };
}
