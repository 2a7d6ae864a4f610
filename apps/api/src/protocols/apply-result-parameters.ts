import type { Bundle, BundleEntry, Parameters, PlanDefinition, Resource } from '@medplum/fhirtypes';
import type { ApplyResult } from '@kc/protocols';
import { appliedEntries } from '@kc/protocols';
import { asSent } from './inline-plan-definitions';

/**
 * The $apply output: `return` is the CarePlan (as the R4 operation defines), followed by what it refers to,
 * the warnings, and `transaction`, a ready-to-post Bundle for clients that persist it themselves. `inline`: the
 * PlanDefinition the request sent, which that Bundle writes too (the CarePlan instantiates it; the service checks the
 * patient against it again before each approval).
 */
export function applyResultParameters(
  result: ApplyResult,
  persisted?: Map<string, Resource>,
  inline?: PlanDefinition,
): Parameters {
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
  if (!persisted) parameter.push({ name: 'transaction', resource: transactionBundle(result, inline) });
  return { resourceType: 'Parameters', parameter };
}

/**
 * One transaction, conditional creates throughout: posting it twice leaves one plan (and one PlanDefinition, when
 * it was sent inline with a url: created unless the server has one of that url and version).
 */
export function transactionBundle(result: ApplyResult, inline?: PlanDefinition): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      ...(inline?.url ? [inlineDefinitionEntry(inline, inline.url)] : []),
      ...appliedEntries(result).map((e) => ({
        fullUrl: e.fullUrl,
        resource: e.resource,
        request: { method: 'POST' as const, url: e.resource.resourceType, ifNoneExist: e.ifNoneExist },
      })),
    ],
  };
}

function inlineDefinitionEntry(plan: PlanDefinition, url: string): BundleEntry {
  const query = new URLSearchParams({ url, ...(plan.version ? { version: plan.version } : {}) });
  return { resource: asSent(plan), request: { method: 'POST', url: 'PlanDefinition', ifNoneExist: query.toString() } };
}
