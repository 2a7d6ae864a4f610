import * as path from 'node:path';
import type { Bundle, Medication, MedicationRequest, Resource } from '@medplum/fhirtypes';
import { patientDataQueries, ProtocolCatalog, type ProtocolVariables } from '@kc/protocols';
import {
  activeCondition,
  bloodPressure,
  bodyWeight,
  FIBROMYALGIA,
  PREGNANCY,
  PSYCHOSIS,
  searchset,
} from '../../../../test/fixtures/patient-data';
import { evaluateEligibility } from './eligibility';
import {
  isKetamineOrder,
  ketamineOrders,
  ketamineProductCodes,
  protocolsForOrder,
  unresolvedMedicationOrders,
} from './ketamine-orders';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '../../../../fhir-profiles'));
const lowDose = catalog.findPlanDefinition('ketamine-low-dose-series')!;

/** The patient's data bound as the protocol's inputs declare it. */
function data(records: { bp?: Resource[]; conditions?: Resource[]; pregnancyStatus?: Resource[] }): ProtocolVariables {
  const names = patientDataQueries(lowDose, 'p1').map((q) => q.name);
  const vars: ProtocolVariables = Object.fromEntries(names.map((n) => [n, searchset()]));
  vars.bodyWeight = searchset(bodyWeight(80));
  if (records.bp) vars.bloodPressure = searchset(...records.bp);
  if (records.conditions) vars.conditions = searchset(...records.conditions);
  if (records.pregnancyStatus) vars.pregnancyStatus = searchset(...records.pregnancyStatus);
  return vars;
}

describe('eligibility from the protocols in fhir-profiles (pure)', () => {
  it('an eligible patient fails nothing and every condition could be checked', () => {
    const verdict = evaluateEligibility([
      {
        plan: lowDose,
        variables: data({ bp: [bloodPressure(130, 85)], conditions: [activeCondition(...FIBROMYALGIA)] }),
      },
    ]);
    expect(verdict).toEqual({ failed: [], unchecked: [] });
  });

  it('names each failed contraindication with exactly the records that show it', () => {
    const pregnancy = { ...activeCondition(...PREGNANCY), id: 'preg' };
    const psychosis = { ...activeCondition(...PSYCHOSIS), id: 'psy' };
    const fibro = { ...activeCondition(...FIBROMYALGIA), id: 'fib' };
    const bp = { ...bloodPressure(185, 90), id: 'bp' };
    const verdict = evaluateEligibility([
      { plan: lowDose, variables: data({ bp: [bp], conditions: [fibro, pregnancy, psychosis] }) },
    ]);
    const byCode = Object.fromEntries(verdict.failed.map((f) => [f.code, f.evidence.map((r) => r.id)]));
    expect(byCode).toEqual({ 'uncontrolled-hypertension': ['bp'], pregnancy: ['preg'], psychosis: ['psy'] });
    expect(verdict.failed.find((f) => f.code === 'pregnancy')!.description).toMatch(/^Pregnancy on record/);
  });

  it('a pregnant status observation is evidence too; without a blood pressure the hypertension check is unchecked', () => {
    const status = {
      resourceType: 'Observation' as const,
      id: 'ps',
      status: 'final' as const,
      code: { coding: [{ system: 'http://loinc.org', code: '82810-3' }] },
      subject: { reference: 'Patient/p1' },
      valueCodeableConcept: { coding: [{ system: 'http://loinc.org', code: 'LA15173-0', display: 'Pregnant' }] },
    };
    const verdict = evaluateEligibility([{ plan: lowDose, variables: data({ pregnancyStatus: [status] }) }]);
    expect(verdict.failed.map((f) => [f.code, f.evidence.map((r) => r.id)])).toEqual([['pregnancy', ['ps']]]);
    expect(verdict.unchecked.map((u) => u.code)).toEqual(['uncontrolled-hypertension']);
  });

  it('evaluates each contraindication once across protocols', () => {
    const plans = catalog.planDefinitions();
    const variables = data({ bp: [bloodPressure(200, 120)] });
    const verdict = evaluateEligibility(plans.map((plan) => ({ plan, variables })));
    expect(verdict.failed.map((f) => f.code)).toEqual(['uncontrolled-hypertension']);
  });
});

describe('ketamine orders (pure)', () => {
  const codes = ketamineProductCodes(catalog.resources);
  const order = (extra: Partial<MedicationRequest>): MedicationRequest => ({
    resourceType: 'MedicationRequest',
    id: 'mr',
    status: 'draft',
    intent: 'order',
    subject: { reference: 'Patient/p1' },
    ...extra,
  });

  it('reads the product codes from the ActivityDefinitions', () => {
    expect(codes).toEqual(
      expect.arrayContaining([
        { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6130' },
        { system: 'http://snomed.info/sct', code: '373464007' },
      ]),
    );
  });

  it('recognises ketamine by code, contained Medication or a Medication in the draft orders', () => {
    const snomed = { coding: [{ system: 'http://snomed.info/sct', code: '373464007' }] };
    expect(isKetamineOrder(order({ medicationCodeableConcept: snomed }), codes)).toBe(true);
    expect(
      isKetamineOrder(
        order({
          medicationReference: { reference: '#k' },
          contained: [{ resourceType: 'Medication', id: 'k', code: snomed }],
        }),
        codes,
      ),
    ).toBe(true);
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: 'urn:uuid:med', resource: { resourceType: 'Medication', code: snomed } },
        { resource: order({ medicationReference: { reference: 'urn:uuid:med' } }) },
        {
          resource: order({
            id: 'other',
            medicationCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '6130' }] },
          }),
        },
      ],
    };
    // RxNorm's 6130 under the SNOMED system is not ketamine.
    expect(ketamineOrders(bundle, codes).map((o) => o.id)).toEqual(['mr']);
  });

  it('an order naming a Medication found nowhere is unresolved until the Medication is read; then judged by its code', () => {
    const snomed = { coding: [{ system: 'http://snomed.info/sct', code: '373464007' }] };
    const ondansetron = { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '26225' }] };
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { resource: order({ id: 'k', medicationReference: { reference: 'Medication/ket' } }) },
        { resource: order({ id: 'o', medicationReference: { reference: 'Medication/ond' } }) },
        { resource: order({ id: 'c', medicationCodeableConcept: snomed }) },
      ],
    };
    expect(ketamineOrders(bundle, codes).map((o) => o.id)).toEqual(['c']);
    expect(unresolvedMedicationOrders(bundle).map((o) => o.id)).toEqual(['k', 'o']);
    const resolved = new Map<string, Medication>([
      ['Medication/ket', { resourceType: 'Medication', code: snomed }],
      ['Medication/ond', { resourceType: 'Medication', code: ondansetron }],
    ]);
    expect(ketamineOrders(bundle, codes, resolved).map((o) => o.id)).toEqual(['k', 'c']);
    expect(unresolvedMedicationOrders(bundle, resolved)).toEqual([]);
  });

  it('an order instantiating a protocol activity is checked against the protocols using it, else against all', () => {
    const plans = catalog.planDefinitions();
    const highDose = order({
      instantiatesCanonical: [
        'https://ketamine-careplans.example/fhir/ActivityDefinition/ketamine-high-dose-infusion|1.0.0',
      ],
    });
    expect(protocolsForOrder(highDose, plans).map((p) => p.id)).toEqual(['ketamine-high-dose-as-needed']);
    expect(protocolsForOrder(order({}), plans)).toHaveLength(plans.length);
  });
});
