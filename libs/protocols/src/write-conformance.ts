import { evalFhirPath, validateResource } from '@medplum/core';
import type {
  CodeSystem,
  Coding,
  Extension,
  Reference,
  Resource,
  StructureDefinition,
  ValueSet,
} from '@medplum/fhirtypes';
import { profileSnapshot } from '@kc/fhir-definitions';
import { ORDER_KEY_SYSTEM } from '@kc/task-states';
import { APPLY_KEY_SYSTEM, CAREPLAN_KEY_SYSTEM } from './apply-plan-definition';
import { CLINIC_ALERT_KEY_SYSTEM } from './clinic-alert';
import { CANONICAL_BASE, REMINDER_KEY_SYSTEM, SERVICE_CODE_SYSTEM, TASK_KEY_SYSTEM } from './canonical';
import type { ProtocolCatalog } from './catalog';

/** Where a resource this service wrote departs from what fhir-profiles/ says it writes. */
export interface ConformanceProblem {
  /** The profile it was checked against, when the problem is the profile's. */
  profile?: string;
  /** FHIRPath to the element, e.g. `Task.extension[2]`. */
  expression: string;
  /** What is wrong, in the validator's or this check's words: no values from the resource. */
  message: string;
}

const PROFILE_BASE = `${CANONICAL_BASE}/StructureDefinition`;

/**
 * Which of the service's profiles a resource it writes must conform to. A resource of the same type that is not the
 * service's own (an EHR's order the service holds, an EHR's care plan) has no profile here: only the checks every
 * write gets (the service's codes and extensions).
 */
const PROFILE_OF: { profile: string; appliesTo: (resource: Resource) => boolean }[] = [
  { profile: `${PROFILE_BASE}/planned-task`, appliesTo: (r) => r.resourceType === 'Task' && keyed(r, TASK_KEY_SYSTEM) },
  {
    profile: `${PROFILE_BASE}/protocol-care-plan`,
    appliesTo: (r) => r.resourceType === 'CarePlan' && keyed(r, CAREPLAN_KEY_SYSTEM),
  },
  {
    profile: `${PROFILE_BASE}/planned-medication-request`,
    appliesTo: (r) =>
      r.resourceType === 'MedicationRequest' &&
      (keyed(r, ORDER_KEY_SYSTEM) || (r.intent === 'proposal' && basedOnAPlan(r.basedOn))),
  },
  { profile: `${PROFILE_BASE}/decision-provenance`, appliesTo: (r) => r.resourceType === 'Provenance' },
  {
    profile: `${PROFILE_BASE}/patient-reminder`,
    appliesTo: (r) => r.resourceType === 'CommunicationRequest' && keyed(r, REMINDER_KEY_SYSTEM),
  },
  {
    profile: `${PROFILE_BASE}/planned-communication-request`,
    appliesTo: (r) =>
      r.resourceType === 'CommunicationRequest' &&
      !keyed(r, REMINDER_KEY_SYSTEM) &&
      (keyed(r, ORDER_KEY_SYSTEM) || basedOnAPlan(r.basedOn)),
  },
  {
    profile: `${PROFILE_BASE}/reminder-sent`,
    appliesTo: (r) => r.resourceType === 'Communication' && keyed(r, REMINDER_KEY_SYSTEM),
  },
  {
    profile: `${PROFILE_BASE}/clinic-alert`,
    appliesTo: (r) => r.resourceType === 'Communication' && keyed(r, CLINIC_ALERT_KEY_SYSTEM),
  },
  {
    profile: `${PROFILE_BASE}/applied-request-group`,
    appliesTo: (r) => r.resourceType === 'RequestGroup' && keyed(r, APPLY_KEY_SYSTEM),
  },
  {
    profile: `${PROFILE_BASE}/clinical-issue`,
    appliesTo: (r) =>
      r.resourceType === 'DetectedIssue' && !!r.code?.coding?.some((c) => c.system === SERVICE_CODE_SYSTEM),
  },
];

function keyed(resource: Resource, system: string): boolean {
  return !!(resource as { identifier?: { system?: string }[] }).identifier?.some((i) => i.system === system);
}

/** A request planned under a care plan (a proposal the protocol made), as opposed to an EHR's own. */
function basedOnAPlan(basedOn: Reference[] | undefined): boolean {
  return !!basedOn?.some((b) => b.reference?.startsWith('CarePlan/'));
}

