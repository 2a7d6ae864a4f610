/**
 * A PlanDefinition element the engine cannot honour (an expression language it cannot evaluate, an
 * ActivityDefinition kind it cannot instantiate, a unit without a length). The HTTP layer answers 422 with
 * `element`, a FHIRPath to the element, so the author knows what to change. Never silently ignored.
 */
export class UnsupportedElementError extends Error {
  constructor(
    message: string,
    readonly element: string,
  ) {
    super(message);
  }
}
