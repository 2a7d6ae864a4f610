import type { CarePlan, MedicationRequest, PlanDefinition, Task } from '@medplum/fhirtypes';
import { clinicDay, SERVICE_CODE_SYSTEM, uuidFromKey } from '@kc/protocols';
import { carePlanHoldsCare, carePlanHoldsTask, planEndDay, planEndPassed } from '@kc/followups';
import { links, orderRefs, removeOrdersSuggestion, summary, type CardOptions } from './cards';
import type { Card } from './cds-types';

/**
 * order-sign: ketamine ordered in the EHR for a patient whose ketamine care plan is paused or was stopped here (no
 * other plan of the order's protocols holds care) gets a warning card saying so, with its date and reason: the
 * prescriber may not know the treatment was paused (a hospital stay) or stopped. Since session 50 so does one whose
 * plan's end (`period.end`, set in the EHR) has passed, completed or not yet (the service approves no session after
 * it). A plan entered in error is ignored; a patient with no ketamine plan at all gets no card (ordering outside a
 * plan is the EHR's business).
 */
export function planStatusCards(input: {
  orders: MedicationRequest[];
  carePlans: CarePlan[];
  /** The protocols the orders could be given under (protocolsForOrder). */
  protocols: PlanDefinition[];
  options: CardOptions;
  now?: Date;
}): Card[] {
  const { orders, options, now = new Date() } = input;
  if (!orders.length) return [];
  const ketaminePlans = plansOf(input.carePlans, input.protocols);
  const ended = (c: CarePlan) => planEndPassed(c, now, options.zone);
  if (ketaminePlans.some((c) => carePlanHoldsCare(c).ok && !ended(c))) return [];
  const latest = ketaminePlans
    .filter((c) => c.status === 'on-hold' || c.status === 'revoked' || c.status === 'completed' || ended(c))
    .sort((a, b) => Date.parse(b.meta?.lastUpdated ?? '') - Date.parse(a.meta?.lastUpdated ?? ''))[0];
  if (!latest) return [];
  // Past its end: said so whatever its status says yet (the service completes it once nothing under it is open).
  const pastEnd = ended(latest) && (carePlanHoldsCare(latest).ok || latest.status === 'completed');
  const words = pastEnd ? WORDS.ended : WORDS[latest.status as keyof typeof WORDS];
  const since = pastEnd ? planEndDay(latest, options.zone) : clinicDay(latest.meta?.lastUpdated, options.zone);
  const cardKey = `cds:order-sign:${orderRefs(orders).join(',')}:plan:${latest.id}:${pastEnd ? 'ended' : latest.status}`;
  return [
    {
      uuid: uuidFromKey(cardKey),
      summary: summary(`Ketamine care plan ${words.summary}`),
      detail: [
        // The plan's last change: when it was paused or stopped, unless it was written again since.
        `**The patient's ketamine care plan ${words.detail}${since ? ` ${words.when} ${since}` : ''}.**`,
        ...(latest.title ? [`Plan: ${latest.title}`] : []),
        words.advice,
      ].join('\n\n'),
      indicator: 'warning',
      source: { label: options.sourceLabel, topic: { system: SERVICE_CODE_SYSTEM, code: words.topic } },
      ...removeOrdersSuggestion(orders, cardKey, latest.status !== 'completed' && !pastEnd),
      links: links(options, 'Open the clinician worklist'),
    },
  ];
}

const WORDS = {
  'on-hold': {
    summary: 'on hold: the treatment is paused',
    detail: 'is on hold (the treatment is paused; its approved orders are held)',
    when: 'since',
    advice: 'Sign this order only if the treatment is to resume; resume the care plan first.',
    topic: 'held-plan-paused',
  },
  revoked: {
    summary: 'stopped: the treatment was ended',
    detail: 'was stopped',
    when: 'on',
    advice: 'Sign this order only if the treatment is to start again, under a new care plan.',
    topic: 'withdrawn',
  },
  ended: {
    summary: 'ended: its end date has passed',
    detail: 'ended (its end date, set in the EHR)',
    when: 'on',
    advice:
      'No session is approved after a care plan’s end: extend the care plan in the EHR to go on with this course, or apply the protocol again for a new one.',
    topic: 'withdrawn',
  },
  completed: {
    summary: 'completed: no course is under way',
    detail: 'was completed',
    when: 'on',
    advice:
      'A new course of infusions needs a new care plan (the protocol’s eligibility checks run when it is applied).',
    topic: 'withdrawn',
  },
} as const;

/**
 * patient-view: a warning card per ketamine care plan of the patient that is on hold, saying its sessions are not to be
 * given until it resumes (its approved orders are held). Its follow-ups are then not shown as due (followUpsToShow).
 */
export function pausedPlanCards(carePlans: CarePlan[], protocols: PlanDefinition[], options: CardOptions): Card[] {
  return plansOf(carePlans, protocols)
    .filter((c) => c.status === 'on-hold')
    .map((c) => {
      const since = clinicDay(c.meta?.lastUpdated, options.zone);
      return {
        uuid: uuidFromKey(`cds:careplan:${c.id}:on-hold`),
        summary: summary(`Ketamine care plan on hold${c.title ? `: ${c.title}` : ''}`),
        detail: [
          `**The patient's ketamine care plan is on hold${since ? ` since ${since}` : ''}.** Its sessions are not to be given until it resumes: their approved orders are held, and none can be approved (its post-infusion checks can).`,
          'Resume the care plan to go on with the treatment, or stop it.',
        ].join('\n\n'),
        indicator: 'warning' as const,
        source: { label: options.sourceLabel, topic: { system: SERVICE_CODE_SYSTEM, code: 'held-plan-paused' } },
        links: links(options, 'Open the clinician worklist'),
      };
    });
}

/**
 * The follow-up Tasks their care plan holds (carePlanHoldsTask): a paused or stopped plan's are not due, nothing may be
 * done, but its post-infusion checks are.
 */
export function followUpsToShow(tasks: Task[], carePlans: CarePlan[]): Task[] {
  const notHolding = new Map(carePlans.filter((c) => !carePlanHoldsCare(c).ok).map((c) => [`CarePlan/${c.id}`, c]));
  return tasks.filter(
    (t) =>
      !(t.basedOn ?? []).some((b) => {
        const plan = b.reference ? notHolding.get(b.reference) : undefined;
        return plan && !carePlanHoldsTask(plan, t).ok;
      }),
  );
}

/** The patient's care plans of these protocols (by `instantiatesCanonical`, any version). */
function plansOf(carePlans: CarePlan[], protocols: PlanDefinition[]): CarePlan[] {
  const urls = new Set(protocols.map((p) => p.url).filter((u): u is string => Boolean(u)));
  return carePlans.filter((c) =>
    (c.instantiatesCanonical ?? []).some((canonical) => urls.has(canonical.split('|')[0])),
  );
}