/**
 * Checks what this service writes against what fhir-profiles/ says it writes, so an EHR integrator can rely on the
 * profiles: the profile of its kind (Medplum's validator, on a snapshot built from the differential), every code of
 * the service's CodeSystem (defined there), and every extension of the service's (defined, used where its context
 * allows, with a value of a type it allows). Pure: the caller decides what a problem costs (a log line, a failed test).
 */
export class WriteConformance {
  private readonly profiles = new Map<string, StructureDefinition>();
  /** Each profile's bindings to the service's own ValueSets: checked here, as Medplum's validator checks none. */
  private readonly bindings = new Map<string, Binding[]>();
  private readonly unbuildable = new Map<string, string>();
  private readonly extensions = new Map<string, StructureDefinition>();
  private readonly codes: Set<string>;

  constructor(catalog: ProtocolCatalog) {
    for (const resource of catalog.resources) {
      if (resource.resourceType !== 'StructureDefinition') continue;
      const definition: StructureDefinition = resource;
      if (definition.type === 'Extension') this.extensions.set(definition.url, definition);
      else if (definition.kind === 'resource') {
        try {
          this.profiles.set(definition.url, profileSnapshot(definition));
          this.bindings.set(definition.url, bindingsOf(definition, catalog));
        } catch (err) {
          // A profile edited into something the snapshot cannot be built from: each write it applies to says so.
          this.unbuildable.set(definition.url, (err as Error).message);
        }
      }
    }
    const codeSystem = catalog.resolve<CodeSystem>(SERVICE_CODE_SYSTEM, 'CodeSystem');
    this.codes = new Set(flattenConcepts(codeSystem?.concept).map((c) => c.code));
  }

  problemsOf(resource: Resource): ConformanceProblem[] {
    return [...this.profileProblems(resource), ...this.elementProblems(resource)];
  }

  private profileProblems(resource: Resource): ConformanceProblem[] {
    const url = PROFILE_OF.find((p) => p.appliesTo(resource))?.profile;
    const profile = url && this.profiles.get(url);
    if (!url) return [];
    if (!profile) {
      const message = this.unbuildable.get(url) ?? 'profile not in fhir-profiles/';
      return [{ profile: url, expression: resource.resourceType, message }];
    }
    const bound = this.bindings.get(url)!.flatMap((binding) => bindingProblems(resource, binding, url));
    try {
      validateResource(resource, { profile });
      return bound;
    } catch (err) {
      const issues = (err as { outcome?: { issue?: { details?: { text?: string }; expression?: string[] }[] } }).outcome
        ?.issue;
      if (!issues) throw err;
      return [
        ...issues.map((issue) => ({
          profile: url,
          expression: issue.expression?.join(', ') ?? resource.resourceType,
          message: issue.details?.text ?? 'does not conform',
        })),
        ...bound,
      ];
    }
  }

  /** The service's codes and extensions, wherever they sit in the resource. */
  private elementProblems(resource: Resource): ConformanceProblem[] {
    const problems: ConformanceProblem[] = [];
    const visit = (value: unknown, path: string, context: string): void => {
      if (Array.isArray(value)) {
        value.forEach((item, i) => visit(item, `${path}[${i}]`, context));
        return;
      }
      if (!value || typeof value !== 'object') return;
      const element = value as Record<string, unknown>;
      if (element.system === SERVICE_CODE_SYSTEM && typeof element.code === 'string' && !this.codes.has(element.code))
        problems.push({ expression: path, message: `code "${element.code}" is not in ${SERVICE_CODE_SYSTEM}` });
      for (const key of ['extension', 'modifierExtension']) {
        for (const [i, extension] of ((element[key] as Extension[] | undefined) ?? []).entries()) {
          const problem = this.extensionProblem(extension, context);
          if (problem) problems.push({ expression: `${path}.${key}[${i}]`, message: problem });
          // Its value may carry the service's codes (a phase), and a complex one its own extensions.
          visit(extension, `${path}.${key}[${i}]`, 'Extension');
        }
      }
      for (const [key, child] of Object.entries(element)) {
        if (key === 'extension' || key === 'modifierExtension' || key === 'contained') continue;
        visit(child, `${path}.${key}`, `${context}.${key}`);
      }
      // A contained resource is its own context.
      for (const [i, contained] of ((element.contained as Resource[] | undefined) ?? []).entries())
        problems.push(
          ...this.elementProblems(contained).map((p) => ({
            ...p,
            expression: `${path}.contained[${i}]/${p.expression}`,
          })),
        );
    };
    visit(resource, resource.resourceType, resource.resourceType);
    return problems;
  }

