import * as fs from 'node:fs';
import * as path from 'node:path';
import { validateResource } from '@medplum/core';
import type { StructureDefinition, Task } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from './fhir-definitions';
import { profileSnapshot } from './profile-snapshot';

const B = 'https://ketamine-careplans.example/fhir';
const CS = `${B}/CodeSystem/ketamine-careplans`;

function plannedTaskProfile(): StructureDefinition {
  const file = path.join(__dirname, '..', '..', '..', 'fhir-profiles', 'StructureDefinition-planned-task.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as StructureDefinition;
}

/** A session awaiting approval, as the service plans it. */
function plannedTask(): Task {
  return {
    resourceType: 'Task',
    identifier: [{ system: `${B}/NamingSystem/task-key`, value: 'CarePlan/cp1:apply:session-1' }],
    instantiatesCanonical: `${B}/ActivityDefinition/ketamine-low-dose-infusion|1.0.0`,
    status: 'draft',
    intent: 'plan',
    businessStatus: { coding: [{ system: CS, code: 'awaiting-approval' }] },
    code: { coding: [{ system: CS, code: 'infusion-session' }] },
    for: { reference: 'Patient/p1' },
    basedOn: [{ reference: 'CarePlan/cp1' }],
    authoredOn: '2026-12-07T10:00:00.000Z',
    restriction: { period: { start: '2026-12-08T00:00:00.000Z', end: '2026-12-10T00:00:00.000Z' } },
    extension: [
      {
        url: `${B}/StructureDefinition/protocol-window`,
        valuePeriod: { start: '2026-12-08T00:00:00.000Z', end: '2026-12-10T00:00:00.000Z' },
      },
      { url: `${B}/StructureDefinition/protocol-action`, valueString: 'session-1' },
    ],
  };
}

function problemsOf(task: Task): string[] {
  try {
    validateResource(task, { profile: profileSnapshot(plannedTaskProfile()) });
    return [];
  } catch (err) {
    const issues = (err as { outcome?: { issue?: { details?: { text?: string }; expression?: string[] }[] } }).outcome
      ?.issue;
    if (!issues) throw err;
    return issues.map((i) => `${i.expression?.join(',')}: ${i.details?.text}`);
  }
}

describe('profileSnapshot', () => {
  beforeAll(() => indexFhirDefinitions());

  it('lets a Task that conforms through', () => {
    expect(problemsOf(plannedTask())).toEqual([]);
  });

  it('enforces cardinality from the differential', () => {
    const { restriction: _, ...task } = plannedTask();
    expect(problemsOf(task).join('\n')).toMatch(/Task\.restriction: Missing required property/);
  });

  it('counts extension slices by url', () => {
    const task = plannedTask();
    task.extension = task.extension!.filter((e) => !e.url.endsWith('/protocol-window'));
    task.extension.push({ url: 'https://example.org/other', valueString: 'x' });
    expect(problemsOf(task).join('\n')).toMatch(/slice 'protocolWindow': expected 1\.\.1, but found 0/);
  });

  it('checks the invariants on the root', () => {
    const task = { ...plannedTask(), status: 'ready' as const };
    expect(problemsOf(task).join('\n')).toMatch(/Awaiting approval is a draft/);
  });

  it('keeps the base definition: an element R4 does not have is refused', () => {
    const task = { ...plannedTask(), dueWindow: 'tomorrow' } as Task;
    expect(problemsOf(task).join('\n')).toMatch(/dueWindow/);
  });

  it('refuses what it cannot build rather than guess', () => {
    const profile = plannedTaskProfile();
    profile.differential!.element.push({ id: 'Task.restriction.period.start', path: 'Task.restriction.period.start' });
    expect(() => profileSnapshot(profile)).toThrow(/Task\.restriction\.period\.start is neither in Task nor/);
  });
});
