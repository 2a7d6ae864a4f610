import type { Observation, Task } from '@medplum/fhirtypes';
import { elementsAsked, SUBSETTED, withElements } from './export-elements';

describe('_elements', () => {
  it('takes root elements for every type or one type, and refuses paths and types not exported', () => {
    expect(elementsAsked(['status,Task.owner', 'CarePlan.period'], ['Task', 'CarePlan'])).toEqual({
      byType: { '*': ['status'], Task: ['owner'], CarePlan: ['period'] },
    });
    expect(elementsAsked(['Task.restriction.period'], ['Task'])).toMatchObject({ reason: /not a root element/ });
    expect(elementsAsked(['Observation.value[x]'], ['Task'])).toMatchObject({ reason: /Observation is not a type/ });
    expect(elementsAsked(['value[x]'], ['Observation'])).toEqual({ byType: { '*': ['value[x]'] } });
  });

  it('keeps what was asked, what the type requires, resourceType, id and meta, tagged SUBSETTED', () => {
    const task: Task = {
      resourceType: 'Task',
      id: 't1',
      meta: { versionId: '2', tag: [{ system: 'x', code: 'kept' }] },
      status: 'ready',
      intent: 'order',
      description: 'left out',
      owner: { reference: 'Practitioner/1' },
      for: { reference: 'Patient/1' },
    };
    const required = (type: string) => (type === 'Task' ? ['status', 'intent'] : ['status', 'code']);
    expect(withElements(task, { Task: ['owner'] }, required)).toEqual({
      resourceType: 'Task',
      id: 't1',
      meta: { versionId: '2', tag: [{ system: 'x', code: 'kept' }, SUBSETTED] },
      status: 'ready',
      intent: 'order',
      owner: { reference: 'Practitioner/1' },
    });
    // Nothing asked for its type: whole, untagged.
    expect(withElements(task, { CarePlan: ['period'] }, required)).toBe(task);
    const observation: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'pain' },
      valueQuantity: { value: 4 },
      note: [{ text: 'left out' }],
    };
    expect(withElements(observation, { '*': ['value[x]'] }, required)).toEqual({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'pain' },
      valueQuantity: { value: 4 },
      meta: { tag: [SUBSETTED] },
    });
  });
});
