import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseFhirPath, validateResource } from '@medplum/core';
import type { ActivityDefinition, PlanDefinition, PlanDefinitionAction, Resource } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from '@kc/fhir-definitions';

/** A conformance or knowledge resource that has a canonical url and version. */
export type CanonicalResource = Resource & { url?: string; version?: string; id?: string };

export class ProtocolCatalogError extends Error {
  constructor(readonly problems: string[]) {
    super(`fhir-profiles has ${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
  }
}

/**
 * The protocols the service knows: every resource in fhir-profiles/, validated against the FHIR R4
 * definitions and cross-checked (canonical references resolve, relatedAction ids exist, FHIRPath parses)
 * so a broken edit stops the service at startup instead of misfiling a patient's tasks later.
 */
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

  static fromDirectory(dir: string): ProtocolCatalog {
    indexFhirDefinitions();
    const problems: string[] = [];
    const resources: CanonicalResource[] = [];
    const files = fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((f) => f.endsWith('.json'))
          .sort()
      : [];
    if (files.length === 0) problems.push(`no FHIR resources found in ${dir}`);
    for (const file of files) {
      try {
        const resource = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CanonicalResource;
        validateResource(resource);
        resources.push(resource);
      } catch (err) {
        const outcome = (err as { outcome?: { issue?: { details?: { text?: string }; expression?: string[] }[] } })
          .outcome;
        const detail =
          outcome?.issue?.map((i) => `${i.details?.text} at ${i.expression?.join(',')}`).join('; ') ??
          (err as Error).message;
        problems.push(`${file}: ${detail}`);
      }
    }
    const catalog = new ProtocolCatalog(resources);
    problems.push(...catalog.crossReferenceProblems());
    if (problems.length) throw new ProtocolCatalogError(problems);
    return catalog;
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

  private crossReferenceProblems(): string[] {
    const problems: string[] = [];
    for (const plan of this.planDefinitions()) {
      const where = `PlanDefinition/${plan.id}`;
      if (!plan.url || !plan.version) problems.push(`${where}: needs url and version`);
      const actions = flattenActions(plan.action ?? []);
      const ids = new Set(actions.map((a) => a.id));
      for (const action of actions) {
        const at = `${where} action ${action.id ?? '(no id)'}`;
        if (!action.id) problems.push(`${at}: every action needs an id (relatedAction and Task keys use it)`);
        if (action.definitionCanonical && !this.activityDefinition(action.definitionCanonical)) {
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
    for (const activity of this.resources.filter(
      (r): r is ActivityDefinition => r.resourceType === 'ActivityDefinition',
    )) {
      for (const dynamic of activity.dynamicValue ?? [])
        problems.push(
          ...fhirPathProblems(`ActivityDefinition/${activity.id} ${dynamic.path}`, dynamic.expression?.expression),
        );
    }
    return problems;
  }
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
