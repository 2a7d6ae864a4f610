import type { Bundle, Parameters, Resource } from '@medplum/fhirtypes';
import type { ApplyResult } from '@kc/protocols';
import { appliedEntries } from '@kc/protocols';

/**
 * The $apply output: `return` is the CarePlan (as the R4 operation defines), followed by what it refers to,
 * the warnings, and `transaction`, a ready-to-post Bundle for clients that persist it themselves.
 */
export function applyResultParameters(result: ApplyResult, persisted?: Map<string, Resource>): Parameters {
  const resource = <T extends Resource>(entry: { fullUrl: string; resource: T }) =>
    (persisted?.get(entry.fullUrl) as T | undefined) ?? entry.resource;
  const parameter: NonNullable<Parameters['parameter']> = [
    { name: 'return', resource: resource(result.carePlan) },
    { name: 'requestGroup', resource: resource(result.requestGroup) },
    ...result.goals.map((e) => ({ name: 'goal', resource: resource(e) })),
    ...result.requests.map((e) => ({ name: 'request', resource: resource(e) })),
    ...result.tasks.map((e) => ({ name: 'task', resource: resource(e) })),
    ...result.detectedIssues.map((e) => ({ name: 'detectedIssue', resource: resource(e) })),
    { name: 'eligible', valueBoolean: result.eligible },
    { name: 'outcome', resource: result.outcome },
  ];
  if (!persisted) parameter.push({ name: 'transaction', resource: transactionBundle(result) });
  return { resourceType: 'Parameters', parameter };
}

/** One transaction, conditional creates throughout: posting it twice leaves one plan. */
export function transactionBundle(result: ApplyResult): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: appliedEntries(result).map((e) => ({
      fullUrl: e.fullUrl,
      resource: e.resource,
      request: { method: 'POST', url: e.resource.resourceType, ifNoneExist: e.ifNoneExist },
    })),
  };
}
