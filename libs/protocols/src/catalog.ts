import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseFhirPath, validateResource } from '@medplum/core';
import type {
  ActivityDefinition,
  CodeSystem,
  PlanDefinition,
  PlanDefinitionAction,
  Questionnaire,
  Resource,
} from '@medplum/fhirtypes';
import { indexFhirDefinitions } from '@kc/fhir-definitions';
import { collectWithOf, TASK_APPROVED_TRIGGER } from './canonical';
import { taskKind } from './instantiate-action';
import { isTriggeredBy } from './action-trigger';
import { CALCULATED_EXPRESSION_EXTENSION, flattenItems } from './questionnaire-answers';
import { activityDefinitionIn, type ResolvedPlan } from './action-tree';

/** A conformance or knowledge resource that has a canonical url and version. */
export type CanonicalResource = Resource & { url?: string; version?: string; id?: string };

/**
 * The protocols the service knows: every resource in fhir-profiles/, validated against the FHIR R4
 * definitions and cross-checked (canonical references resolve, relatedAction ids exist, FHIRPath parses)
 * so a broken edit stops the service at startup instead of misfiling a patient's tasks later.
 */
/** A kind of Task (Task.code) the protocols generate, and what a clinician calls it. */
export interface TaskKind {
  code: string;
  display: string;
}

export class ProtocolCatalog {
  private readonly byCanonical = new Map<string, CanonicalResource>();

  constructor(readonly resources: CanonicalResource[]) {
    for (const resource of resources) {
      if (!resource.url) continue;
      this.byCanonical.set(`${resource.url}|${resource.version ?? ''}`, resource);
      // A bare url resolves to the latest version listed.
      const current = this.byCanonical.get(resource.url);
      if (!current || (current.version ?? '') < (resource.version ?? '')) this.byCanonical.set(resource.url, resource);
    }
  }

  /**
   * Every valid resource in the directory. A file that fails validation, or a PlanDefinition whose references do
   * not resolve, is left out and listed in `unavailable` with its problems: one broken edit must not take the
   * other protocols down (the service reports itself degraded instead).
   */
  static fromDirectory(dir: string): ProtocolCatalog {
    indexFhirDefinitions();
    const unavailable: UnavailableProfile[] = [];
    const resources: { file: string; resource: CanonicalResource }[] = [];
    const files = fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((f) => f.endsWith('.json'))
          .sort()
      : [];
    for (const file of files) {
      let resource: CanonicalResource | undefined;
      try {
        resource = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CanonicalResource;
        validateResource(resource);
        resources.push({ file, resource });
      } catch (err) {
        const outcome = (err as { outcome?: { issue?: { details?: { text?: string }; expression?: string[] }[] } })
          .outcome;
        const detail =
          outcome?.issue?.map((i) => `${i.details?.text} at ${i.expression?.join(',')}`).join('; ') ??
          (err as Error).message;
        unavailable.push({ file, ...describe(resource), problems: [detail] });
      }
    }
    // A plan that references something unavailable is unavailable too; repeat until nothing changes.
    let usable = resources;
    for (;;) {
      const catalog = new ProtocolCatalog(usable.map((r) => r.resource));
      const broken = usable
        .map((r) => ({ ...r, problems: catalog.problemsOf(r.resource) }))
        .filter((r) => r.problems.length);
      if (!broken.length) {
        const result = new ProtocolCatalog(usable.map((r) => r.resource));
        result.unavailable = unavailable;
        if (files.length === 0) result.unavailable.push({ file: dir, problems: [`no FHIR resources found in ${dir}`] });
        return result;
      }
      for (const b of broken) unavailable.push({ file: b.file, ...describe(b.resource), problems: b.problems });
      usable = usable.filter((r) => !broken.some((b) => b.file === r.file));
    }
  }

  /** Files left out at load, with why; empty when everything loaded. */
  unavailable: UnavailableProfile[] = [];

  /** Every problem, one line each, for logs and /health. */
  get problems(): string[] {
    return this.unavailable.flatMap((u) => u.problems.map((p) => `${u.file}: ${p}`));
  }

  /**
   * The kinds of Task the protocols generate: each action's kind (taskKind, as Task.code has it; reminders make
   * none), named as the catalog's CodeSystem names it (else as the coding does). What a task list filters by kind on.
   */
  taskKinds(): TaskKind[] {
    return this.kindsOf(() => true);
  }

  /** The kinds of Task done by answering a Questionnaire (their activity's cpg-collectWith), e.g. the check. */
  questionnaireTaskKinds(): string[] {
    return this.kindsOf((action) => !!collectWithOf(this.activityDefinition(action.definitionCanonical))).map(
      (k) => k.code,
    );
  }

  private kindsOf(wanted: (action: PlanDefinitionAction) => boolean): TaskKind[] {
    const kinds = new Map<string, TaskKind>();
    const walk = (actions: PlanDefinitionAction[] = []) => {
      for (const action of actions) {
        // A reminder (sent when a Task is approved) is a CommunicationRequest of its own, with no Task.
        const coding =
          isTriggeredBy(action, TASK_APPROVED_TRIGGER) || !wanted(action) ? undefined : taskKind(action)?.coding?.[0];
        if (coding?.code && !kinds.has(coding.code)) {
          const named = coding.system
            ? this.resolve<CodeSystem>(coding.system, 'CodeSystem')?.concept?.find((c) => c.code === coding.code)
            : undefined;
          kinds.set(coding.code, { code: coding.code, display: named?.display ?? coding.display ?? coding.code });
        }
        walk(action.action);
      }
    };
    for (const plan of this.planDefinitions()) walk(plan.action);
    return [...kinds.values()];
  }

