import { SignJWT } from 'jose';
import { scopeRefusal, scopesGranting, smartScopesOf, type FhirAccess } from './smart-scopes';
import { TokenVerifier } from './token-verifier';

const task = (interaction: FhirAccess['interaction'], params?: Record<string, unknown>): FhirAccess => ({
  resourceType: 'Task',
  interaction,
  params,
});
const granted = (scope: string, access: FhirAccess, contexts?: Parameters<typeof scopesGranting>[2]) =>
  scopesGranting(smartScopesOf({ scope })!, access, contexts).map((s) => s.text);

describe('SMART resource scopes', () => {
  it('reads SMART 1.0 read/write/* and 2.0 cruds, per type or every type', () => {
    expect(granted('user/Task.read', task('r'))).toEqual(['user/Task.read']);
    expect(granted('user/Task.read', task('s'))).toEqual(['user/Task.read']);
    expect(granted('user/Task.read', task('u'))).toEqual([]);
    expect(granted('user/Task.write', task('u'))).toEqual(['user/Task.write']);
    expect(granted('user/Task.write', task('r'))).toEqual([]);
    expect(granted('system/*.*', task('c'))).toEqual(['system/*.*']);
    expect(granted('patient/*.rs', task('s'))).toEqual(['patient/*.rs']);
    expect(granted('patient/*.rs', task('u'))).toEqual([]);
    expect(granted('user/Task.cu', task('u'))).toEqual(['user/Task.cu']);
    expect(granted('user/CarePlan.cruds', task('r'))).toEqual([]);
  });

  it('is undefined without a resource scope, and grants nothing for one that does not parse', () => {
    expect(smartScopesOf({ scope: 'openid fhirUser launch/patient offline_access' })).toBeUndefined();
    expect(smartScopesOf({})).toBeUndefined();
    // Letters out of SMART 2.0's order, an unknown permission: named, so the token is scoped, to nothing.
    expect(smartScopesOf({ scope: 'openid user/Task.sr user/Task.admin' })).toEqual([]);
    // The `scp` claim (an array), as some authorization servers write it.
    expect(smartScopesOf({ scp: ['system/Task.rs', 42] })?.map((s) => s.text)).toEqual(['system/Task.rs']);
  });

  it('grants a search under a granular scope only when it names the scope’s parameters, and nothing else', () => {
    const scope = 'user/Task.rs?status=ready';
    expect(granted(scope, task('s', { status: 'ready', patient: 'Patient/1' }))).toEqual([scope]);
    expect(granted(scope, task('s', { status: ['draft', 'ready'] }))).toEqual([scope]);
    expect(granted(scope, task('s', { status: 'draft' }))).toEqual([]);
    expect(granted(scope, task('s'))).toEqual([]);
    expect(granted(scope, task('r'))).toEqual([]);
  });

  it('counts only the contexts asked for', () => {
    expect(granted('patient/Task.write', task('u'), ['user', 'system'])).toEqual([]);
    expect(granted('patient/Task.write', task('u'), ['patient'])).toEqual(['patient/Task.write']);
  });

  it('says what is missing and what the token grants', () => {
    const scopes = smartScopesOf({ scope: 'openid user/*.read' });
    expect(scopeRefusal(scopes, [task('r'), task('u')])).toBe(
      "The token's scopes do not allow this: it needs user/Task.u (or wider), and grants user/*.read",
    );
    expect(scopeRefusal(smartScopesOf({ scope: 'system/Task.rs' }), [task('c')])).toMatch(/needs system\/Task\.c/);
    expect(scopeRefusal(scopes, [task('s')])).toBeUndefined();
    // No scope named: the roles alone bound it.
    expect(scopeRefusal(undefined, [task('d')])).toBeUndefined();
  });
});

describe('roles of a token with no roles claim (SMART_ROLES)', () => {
  const secret = 'a-test-secret-of-at-least-thirty-two-characters';
  const token = (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('client-1')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
  const rolesOf = async (claims: Record<string, unknown>, smartRoles = {}) =>
    (await new TokenVerifier({ jwtSecret: secret, smartRoles }).verify(await token(claims)))?.roles;
  const mapping = { system: 'integration', Practitioner: 'clinician' } as const;

  it('gives a backend service’s token (system/ scopes) and a practitioner’s (user/ scopes) the configured role', async () => {
    expect(await rolesOf({ scope: 'system/CarePlan.rs' }, mapping)).toEqual(['integration']);
    expect(await rolesOf({ scope: 'openid user/*.read', fhirUser: 'Practitioner/p1' }, mapping)).toEqual(['clinician']);
    expect(
      await rolesOf({ scope: 'user/*.read', fhirUser: 'https://ehr.example/fhir/Practitioner/p1' }, mapping),
    ).toEqual(['clinician']);
  });

  it('gives none unless configured, to a patient, to a token without resource scopes, or beside a roles claim', async () => {
    expect(await rolesOf({ scope: 'system/CarePlan.rs' })).toEqual([]);
    expect(await rolesOf({ scope: 'user/*.read', fhirUser: 'Patient/1' }, mapping)).toEqual([]);
    expect(await rolesOf({ scope: 'openid fhirUser', fhirUser: 'Practitioner/p1' }, mapping)).toEqual([]);
    expect(await rolesOf({ scope: 'system/*.*', roles: [] }, mapping)).toEqual([]);
    expect(await rolesOf({ scope: 'system/*.*', roles: ['clinician'] }, mapping)).toEqual(['clinician']);
  });

  it('keeps the scopes and the launch patient on the caller', async () => {
    const caller = await new TokenVerifier({ jwtSecret: secret }).verify(
      await token({ roles: ['integration'], scope: 'patient/*.rs launch/patient', patient: '123' }),
    );
    expect(caller?.scopes?.map((s) => s.text)).toEqual(['patient/*.rs']);
    expect(caller?.patient).toBe('Patient/123');
  });
});
