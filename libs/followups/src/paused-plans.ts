import type { CarePlan, DetectedIssue, Task } from '@medplum/fhirtypes';
import { contraindicationState } from '@kc/protocols';
import {
  isApproved,
  isHeldForPausedPlan,
  pausedPlanOrder,
  planHeldFor,
  resumedPlanOrder,
  sessionBegunBy,
  type AuthorisableRequest,
  type OpenOrder,
} from '@kc/task-states';
import { carePlanHoldsCare, carePlanReferenceOf } from './care-plan-state';

/**
 * A paused plan (CarePlan `on-hold`: an EHR paused the treatment, say for a hospital stay) authorises no care: its
 * approved orders are held until it resumes, so an EHR, a pharmacy or a pump integration reading
 * `MedicationRequest.status` does not give them meanwhile. The Tasks stay approved (`ready`) on the to-do list, which
 * says the plan is on hold; nobody may approve, reschedule or change a dose under it (the approval guard). Pure: the
 * worker reads and writes.
 */

/** An order as read and as it is to be written. */
export interface OrderChange {
  read: AuthorisableRequest;
  changed: AuthorisableRequest;
}

/** The approved Tasks (ready, or carried on in the EHR) of paused plans: those whose orders are read to be held. */
export function approvedOnPausedPlans(tasks: Task[], carePlans: Map<string, CarePlan>): Task[] {
  return tasks.filter((task) => {
    const ref = carePlanReferenceOf(task);
    return isApproved(task) && ref !== undefined && carePlans.get(ref)?.status === 'on-hold';
  });
}

/**
 * Their active orders, held; one whose session the pump has begun is left to its infusion. `plan`: the paused plan
 * of the order's Task, which a hold names on an order naming none (the EHR's), for the resumption to find it.
 */
export function ordersToHoldWhilePaused(orders: (OpenOrder & { plan?: string })[]): OrderChange[] {
  return orders
    .filter(({ order, administrations }) => order.status === 'active' && !sessionBegunBy(administrations))
    .map(({ order, plan }) => ({ read: order, changed: pausedPlanOrder(order, plan) }));
}

/** The plan an order held for a paused plan is held for: the one it names, or the one its hold names. */
export function pausedPlanOf(order: AuthorisableRequest): string | undefined {
  return carePlanReferenceOf(order) ?? planHeldFor(order);
}

/**
 * An order held for a paused plan whose hold lost the plan it named (an EHR rewrote the order whole while it was held,
 * dropping the extension it does not know), with that plan named again: the plan of a session approved on the order,
 * among the Tasks naming it (`_revinclude=Task:based-on`). So the plan's resumption still finds and releases it. Any
 * other order, as it is.
 */
export function heldNamingItsPlan(order: AuthorisableRequest, naming: Task[]): AuthorisableRequest {
  if (!isHeldForPausedPlan(order) || pausedPlanOf(order)) return order;
  const ref = `${order.resourceType}/${order.id}`;
  const plan = naming
    .filter((t) => t.basedOn?.some((b) => b.reference === ref))
    .map(carePlanReferenceOf)
    .find(Boolean);
  return plan ? pausedPlanOrder(order, plan) : order;
}

/**
 * The orders held for a paused plan that may be given again: their plan holds care again (draft or active) and no
 * contraindication on it is unresolved (one found meanwhile keeps them held, as a contraindication's hold does, until
 * a clinician overrides it). A plan stopped meanwhile releases nothing: its withdrawal cancels them.
 */
export function ordersToResume(input: {
  orders: AuthorisableRequest[];
  carePlans: Map<string, CarePlan>;
  issues: Map<string, DetectedIssue[]>;
}): OrderChange[] {
  return input.orders.filter(isHeldForPausedPlan).flatMap((order) => {
    const ref = pausedPlanOf(order);
    const carePlan = ref ? input.carePlans.get(ref) : undefined;
    if (!ref || !carePlan || !carePlanHoldsCare(carePlan).ok) return [];
    if ((input.issues.get(ref) ?? []).some((i) => contraindicationState(i) === 'unresolved')) return [];
    return [{ read: order, changed: resumedPlanOrder(order) }];
  });
}