  /** The profiles of what the service writes (StructureDefinitions of a resource type), `url|version` by type. */
  resourceProfiles(): Record<string, string[]> {
    const byType: Record<string, string[]> = {};
    for (const resource of this.resources) {
      if (resource.resourceType !== 'StructureDefinition' || resource.kind !== 'resource') continue;
      (byType[resource.type] ??= []).push(`${resource.url}|${resource.version}`);
    }
    return byType;
  }

  questionnaires(): Questionnaire[] {
    return this.resources.filter((r): r is Questionnaire => r.resourceType === 'Questionnaire');
  }

  planDefinitions(): PlanDefinition[] {
    return this.resources.filter((r): r is PlanDefinition => r.resourceType === 'PlanDefinition');
  }

  /** By id (as in /PlanDefinition/:id), canonical url, or url|version. */
  findPlanDefinition(idOrCanonical: string): PlanDefinition | undefined {
    const byCanonical = this.resolve<PlanDefinition>(idOrCanonical, 'PlanDefinition');
    return byCanonical ?? this.planDefinitions().find((p) => p.id === idOrCanonical);
  }

  resolve<T extends CanonicalResource>(canonical: string, resourceType?: T['resourceType']): T | undefined {
    const found = this.byCanonical.get(canonical);
    return found && (!resourceType || found.resourceType === resourceType) ? (found as T) : undefined;
  }

  activityDefinition(canonical: string | undefined): ActivityDefinition | undefined {
    return canonical ? this.resolve<ActivityDefinition>(canonical, 'ActivityDefinition') : undefined;
  }

  /**
   * The Questionnaire a protocol action is done with: its ActivityDefinition's `cpg-collectWith` (the post-infusion
   * check's answers). Undefined for actions done otherwise (an infusion is done by its Procedure).
   */
  questionnaireOf(plan: PlanDefinition | undefined, actionId: string | undefined): Questionnaire | undefined {
    const canonical = plan && questionnaireCanonicalOf({ plan, definitions: this }, actionId);
    return canonical ? this.resolve<Questionnaire>(canonical, 'Questionnaire') : undefined;
  }

  /** Cross-checks of one resource: canonical references resolve, relatedAction ids exist, FHIRPath parses. */
  private problemsOf(resource: CanonicalResource): string[] {
    const problems: string[] = [];
    if (resource.resourceType === 'PlanDefinition') {
      const plan = resource;
      const where = `PlanDefinition/${plan.id}`;
      if (!plan.url || !plan.version) problems.push(`${where}: needs url and version`);
      const actions = flattenActions(plan.action ?? []);
      const ids = new Set(actions.map((a) => a.id));
      for (const action of actions) {
        const at = `${where} action ${action.id ?? '(no id)'}`;
        if (!action.id) problems.push(`${at}: every action needs an id (relatedAction and Task keys use it)`);
        if (action.definitionCanonical && !this.resolve(action.definitionCanonical)) {
          problems.push(`${at}: definitionCanonical ${action.definitionCanonical} is not in fhir-profiles`);
        }
        for (const related of action.relatedAction ?? []) {
          if (!ids.has(related.actionId))
            problems.push(`${at}: relatedAction refers to unknown action ${related.actionId}`);
        }
        for (const condition of action.condition ?? [])
          problems.push(...fhirPathProblems(at, condition.expression?.expression));
      }
    }
    if (resource.resourceType === 'ActivityDefinition') {
      const activity = resource;
      const collectWith = collectWithOf(activity);
      if (collectWith && !this.resolve(collectWith, 'Questionnaire'))
        problems.push(
          `ActivityDefinition/${activity.id}: cpg-collectWith ${collectWith} is not a Questionnaire in fhir-profiles`,
        );
      for (const dynamic of activity.dynamicValue ?? [])
        problems.push(
          ...fhirPathProblems(`ActivityDefinition/${activity.id} ${dynamic.path}`, dynamic.expression?.expression),
        );
    }
    if (resource.resourceType === 'Questionnaire') {
      for (const item of flattenItems(resource.item ?? []))
        for (const e of item.extension ?? [])
          if (e.url === CALCULATED_EXPRESSION_EXTENSION)
            problems.push(
              ...fhirPathProblems(`Questionnaire/${resource.id} ${item.linkId}`, e.valueExpression?.expression),
            );
    }
    return problems;
  }
}

/**
 * The canonical of the Questionnaire an action of the protocol is done with (its ActivityDefinition's `collectWith`),
 * when it is done by answering one (the post-infusion check).
 */
export function questionnaireCanonicalOf(protocol: ResolvedPlan, actionId: string | undefined): string | undefined {
  const action = actionId ? flattenActions(protocol.plan.action ?? []).find((a) => a.id === actionId) : undefined;
  return action && collectWithOf(activityDefinitionIn(protocol.definitions, action.definitionCanonical));
}

/** A file of fhir-profiles/ the service could not use. */
export interface UnavailableProfile {
  file: string;
  resourceType?: string;
  id?: string;
  url?: string;
  problems: string[];
}

function describe(resource: CanonicalResource | undefined) {
  return resource ? { resourceType: resource.resourceType, id: resource.id, url: resource.url } : {};
}

export function flattenActions(actions: PlanDefinitionAction[]): PlanDefinitionAction[] {
  return actions.flatMap((a) => [a, ...flattenActions(a.action ?? [])]);
}

function fhirPathProblems(where: string, expression: string | undefined): string[] {
  if (!expression) return [`${where}: condition/dynamicValue without an expression`];
  try {
    parseFhirPath(expression);
    return [];
  } catch (err) {
    return [`${where}: FHIRPath does not parse: ${(err as Error).message}`];
  }
}
