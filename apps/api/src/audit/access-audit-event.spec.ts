import type { CarePlan, Task } from '@medplum/fhirtypes';
import { accessAuditEvent, patientsIn, type PatientDataAccess } from './access-audit-event';

describe('accessAuditEvent (BALP shapes)', () => {
  const access = (extra: Partial<PatientDataAccess> = {}): PatientDataAccess => ({
    interaction: 'search',
    request: 'GET /fhir/Task?patient=Patient/p1',
    patients: ['Patient/p1'],
    status: 200,
    agent: { id: 'ehr-1', address: '10.0.0.7' },
    recorded: new Date('2027-01-04T10:00:00Z'),
    id: 'k1',
    ...extra,
  });

  it('outcome by status: 0 answered, 4 refused, 8 failed on the server side', () => {
    expect(accessAuditEvent(access()).outcome).toBe('0');
    expect(accessAuditEvent(access({ status: 403 }))).toMatchObject({ outcome: '4', outcomeDesc: 'HTTP 403' });
    expect(accessAuditEvent(access({ status: 503 }))).toMatchObject({ outcome: '8', outcomeDesc: 'HTTP 503' });
  });

  it('a query names the patients and carries the request, base64 as BALP asks; a read of a patient does not', () => {
    const query = accessAuditEvent(access());
    expect(query.action).toBe('E');
    expect(query.entity?.map((e) => e.role?.code)).toEqual(['1', '24']);
    expect(Buffer.from(query.entity![1].query!, 'base64').toString()).toBe('GET /fhir/Task?patient=Patient/p1');
    const read = accessAuditEvent(access({ interaction: 'read', request: 'GET /patients/p1/timeline' }));
    expect(read.action).toBe('R');
    expect(read.entity?.map((e) => e.role?.code)).toEqual(['1']);
  });

  it('the agent: the fhirUser when the token has one, else its subject; the EHR user as a second, non-requesting agent', () => {
    expect(accessAuditEvent(access()).agent).toEqual([
      {
        who: { identifier: { value: 'ehr-1' } },
        altId: 'ehr-1',
        requestor: true,
        network: { address: '10.0.0.7', type: '2' },
      },
    ]);
    const cds = accessAuditEvent(access({ agent: { id: 'https://ehr.example/cds' }, onBehalfOf: 'Practitioner/x' }));
    expect(cds.agent.map((a) => [a.who, a.requestor])).toEqual([
      [{ identifier: { value: 'https://ehr.example/cds' } }, true],
      [{ reference: 'Practitioner/x' }, false],
    ]);
  });

  it('patientsIn: each patient once, from subject and for; nothing from other references', () => {
    const plan: CarePlan = {
      resourceType: 'CarePlan',
      status: 'active',
      intent: 'plan',
      subject: { reference: 'Patient/p1' },
    };
    const task: Task = { resourceType: 'Task', status: 'draft', intent: 'plan', for: { reference: 'Patient/p1' } };
    const group: Task = { ...task, for: { reference: 'Group/g1' } };
    expect(patientsIn([plan, task, group, { resourceType: 'Patient', id: 'p2' }])).toEqual([
      'Patient/p1',
      'Patient/p2',
    ]);
  });
});
