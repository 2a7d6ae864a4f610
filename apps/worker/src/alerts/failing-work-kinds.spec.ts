import { ranAs } from './failing-work-kinds';

describe('how an infusion follow-up that kept failing ran in the end, as the notice says', () => {
  it('planned, when its job created what follows the infusion', () => {
    expect(ranAs({ status: 'created', carePlanId: 'cp-1', tasks: ['t1'] })).toEqual({ planned: true });
  });

  it("planned nothing, in a clinician's words and with no ids, when its job judged there was nothing to plan", () => {
    expect(ranAs({ status: 'ignored', reason: 'CarePlan is revoked' })).toEqual({
      planned: false,
      why: 'its care plan was stopped',
    });
    expect(ranAs({ status: 'ignored', reason: 'CarePlan is entered-in-error' })).toEqual({
      planned: false,
      why: 'its care plan was recorded in error',
    });
    expect(ranAs({ status: 'ignored', reason: 'Procedure not found' })).toEqual({
      planned: false,
      why: 'the infusion is no longer on record',
    });
    expect(ranAs({ status: 'ignored', reason: 'charted twice: Procedure/p2 was followed up' })).toEqual({
      planned: false,
      why: 'it was charted twice, and its other record was followed up',
    });
  });
});
