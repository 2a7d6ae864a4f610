import * as path from 'node:path';
import type { Condition, Observation } from '@medplum/fhirtypes';
import { activeCondition, bloodPressure, bodyWeight, PREGNANCY, searchset } from '../../../test/fixtures/patient-data';
import { contraindicationsGating, hasContraindicationChecks } from './action-contraindications';
import { ProtocolCatalog } from './catalog';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const plan = catalog.findPlanDefinition('ketamine-low-dose-series')!;

function gating(actionId: string, data: { conditions?: Condition[]; bp?: Observation[] }, overridden: string[] = []) {
  const patient = { resourceType: 'Patient' as const, id: 'p1' };
  return contraindicationsGating(plan, actionId, {
    variables: {
      bodyWeight: searchset(bodyWeight(80)),
      bloodPressure: searchset(...(data.bp ?? [])),
      pregnancyStatus: searchset(),
      conditions: searchset(...(data.conditions ?? [])),
      patient,
      subject: patient,
      context: patient,
    },
    overridden: new Set(overridden),
    resolver: catalog,
  });
}

describe('the contraindications gating one action of a shipped protocol, on the data as it is now', () => {
  const pregnant = [{ ...activeCondition(...PREGNANCY, 'Patient/p1'), id: 'preg' }];

  it('the infusions and the instructions are gated by the protocol group; the post-infusion check and reminders are not', () => {
    for (const action of ['infusion-session', 'patient-instructions', 'next-induction-session', 'maintenance-booster'])
      expect([action, hasContraindicationChecks(plan, action, catalog)]).toEqual([action, true]);
    for (const action of ['post-infusion-check', 'reminder-fasting', 'no-such-action'])
      expect([action, hasContraindicationChecks(plan, action, catalog)]).toEqual([action, false]);
  });

  it('a pregnancy on record gates the next session, with its evidence; not the check', () => {
    const found = gating('next-induction-session', { conditions: pregnant });
    expect(found.map((c) => [c.code.code, c.overridden, c.evidence])).toEqual([
      ['pregnancy', false, [{ reference: 'Condition/preg' }]],
    ]);
    expect(gating('post-infusion-check', { conditions: pregnant })).toEqual([]);
  });

  it('a blood pressure of 195/115 gates the session; 124/78 does not', () => {
    const high = { ...bloodPressure(195, 115, '2026-12-20T09:00:00Z', 'Patient/p1'), id: 'bp-high' };
    expect(gating('infusion-session', { bp: [high] }).map((c) => c.code.code)).toEqual(['uncontrolled-hypertension']);
    const normal = { ...bloodPressure(124, 78, '2026-12-20T09:00:00Z', 'Patient/p1'), id: 'bp-ok' };
    expect(gating('infusion-session', { bp: [normal] })).toEqual([]);
  });

  it('an overridden contraindication is marked so', () => {
    expect(gating('infusion-session', { conditions: pregnant }, ['pregnancy'])).toMatchObject([
      { code: { code: 'pregnancy' }, overridden: true },
    ]);
  });
});
