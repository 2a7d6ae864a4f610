import * as path from 'node:path';
import type {
  CommunicationRequest,
  DetectedIssue,
  MedicationRequest,
  Resource,
  StructureDefinition,
  Task,
} from '@medplum/fhirtypes';
import { ProtocolCatalog } from './catalog';
import { CANONICAL_BASE, PROTOCOL_ACTION_EXTENSION, PROTOCOL_WINDOW_EXTENSION, SERVICE_CODE_SYSTEM } from './canonical';
import { WriteConformance } from './write-conformance';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const conformance = new WriteConformance(catalog);
const window = { start: '2026-12-08T00:00:00.000Z', end: '2026-12-10T00:00:00.000Z' };

/** A session awaiting approval, as the service plans it. */
function plannedTask(): Task {
  return {
    resourceType: 'Task',
    identifier: [{ system: `${CANONICAL_BASE}/NamingSystem/task-key`, value: 'cp1:apply:session-1' }],
    instantiatesCanonical: `${CANONICAL_BASE}/ActivityDefinition/ketamine-low-dose-infusion|1.0.0`,
    status: 'draft',
    intent: 'plan',
    businessStatus: { coding: [{ system: SERVICE_CODE_SYSTEM, code: 'awaiting-approval' }] },
    code: { coding: [{ system: SERVICE_CODE_SYSTEM, code: 'infusion-session' }] },
    for: { reference: 'Patient/p1' },
    basedOn: [{ reference: 'CarePlan/cp1' }],
    authoredOn: '2026-12-07T10:00:00.000Z',
    restriction: { period: window },
    extension: [
      { url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: window },
      { url: PROTOCOL_ACTION_EXTENSION, valueString: 'session-1' },
    ],
  };
}

const messages = (resource: Resource) => conformance.problemsOf(resource).map((p) => `${p.expression}: ${p.message}`);

