import type { CarePlan, Reference, Resource } from '@medplum/fhirtypes';
import type { ApplyResult } from '@kc/protocols';
import { appliedEntries } from '@kc/protocols';

/**
 * The $apply answer as R4 defines it: the CarePlan itself. Not persisted, everything it refers to is contained
 * (RequestGroup, Goals, requests, Tasks, DetectedIssues), the urn:uuid references rewritten to local ones; the
 * engine's warnings travel as a contained OperationOutcome listed in supportingInfo. Persisted, the CarePlan as
 * the server stored it, referencing the stored resources, with the same warnings contained.
 */
export function applyResultCarePlan(result: ApplyResult, persisted?: Map<string, Resource>): CarePlan {
  const outcome = { ...result.outcome, id: 'outcome' };
  if (persisted) {
    const stored = (persisted.get(result.carePlan.fullUrl) as CarePlan | undefined) ?? result.carePlan.resource;
    const issues = result.detectedIssues.map((e) => persisted.get(e.fullUrl)).filter(Boolean) as Resource[];
    return {
      ...stored,
      contained: [outcome],
      supportingInfo: [
        ...(stored.supportingInfo ?? []),
        { reference: '#outcome' },
        ...issues.map((i) => ({ reference: `${i.resourceType}/${i.id}` })),
      ],
    };
  }
  const entries = appliedEntries(result).filter((e) => e !== result.carePlan);
  const used = result.tasks.length ? entries : entries.filter((e) => e !== result.requestGroup);
  const local = new Map<string, string>([[result.carePlan.fullUrl, '#']]);
  const counters = new Map<string, number>();
  for (const entry of used) {
    const type = entry.resource.resourceType.toLowerCase();
    const n = (counters.get(type) ?? 0) + 1;
    counters.set(type, n);
    local.set(entry.fullUrl, `${type}-${n}`);
  }
  const rewrite = <T>(value: T): T => rewriteReferences(value, local);
  const carePlan = rewrite(result.carePlan.resource);
  return {
    ...carePlan,
    contained: [...used.map((e) => ({ ...rewrite(e.resource), id: local.get(e.fullUrl)! })), outcome],
    supportingInfo: [
      ...(carePlan.supportingInfo ?? []),
      { reference: '#outcome' },
      ...result.detectedIssues.map((e) => ({ reference: `#${local.get(e.fullUrl)}` })),
    ],
  };
}

/** Every Reference.reference that names an entry of the result becomes a local (#id) reference. */
function rewriteReferences<T>(value: T, local: Map<string, string>): T {
  if (Array.isArray(value)) return value.map((v: unknown) => rewriteReferences(v, local)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'reference' && typeof v === 'string' && local.has(v)) {
      const id = local.get(v)!;
      out[key] = id === '#' ? '#' : `#${id}`;
    } else out[key] = rewriteReferences(v, local);
  }
  return out as T;
}

export type { Reference };
