import { Injectable } from '@nestjs/common';
import type { CarePlan, DetectedIssue, Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, type SearchParams } from '@kc/fhir';
import { carePlanReferenceOf } from '@kc/followups';
import {
  isApproved,
  isAuthorisable,
  isAwaitingApproval,
  isTaskHeldForContraindication,
  OPEN_STATUS_SEARCH,
  type AuthorisableRequest,
} from '@kc/task-states';

/** Tasks awaiting approval, and those approved and not done yet, with what the sweeps judge them by. */
export interface OpenTasks {
  /** Awaiting approval (draft). */
  awaiting: Task[];
  /** Approved, not done yet (ready): their orders are active, and a contraindication found now holds them. */
  approved: Task[];
  /** Approved, then held by this service with their orders: released once their plan is clear. */
  held: Task[];
  /** Each Task's CarePlan, by reference. */
  carePlans: Map<string, CarePlan>;
  /** The draft requests the Tasks authorise, by reference. */
  proposals: Map<string, AuthorisableRequest>;
  /** The DetectedIssues implicating each plan, by the plan's reference. */
  issues: Map<string, DetectedIssue[]>;
}

/** A plan's open Tasks when it has none (a plan this service completed, made active again). */
export function nothingOpen(): OpenTasks {
  return { awaiting: [], approved: [], held: [], carePlans: new Map(), proposals: new Map(), issues: new Map() };
}

/** The open Tasks of one plan, out of a read of many (its CarePlan, proposals and issues alongside). */
export function openTasksOfPlan(open: OpenTasks, carePlanRef: string): OpenTasks {
  const under = (tasks: Task[]) => tasks.filter((t) => carePlanReferenceOf(t) === carePlanRef);
  const carePlan = open.carePlans.get(carePlanRef);
  return {
    ...open,
    awaiting: under(open.awaiting),
    approved: under(open.approved),
    held: under(open.held),
    carePlans: new Map(carePlan ? [[carePlanRef, carePlan]] : []),
    issues: new Map([[carePlanRef, open.issues.get(carePlanRef) ?? []]]),
  };
}

/**
 * Reads the Tasks awaiting approval and the approved ones not done yet (all of them, a plan's, a patient's) in one
 * paged search with their CarePlans, the requests they authorise and the plans' DetectedIssues (`_include`,
 * `_revinclude:iterate`): the stopped-plan and the contraindication sweeps judge the same read, made once per
 * overdue sweep.
 */
@Injectable()
export class OpenTasksReader {
  constructor(private readonly fhir: FhirClient) {}

  /** Every Task awaiting approval or approved and not done, by `_lastUpdated` (so Medplum pages by cursor). */
  all(): Promise<OpenTasks> {
    return this.read({ _sort: '_lastUpdated' });
  }

  /** Those matching `params` besides the status (a plan's `based-on`, a patient's `patient`). */
  async read(params: SearchParams): Promise<OpenTasks> {
    const open: OpenTasks = {
      awaiting: [],
      approved: [],
      held: [],
      carePlans: new Map(),
      proposals: new Map(),
      issues: new Map(),
    };
    // Pages repeat a plan's issues: each once.
    const issues = new Map<string, DetectedIssue>();
    const pages = this.fhir.searchPages<Task>('Task', {
      ...params,
      status: OPEN_STATUS_SEARCH,
      _count: 200,
      _include: ['Task:based-on', 'Task:focus'],
      '_revinclude:iterate': 'DetectedIssue:implicated',
    });
    for await (const page of pages) {
      for (const task of matchesOf<Task>(page)) {
        // By what a clinician decided, whatever status the EHR carries it on with (in progress is approved still).
        if (isAwaitingApproval(task)) open.awaiting.push(task);
        else if (isApproved(task)) open.approved.push(task);
        else if (isTaskHeldForContraindication(task)) open.held.push(task);
      }
      for (const resource of includedOf<Resource>(page)) {
        const ref = `${resource.resourceType}/${resource.id}`;
        if (resource.resourceType === 'CarePlan') open.carePlans.set(ref, resource);
        else if (resource.resourceType === 'DetectedIssue') issues.set(ref, resource);
        else if (isAuthorisable(resource)) open.proposals.set(ref, resource);
      }
    }
    for (const issue of issues.values())
      for (const { reference } of issue.implicated ?? [])
        if (reference) open.issues.set(reference, [...(open.issues.get(reference) ?? []), issue]);
    return open;
  }
}
