import type { MedicationRequest, Period } from '@medplum/fhirtypes';
import { orderInWords, orderWindow, windowsOverlap } from '@kc/followups';
import { SERVICE_CODE_SYSTEM, uuidFromKey } from '@kc/protocols';
import { orderTaskIdOf } from '@kc/task-states';
import { links, orderRefs, summary, type CardOptions } from './cards';
import type { Card } from './cds-types';

type CardSuggestion = NonNullable<Card['suggestions']>[number];

/**
 * order-sign: ketamine signed in the EHR while the patient already has a ketamine order open (active or on hold) for
 * the same time, which the new one does not say it replaces (`priorPrescription`): two orders for one session would be
 * given twice. A warning card names the orders on record (the session approved here, or the EHR's own) and suggests
 * removing the new order, or, when exactly one order is on record, marking the new one as replacing it (then the
 * service follows the replacement: the session keeps its approval and the to-do list shows the EHR's dose).
 *
 * Same time: the orders' windows overlap: an order's `dosageInstruction.timing.repeat.boundsPeriod`, else, for an
 * order approved here, its session's due window (`sessionWindows`: the Task's restriction.period); an order with
 * neither may be given any time, so it overlaps every other. Pure: the caller passes the patient's open ketamine
 * orders and the windows of those approved here.
 */
export function duplicateOrderCards(input: {
  /** The draft ketamine orders being signed (one patient's). */
  orders: MedicationRequest[];
  /** The patient's open ketamine orders on record. */
  open: MedicationRequest[];
  /** The due window of each order approved here, by the order's id (its session Task's restriction.period). */
  sessionWindows?: ReadonlyMap<string, Period>;
  options: CardOptions;
}): Card[] {
  const windowOf = (o: MedicationRequest) => orderWindow(o) ?? (o.id ? input.sessionWindows?.get(o.id) : undefined);
  return input.orders.flatMap((draft) => {
    const timed = Boolean(orderWindow(draft));
    const same = input.open.filter(
      (o) => o.id !== draft.id && !replaces(draft, o) && windowsOverlap(orderWindow(draft), windowOf(o)),
    );
    if (!same.length) return [];
    const cardKey = `cds:order-sign:${orderRefs([draft]).join(',')}:duplicate:${same.map((o) => o.id).join(',')}`;
    const approvedHere = same.some((o) => orderTaskIdOf(o));
    return [
      {
        uuid: uuidFromKey(cardKey),
        summary: summary(
          `Ketamine already ordered${timed ? ' for this time' : ''}${approvedHere ? ': a session approved in the ketamine care plan' : ''}`,
        ),
        detail: [
          `**The patient already has ${same.length === 1 ? 'an open ketamine order' : `${same.length} open ketamine orders`} for ${timed ? 'this time' : 'a time this order, which sets none, may be given at'}.** Signing this one as well orders the session twice.`,
          ...same.map((o) => `- ${orderInWords(o, windowOf(o), input.options.zone)}`),
          same.length === 1
            ? 'If this order is to replace it (another dose), mark it as replacing it; if not, remove this order.'
            : 'Remove this order, or cancel the ones it is to replace first.',
        ].join('\n'),
        indicator: 'warning',
        source: { label: input.options.sourceLabel, topic: { system: SERVICE_CODE_SYSTEM, code: 'duplicate-order' } },
        ...suggestions(draft, same, cardKey),
        links: links(input.options, 'Open the clinician worklist'),
      },
    ];
  });
}

/** The draft says it replaces (or follows from) this order. */
function replaces(draft: MedicationRequest, order: MedicationRequest): boolean {
  const ref = `MedicationRequest/${order.id}`;
  return draft.priorPrescription?.reference === ref || (draft.basedOn ?? []).some((b) => b.reference === ref);
}

/** Remove the new order; or, with one order on record, make the new one its replacement. */
function suggestions(
  draft: MedicationRequest,
  same: MedicationRequest[],
  cardKey: string,
): { selectionBehavior?: 'at-most-one'; suggestions?: CardSuggestion[] } {
  if (!draft.id) return {};
  const remove: CardSuggestion = {
    label: 'Remove this ketamine order',
    uuid: uuidFromKey(`${cardKey}:remove`),
    actions: [
      { type: 'delete', description: 'Remove this ketamine order', resourceId: [`MedicationRequest/${draft.id}`] },
    ],
  };
  if (same.length !== 1) return { selectionBehavior: 'at-most-one', suggestions: [remove] };
  const prior = same[0];
  const replacing: CardSuggestion = {
    label: 'Mark it as replacing the order on record',
    uuid: uuidFromKey(`${cardKey}:replace`),
    actions: [
      {
        type: 'update',
        description: `This order replaces MedicationRequest/${prior.id}; cancel that one when signing`,
        resource: { ...draft, priorPrescription: { reference: `MedicationRequest/${prior.id}` } },
      },
    ],
  };
  return { selectionBehavior: 'at-most-one', suggestions: [replacing, remove] };
}