  private extensionProblem(extension: Extension, context: string): string | undefined {
    if (!extension.url?.startsWith(`${PROFILE_BASE}/`)) return undefined;
    const definition = this.extensions.get(extension.url);
    if (!definition) return `extension ${extension.url} is not defined in fhir-profiles/`;
    const contexts = (definition.context ?? []).map((c) => c.expression);
    if (contexts.length && !contexts.includes(definitionPath(context)))
      return `extension ${extension.url} is used on ${context}; its definition allows ${contexts.join(', ')}`;
    const allowed = definition.differential?.element
      .find((e) => e.path === 'Extension.value[x]')
      ?.type?.map((t) => t.code);
    const given = Object.keys(extension).find((k) => k.startsWith('value'));
    if (allowed?.length && !allowed.some((type) => given === `value${type[0].toUpperCase()}${type.slice(1)}`))
      return `extension ${extension.url} has ${given ?? 'no value'}; its definition allows ${allowed.join(', ')}`;
    return undefined;
  }
}

/** A profile's element bound to one of the service's ValueSets, with the codes it allows. */
interface Binding {
  path: string;
  strength: string;
  valueSet: string;
  /** `system|code` of each code the ValueSet lists. */
  allowed: Set<string>;
  /** The code systems it draws on: a code of another system is not its business (an extensible binding). */
  systems: Set<string>;
}

function bindingsOf(profile: StructureDefinition, catalog: ProtocolCatalog): Binding[] {
  return (profile.differential?.element ?? []).flatMap((element): Binding[] => {
    const canonical = element.binding?.valueSet;
    // The service's own ValueSets, at the version the profile names.
    const valueSet = canonical ? catalog.resolve<ValueSet>(canonical, 'ValueSet') : undefined;
    if (!valueSet?.url || !element.path) return [];
    const includes = valueSet.compose?.include ?? [];
    return [
      {
        path: element.path,
        strength: element.binding!.strength,
        valueSet: valueSet.url,
        allowed: new Set(includes.flatMap((i) => (i.concept ?? []).map((c) => `${i.system}|${c.code}`))),
        systems: new Set(includes.flatMap((i) => (i.system ? [i.system] : []))),
      },
    ];
  });
}

/**
 * A bound element's codes against its ValueSet: a code of a system the ValueSet draws on must be one it lists, and a
 * required binding needs one of its codes.
 */
function bindingProblems(resource: Resource, binding: Binding, profile: string): ConformanceProblem[] {
  const values = evalFhirPath(binding.path.split('.').slice(1).join('.'), resource) as (Coding & {
    coding?: Coding[];
  })[];
  if (!values.length) return [];
  const codings = values.flatMap((v) => v.coding ?? (v.code ? [v] : []));
  const key = (c: Coding) => `${c.system}|${c.code}`;
  const problems = codings
    .filter((c) => binding.systems.has(c.system ?? '') && !binding.allowed.has(key(c)))
    .map((c) => ({ profile, expression: binding.path, message: `code "${c.code}" is not in ${binding.valueSet}` }));
  if (binding.strength === 'required' && !codings.some((c) => binding.allowed.has(key(c))))
    problems.push({ profile, expression: binding.path, message: `no code from ${binding.valueSet} (required)` });
  return problems;
}

/**
 * The element an extension's context names: a nested action or item is defined by its parent's definition
 * (contentReference), so `PlanDefinition.action.action` is `PlanDefinition.action`.
 */
function definitionPath(path: string): string {
  return path.replace(/\.(action|item)(\.\1)+/g, '.$1').replace(/(\.item)\.answer\.item/g, '$1');
}

function flattenConcepts(concepts: CodeSystem['concept']): { code: string }[] {
  return (concepts ?? []).flatMap((c) => [{ code: c.code }, ...flattenConcepts(c.concept)]);
}
