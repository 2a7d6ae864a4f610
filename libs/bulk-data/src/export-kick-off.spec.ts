import { exportRequested, groupPatients, type ExportableTypes, type KickOff } from './export-kick-off';

const TYPES: ExportableTypes = {
  known: ['CarePlan', 'Task', 'PlanDefinition', 'AuditEvent'],
  allowed: ['CarePlan', 'Task', 'PlanDefinition'],
  onlyWhenNamed: new Set(['AuditEvent']),
  searchParams: { Task: ['status', 'code', '_lastUpdated'], CarePlan: ['status'] },
};
const kickOff = (params: Record<string, string[]> = {}, more: Partial<KickOff> = {}): KickOff => ({
  level: 'system',
  method: 'GET',
  params,
  prefer: 'respond-async',
  accept: 'application/fhir+json',
  ...more,
});

describe('exportRequested', () => {
  it('exports every type the caller may read, in order, when none is named (not those only exported by name)', () => {
    expect(exportRequested(kickOff(), TYPES)).toEqual({
      accepted: true,
      request: { level: 'system', types: ['CarePlan', 'Task', 'PlanDefinition'] },
      ignored: [],
    });
    const admin = { ...TYPES, allowed: [...TYPES.allowed, 'AuditEvent'] };
    expect(exportRequested(kickOff(), admin)).toMatchObject({
      request: { types: ['CarePlan', 'Task', 'PlanDefinition'] },
    });
    expect(exportRequested(kickOff({ _type: ['AuditEvent'] }), admin)).toMatchObject({
      request: { types: ['AuditEvent'] },
    });
  });

  it('takes _type (comma-separated or repeated, once each), _since as an instant, the NDJSON formats', () => {
    const answer = exportRequested(
      kickOff({
        _type: ['Task,CarePlan', 'Task'],
        _since: ['2026-12-01T10:00:00+01:00'],
        _outputFormat: ['ndjson'],
      }),
      TYPES,
    );
    expect(answer).toEqual({
      accepted: true,
      request: { level: 'system', types: ['Task', 'CarePlan'], since: '2026-12-01T09:00:00.000Z' },
      ignored: [],
    });
  });

  it('takes patients on POST Patient/$export only', () => {
    const patients = { patient: ['Patient/a', 'Patient/b', 'Patient/a'] };
    expect(exportRequested(kickOff(patients, { level: 'patient', method: 'POST' }), TYPES)).toMatchObject({
      request: { level: 'patient', patients: ['Patient/a', 'Patient/b'] },
    });
    expect(exportRequested(kickOff(patients, { level: 'patient', method: 'GET' }), TYPES)).toMatchObject({
      status: 400,
    });
    expect(exportRequested(kickOff(patients, { method: 'POST' }), TYPES)).toMatchObject({ status: 400 });
    expect(
      exportRequested(kickOff({ patient: ['Group/1'] }, { level: 'patient', method: 'POST' }), TYPES),
    ).toMatchObject({ status: 400, reason: 'patient must be a reference like Patient/123, got "Group/1"' });
  });

  it("exports a Group's patients, narrowed to those a POST names; a Group of nobody exports nobody's data", () => {
    const group = { level: 'group' as const, groupMembers: ['Patient/a', 'Patient/b'] };
    expect(exportRequested(kickOff({}, group), TYPES)).toMatchObject({
      request: { patients: ['Patient/a', 'Patient/b'] },
    });
    expect(
      exportRequested(kickOff({ patient: ['Patient/b', 'Patient/z'] }, { ...group, method: 'POST' }), TYPES),
    ).toMatchObject({ request: { patients: ['Patient/b'] } });
    expect(exportRequested(kickOff({}, { level: 'group', groupMembers: [] }), TYPES)).toMatchObject({
      request: { patients: [] },
    });
  });

  it("takes a Group's active Patient members", () => {
    expect(
      groupPatients({
        member: [
          { entity: { reference: 'Patient/a' } },
          { entity: { reference: 'Patient/b' }, inactive: true },
          { entity: { reference: 'Practitioner/c' } },
          { entity: { reference: 'Patient/a' } },
          { entity: { display: 'no reference' } },
        ],
      }),
    ).toEqual(['Patient/a']);
    expect(groupPatients({})).toEqual([]);
  });

  it.each([
    [{}, { prefer: undefined }, 400, /Prefer: respond-async/],
    [{}, { accept: 'text/html' }, 406, /Accept: application\/fhir\+json/],
    [
      { includeAssociatedData: ['LatestProvenanceResources'] },
      {},
      400,
      /Not supported by this server: includeAssociatedData \(send Prefer: handling=lenient/,
    ],
    [{ _elements: ['Task.restriction.period'] }, {}, 400, /_elements: Task.restriction.period is not a root element/],
    [{ _typeFilter: ['Task?owner=x'] }, {}, 400, /_typeFilter Task cannot search by owner; it may use status, code/],
    [{ _typeFilter: ['Task?status=a,Task?code=b'] }, {}, 400, /One _typeFilter per resource type/],
    [{ _typeFilter: ['Task'] }, {}, 400, /_typeFilter Task names no search parameter/],
    [{ _type: ['CarePlan'], _typeFilter: ['Task?status=draft'] }, {}, 400, /Task is not a type being exported/],
    [{ _count: ['10'] }, {}, 400, /Unknown parameter\(s\) for \$export: _count/],
    [{ _outputFormat: ['text/csv'] }, {}, 400, /_outputFormat must be application\/fhir\+ndjson/],
    [{ _since: ['2026-12-01'] }, {}, 400, /_since must be a FHIR instant with a time zone/],
    [{ _since: ['2026-12-01T10:00:00'] }, {}, 400, /_since must be a FHIR instant/],
    [{ _type: ['Patient'] }, {}, 400, /does not export Patient at this level; it exports CarePlan, Task/],
    [{ _type: ['AuditEvent'] }, {}, 403, /may not read AuditEvent/],
  ])('refuses %j %j with %i', (params, more, status, reason) => {
    const answer = exportRequested(kickOff(params, more), TYPES);
    expect(answer).toMatchObject({ accepted: false, status });
    expect(answer.accepted === false && answer.reason).toMatch(reason);
  });

  it("reads a parameter named like Object's own members as a parameter (unknown), not as Object's", () => {
    for (const name of ['constructor', 'toString', '__proto__'])
      expect(
        exportRequested(kickOff(JSON.parse(`{"${name}": ["1"]}`) as Record<string, string[]>), TYPES),
      ).toMatchObject({
        accepted: false,
        status: 400,
      });
  });

  it('narrows a type to its _typeFilter; with Prefer: handling=lenient, leaves out what it does not support', () => {
    expect(exportRequested(kickOff({ _typeFilter: ['Task?status=draft&status=ready&code=x'] }), TYPES)).toMatchObject({
      request: { filters: { Task: { status: ['draft', 'ready'], code: ['x'] } } },
      ignored: [],
    });
    const lenient = exportRequested(
      kickOff(
        { includeAssociatedData: ['LatestProvenanceResources'], _until: ['2027-01-01T00:00:00Z'] },
        { prefer: 'respond-async, handling=lenient' },
      ),
      TYPES,
    );
    expect(lenient).toMatchObject({ accepted: true, ignored: ['includeAssociatedData', '_until'] });
    expect(exportRequested(kickOff({ _elements: ['status,Task.owner'] }), TYPES)).toMatchObject({
      request: { elements: { '*': ['status'], Task: ['owner'] } },
    });
  });

  it('refuses a caller who may read none of the types (a patient/ scope)', () => {
    expect(exportRequested(kickOff(), { ...TYPES, allowed: [] })).toMatchObject({ accepted: false, status: 403 });
  });

  it('lets an Accept of any JSON, or of anything, through', () => {
    for (const accept of ['application/json', '*/*', 'application/fhir+json; fhirVersion=4.0', undefined])
      expect(exportRequested(kickOff({}, { accept }), TYPES).accepted).toBe(true);
  });
});
