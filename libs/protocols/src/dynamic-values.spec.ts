import type { Bundle, MedicationRequest } from '@medplum/fhirtypes';
import { applyDynamicValues, setPath } from './dynamic-values';

const weight = (kg: number): Bundle => ({
  resourceType: 'Bundle',
  type: 'searchset',
  entry: [
    {
      resource: {
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'weight' },
        valueQuantity: { value: kg, unit: 'kg', code: 'kg' },
      },
    },
  ],
});

describe('applyDynamicValues', () => {
  const rate = [
    {
      path: 'dosageInstruction[0].doseAndRate[0].rateQuantity.value',
      expression: {
        language: 'text/fhirpath' as const,
        expression: "(%bodyWeight.entry.resource.first().value.where(code = 'kg').value * 0.5).round(1)",
      },
    },
  ];
  const request: MedicationRequest = {
    resourceType: 'MedicationRequest',
    status: 'draft',
    intent: 'proposal',
    subject: { reference: 'Patient/p' },
    dosageInstruction: [{ doseAndRate: [{ rateQuantity: { unit: 'mg/h' } }] }],
  };

  it('computes the weight-based rate and keeps the unit', () => {
    const { resource, unresolved } = applyDynamicValues(request, rate, { bodyWeight: weight(73) });
    expect(resource.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity).toEqual({ unit: 'mg/h', value: 36.5 });
    expect(unresolved).toEqual([]);
  });

  it('reports the value as unresolved when there is no weight, leaving the dose empty', () => {
    const { resource, unresolved } = applyDynamicValues(request, rate, {
      bodyWeight: { resourceType: 'Bundle', type: 'searchset' },
    });
    expect(resource.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value).toBeUndefined();
    expect(unresolved.map((u) => u.path)).toEqual(['dosageInstruction[0].doseAndRate[0].rateQuantity.value']);
  });

  it('leaves the resource it was given as it was (it shares objects with its ActivityDefinition)', () => {
    const before = JSON.stringify(request);
    applyDynamicValues(request, rate, { bodyWeight: weight(90) });
    expect(JSON.stringify(request)).toBe(before);
  });

  it('does not take a weight in pounds as kilograms', () => {
    const pounds: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [
        {
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: {},
            valueQuantity: { value: 176, unit: 'lb', code: '[lb_av]' },
          },
        },
      ],
    };
    expect(applyDynamicValues(request, rate, { bodyWeight: pounds }).unresolved).toHaveLength(1);
  });

  it('setPath creates missing arrays and objects', () => {
    const target: Record<string, unknown> = {};
    setPath(target, 'a[1].b.c', 5);
    expect(target).toEqual({ a: [undefined, { b: { c: 5 } }] });
  });
});
