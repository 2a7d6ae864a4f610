import type { MedicationAdministration, MedicationRequest } from '@medplum/fhirtypes';
import { rateNoticeEnding } from '@kc/protocols';
import { isOpenOrder, orderTaskIdOf, sessionBegunBy } from '@kc/task-states';
import { rateNotedOn, standingNoticeRates, type NoticeRates } from './late-administrations';

/**
 * An approved session's rate notice (rateNoticeSinceApproval) as its order and the pump's records of it are now:
 * `standing` while the open order still gives another rate than its protocol proposes and the pump has not begun it
 * (the clinic is told of it), else `ended`, with how (the clinic is told it is dealt with). Undefined for an order with
 * no notice, or not a session's order written here. Pure.
 */
export type RateNoticeNow =
  | { order: MedicationRequest; task: string; standing: NoticeRates }
  | { order: MedicationRequest; task: string; ended: { proposed: number; unit?: string; ending: string } };

export function rateNoticeNow(
  order: MedicationRequest,
  administrations: MedicationAdministration[],
): RateNoticeNow | undefined {
  const noted = rateNotedOn(order);
  const task = orderTaskIdOf(order);
  if (!noted || !task) return undefined;
  const ofOrder = administrations.filter((a) => a.request?.reference === `MedicationRequest/${order.id}`);
  const begun = Boolean(sessionBegunBy(ofOrder));
  const standing = isOpenOrder(order) && !begun ? standingNoticeRates(order) : undefined;
  if (standing) return { order, task, standing };
  return { order, task, ended: { proposed: noted.value, unit: noted.unit, ending: rateNoticeEnding(order, begun) } };
}
