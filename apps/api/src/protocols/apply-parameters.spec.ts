import type { OutcomeException } from '@kc/common';
import { parseApplyParameters, queryToParameters } from './apply-parameters';

function refusal(body: unknown): { text: string; expression?: string[] } {
  try {
    parseApplyParameters(body);
  } catch (err) {
    const outcome = err as OutcomeException;
    expect(outcome.getStatus()).toBe(400);
    const issue = (outcome.getResponse() as { issue: { details: { text: string }; expression?: string[] }[] }).issue[0];
    return { text: issue.details.text, expression: issue.expression };
  }
  throw new Error('expected a 400');
}

const params = (...parameter: unknown[]) => ({ resourceType: 'Parameters', parameter });
const subject = { name: 'subject', valueReference: { reference: 'Patient/p1' } };

describe('parseApplyParameters ($apply input)', () => {
  it('reads subject, plan, context, startDate, persist and output', () => {
    const request = parseApplyParameters(
      params(
        subject,
        { name: 'planDefinition', valueCanonical: 'https://x/PlanDefinition/a|1.0.0' },
        { name: 'practitioner', valueReference: { reference: 'Practitioner/dr' } },
        { name: 'encounter', valueString: 'Encounter/e1' },
        { name: 'startDate', valueDate: '2027-01-04' },
        { name: 'persist', valueBoolean: true },
        { name: 'output', valueCode: 'parameters' },
      ),
    );
    expect(request).toEqual({
      patientId: 'p1',
      planDefinition: 'https://x/PlanDefinition/a|1.0.0',
      planResource: undefined,
      startDate: new Date('2027-01-04'),
      persist: true,
      context: {
        encounter: { reference: 'Encounter/e1' },
        practitioner: { reference: 'Practitioner/dr' },
        organization: undefined,
        setting: undefined,
      },
      output: 'parameters',
    });
  });

  it('defaults: no plan (instance level), no start date, not persisted, a CarePlan back', () => {
    expect(parseApplyParameters(params(subject))).toMatchObject({
      patientId: 'p1',
      planDefinition: undefined,
      startDate: undefined,
      persist: false,
      output: 'carePlan',
    });
  });

  it('takes the CPG/R5 url + version, and a PlanDefinition resource', () => {
    const byUrl = parseApplyParameters(
      params(subject, { name: 'url', valueUri: 'https://x/PlanDefinition/a' }, { name: 'version', valueString: '2' }),
    );
    expect(byUrl.planDefinition).toBe('https://x/PlanDefinition/a|2');
    const plan = { resourceType: 'PlanDefinition', status: 'active' };
    expect(parseApplyParameters(params(subject, { name: 'planDefinition', resource: plan })).planResource).toBe(plan);
  });

  it('refuses what is not a Parameters resource with named parameters', () => {
    for (const body of [undefined, null, 'x', [], 42])
      expect(refusal(body).text).toBe('Body must be a FHIR Parameters resource');
    expect(refusal({ resourceType: 'Patient' }).text).toBe('Body must be a Parameters resource, not "Patient"');
    expect(refusal({ resourceType: 'Parameters', parameter: {} }).text).toBe('Parameters.parameter must be an array');
    expect(refusal(params(subject, { value: 1 })).text).toBe('Every parameter needs a name');
    expect(refusal(params(subject, null)).text).toBe('Every parameter needs a name');
  });

  it('needs one subject that references a Patient', () => {
    expect(refusal(params()).text).toMatch(/^subject is required/);
    expect(refusal(params({ name: 'subject', valueBoolean: true })).text).toMatch(/^subject is required/);
    for (const reference of ['Practitioner/1', 'Patient/', 'Patient/a b', 'p1', 'Patient/1/_history/2'])
      expect(refusal(params({ name: 'subject', valueString: reference })).expression).toEqual([
        'Parameters.parameter.subject',
      ]);
    expect(refusal(params(subject, subject)).text).toBe('Parameter subject may appear only once');
  });

  it('refuses a plan that is neither a canonical nor a PlanDefinition', () => {
    expect(refusal(params(subject, { name: 'planDefinition', resource: { resourceType: 'Patient' } })).text).toBe(
      'planDefinition must be a PlanDefinition resource or a canonical URL',
    );
    expect(refusal(params(subject, { name: 'planDefinition', valueInteger: 3 })).text).toBe(
      'planDefinition must be a canonical URL or a PlanDefinition',
    );
    expect(refusal(params(subject, { name: 'url', valueBoolean: true })).text).toBe('url must be a canonical URL');
  });

  it('refuses context references of the wrong type, bad dates, persist and output values', () => {
    expect(refusal(params(subject, { name: 'practitioner', valueString: 'Patient/1' })).text).toBe(
      'practitioner must reference a Practitioner, e.g. Practitioner/123',
    );
    for (const value of [{ valueDate: 'soon' }, { valueString: '2027-01-01' }, { valueDateTime: '2027-99-99' }])
      expect(refusal(params(subject, { name: 'startDate', ...value })).text).toMatch(/^startDate must be/);
    expect(refusal(params(subject, { name: 'persist', valueString: 'true' })).text).toBe(
      'persist must be a valueBoolean',
    );
    expect(refusal(params(subject, { name: 'output', valueCode: 'bundle' })).text).toBe(
      'output must be carePlan or parameters',
    );
  });
});

describe('queryToParameters (GET $apply)', () => {
  it('makes each query parameter a parameter: persist boolean, startDate dateTime, the rest strings', () => {
    expect(queryToParameters({ subject: 'Patient/1', persist: 'true', startDate: '2027-01-01' })).toEqual({
      resourceType: 'Parameters',
      parameter: [
        { name: 'subject', valueString: 'Patient/1' },
        { name: 'persist', valueBoolean: true },
        { name: 'startDate', valueDateTime: '2027-01-01' },
      ],
    });
  });

  it('keeps repeats (parseApplyParameters refuses them) and refuses non-strings', () => {
    expect(queryToParameters({ subject: ['Patient/1', 'Patient/2'] }).parameter).toHaveLength(2);
    let thrown: unknown;
    try {
      queryToParameters({ subject: { a: 1 } });
    } catch (err) {
      thrown = err;
    }
    expect((thrown as OutcomeException).getResponse()).toMatchObject({
      issue: [{ details: { text: 'Query parameter subject must be a string' } }],
    });
    expect(queryToParameters({ persist: 'maybe' }).parameter).toEqual([{ name: 'persist', valueBoolean: undefined }]);
  });
});