describe('WriteConformance', () => {
  it('finds nothing wrong with a Task planned as the profile says', () => {
    expect(conformance.problemsOf(plannedTask())).toEqual([]);
  });

  it('holds the service’s Task to its profile: a Task awaiting approval that an EHR would act on is refused', () => {
    const problems = conformance.problemsOf({ ...plannedTask(), status: 'ready' });
    expect(problems.map((p) => [p.profile, p.message])).toEqual([
      [
        `${CANONICAL_BASE}/StructureDefinition/planned-task`,
        'Constraint kc-task-3 not met: Awaiting approval is a draft: nothing an EHR acts on',
      ],
    ]);
  });

  it('finds a code the service’s CodeSystem does not define', () => {
    const task = plannedTask();
    task.businessStatus!.coding!.push({ system: SERVICE_CODE_SYSTEM, code: 'approvd' });
    expect(messages(task)).toEqual([
      `Task.businessStatus: code "approvd" is not in ${CANONICAL_BASE}/ValueSet/task-state`,
      `Task.businessStatus.coding[1]: code "approvd" is not in ${SERVICE_CODE_SYSTEM}`,
    ]);
  });

  it('finds the service’s extension used outside the context its definition gives, or with another value type', () => {
    const task = plannedTask();
    task.extension![1] = { url: PROTOCOL_ACTION_EXTENSION, valueCode: 'session-1' };
    task.restriction!.extension = [{ url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: window }];
    expect(messages(task)).toEqual([
      `Task.extension[1]: extension ${PROTOCOL_ACTION_EXTENSION} has valueCode; its definition allows string`,
      `Task.restriction.extension[0]: extension ${PROTOCOL_WINDOW_EXTENSION} is used on Task.restriction; its definition allows Task`,
    ]);
  });

  it('finds an extension of the service’s that fhir-profiles/ does not define', () => {
    const task = plannedTask();
    task.extension!.push({ url: `${CANONICAL_BASE}/StructureDefinition/due-soon`, valueBoolean: true });
    expect(messages(task)).toEqual([
      `Task.extension[2]: extension ${CANONICAL_BASE}/StructureDefinition/due-soon is not defined in fhir-profiles/`,
    ]);
  });

  it('holds a proposal to never being authorised, and leaves an EHR’s own order to the EHR', () => {
    const proposal: MedicationRequest = {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'proposal',
      subject: { reference: 'Patient/p1' },
      medicationCodeableConcept: { text: 'Ketamine' },
      instantiatesCanonical: [`${CANONICAL_BASE}/ActivityDefinition/ketamine-low-dose-infusion|1.0.0`],
      basedOn: [{ reference: 'CarePlan/cp1' }],
    };
    expect(messages(proposal).join('\n')).toMatch(/A proposal is never authorised/);
    const ehrOrder: MedicationRequest = {
      resourceType: 'MedicationRequest',
      status: 'on-hold',
      intent: 'order',
      subject: { reference: 'Patient/p1' },
      medicationCodeableConcept: { text: 'Ketamine' },
    };
    expect(messages(ehrOrder)).toEqual([]);
  });

  it('holds a Task’s state to the task-state ValueSet (required): a code of the CodeSystem that is no state is refused', () => {
    const task = plannedTask();
    task.businessStatus = { coding: [{ system: SERVICE_CODE_SYSTEM, code: 'held-plan-paused' }] };
    const valueSet = `${CANONICAL_BASE}/ValueSet/task-state`;
    expect(messages(task)).toEqual([
      `Task.businessStatus: code "held-plan-paused" is not in ${valueSet}`,
      `Task.businessStatus: no code from ${valueSet} (required)`,
    ]);
  });

  it('leaves a code of another system alone under an extensible binding (an issue coded the EHR’s way)', () => {
    const issue: DetectedIssue = {
      resourceType: 'DetectedIssue',
      identifier: [{ system: `${CANONICAL_BASE}/NamingSystem/apply-key`, value: 'k1' }],
      status: 'preliminary',
      code: {
        coding: [
          { system: 'http://ehr.example/CodeSystem/after-infusion', code: 'vertigo' },
          { system: SERVICE_CODE_SYSTEM, code: 'effect-dizziness' },
        ],
      },
      severity: 'moderate',
      patient: { reference: 'Patient/p1' },
      identifiedDateTime: '2026-12-07T10:00:00.000Z',
      detail: 'Dizziness reported after an infusion',
    };
    expect(messages(issue)).toEqual([]);
    issue.code!.coding![1].code = 'infusion-effect';
    expect(messages(issue)).toEqual([
      `DetectedIssue.code: code "infusion-effect" is not in ${CANONICAL_BASE}/ValueSet/issue-kind`,
    ]);
  });

  it('holds a reminder to being about its Task', () => {
    const reminder: CommunicationRequest = {
      resourceType: 'CommunicationRequest',
      identifier: [{ system: `${CANONICAL_BASE}/NamingSystem/reminder-key`, value: 'Task/t1:ride-home:2026-12-07' }],
      status: 'active',
      subject: { reference: 'Patient/p1' },
      recipient: [{ reference: 'Patient/p1' }],
      about: [{ reference: 'Task/t1' }],
      payload: [{ contentString: 'Arrange a ride home' }],
      occurrenceDateTime: '2026-12-07T10:00:00.000Z',
      authoredOn: '2026-12-05T10:00:00.000Z',
    };
    expect(messages(reminder)).toEqual([]);
    expect(messages({ ...reminder, about: [{ reference: 'CarePlan/cp1' }] })).toEqual([
      'CommunicationRequest: Constraint kc-reminder-2 not met: About its Task',
    ]);
  });

  it('holds patient instructions to being sent only once approved: a proposal made active is refused', () => {
    const proposal: CommunicationRequest = {
      resourceType: 'CommunicationRequest',
      status: 'draft',
      subject: { reference: 'Patient/p1' },
      recipient: [{ reference: 'Patient/p1' }],
      basedOn: [{ reference: 'CarePlan/cp1' }],
      payload: [{ contentString: 'Nothing to eat or drink for 6 hours before' }],
    };
    expect(messages(proposal)).toEqual([]);
    expect(messages({ ...proposal, status: 'active' })).toEqual([
      'CommunicationRequest: Constraint kc-communication-1 not met: A proposal is never sent: only the request its approval writes (keyed by its Task) is active or completed',
    ]);
    const approved = {
      ...proposal,
      status: 'active' as const,
      identifier: [{ system: 'https://ketamine-careplans.example/fhir/NamingSystem/order-key', value: 'Task/t1' }],
    };
    expect(messages(approved)).toEqual([]);
  });

  it('says so on each write a profile applies to when its snapshot cannot be built (an edit it does not support)', () => {
    const edited = catalog.resources.map((r) => {
      if (r.id !== 'planned-task') return r;
      const profile = structuredClone(r) as StructureDefinition;
      profile.differential!.element.push({
        id: 'Task.restriction.period.end',
        path: 'Task.restriction.period.end',
        min: 1,
      });
      return profile;
    });
    expect(new WriteConformance(new ProtocolCatalog(edited)).problemsOf(plannedTask())).toEqual([
      {
        profile: `${CANONICAL_BASE}/StructureDefinition/planned-task`,
        expression: 'Task',
        message: `${CANONICAL_BASE}/StructureDefinition/planned-task: Task.restriction.period.end is neither in Task nor an extension slice`,
      },
    ]);
  });

  it('finds fhir-profiles/ itself consistent: every extension and code of the service used as defined', () => {
    expect(catalog.resources.flatMap((r) => messages(r).map((m) => `${r.resourceType}/${r.id} ${m}`))).toEqual([]);
  });
});
