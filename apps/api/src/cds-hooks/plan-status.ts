import type { CarePlan, MedicationRequest, PlanDefinition } from '@medplum/fhirtypes';
import { SERVICE_CODE_SYSTEM, uuidFromKey } from '@kc/protocols';
import { links, summary, type CardOptions } from './cards';
import type { Card } from './cds-types';

/**
 * order-sign: ketamine ordered in the EHR for a patient whose ketamine care plan is paused or was stopped here (no
 * other plan of the order's protocols holds care) gets a warning card saying so, with its date and reason: the
 * prescriber may not know the treatment was paused (a hospital stay) or stopped. A plan entered in error is ignored;
 * a patient with no ketamine plan at all gets no card (ordering outside a plan is the EHR's business).
 */
export function planStatusCards(input: {
  orders: MedicationRequest[];
  carePlans: CarePlan[];
  /** The protocols the orders could be given under (protocolsForOrder). */
  protocols: PlanDefinition[];
  options: CardOptions;
}): Card[] {
  const { orders, options } = input;
  if (!orders.length) return [];
  const urls = new Set(input.protocols.map((p) => p.url).filter((u): u is string => Boolean(u)));
  const ketaminePlans = input.carePlans.filter((c) =>
    (c.instantiatesCanonical ?? []).some((canonical) => urls.has(canonical.split('|')[0])),
  );
  if (ketaminePlans.some((c) => c.status === 'active' || c.status === 'draft')) return [];
  const latest = ketaminePlans
    .filter((c) => c.status === 'on-hold' || c.status === 'revoked' || c.status === 'completed')
    .sort((a, b) => Date.parse(b.meta?.lastUpdated ?? '') - Date.parse(a.meta?.lastUpdated ?? ''))[0];
  if (!latest) return [];
  const words = WORDS[latest.status as keyof typeof WORDS];
  const since = latest.meta?.lastUpdated?.slice(0, 10);
  const orderKey = orders.map((o) => o.id ?? '').join(',');
  const ids = orders.flatMap((o) => (o.id ? [`MedicationRequest/${o.id}`] : []));
  return [
    {
      uuid: uuidFromKey(`cds:order-sign:${orderKey}:plan:${latest.id}:${latest.status}`),
      summary: summary(`Ketamine care plan ${words.summary}`),
      detail: [
        // The plan's last change: when it was paused or stopped, unless it was written again since.
        `**The patient's ketamine care plan ${words.detail}${since ? ` ${words.when} ${since}` : ''}.**`,
        ...(latest.title ? [`Plan: ${latest.title}`] : []),
        words.advice,
      ].join('\n\n'),
      indicator: 'warning',
      source: { label: options.sourceLabel, topic: { system: SERVICE_CODE_SYSTEM, code: words.topic } },
      ...(ids.length
        ? {
            selectionBehavior: 'at-most-one' as const,
            suggestions: [
              {
                label: 'Remove the ketamine order',
                uuid: uuidFromKey(`cds:order-sign:${orderKey}:plan:${latest.id}:remove`),
                isRecommended: latest.status !== 'completed',
                actions: [{ type: 'delete' as const, description: 'Remove the ketamine order', resourceId: ids }],
              },
            ],
          }
        : {}),
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
  completed: {
    summary: 'completed: no course is under way',
    detail: 'was completed',
    when: 'on',
    advice:
      'A new course of infusions needs a new care plan (the protocol’s eligibility checks run when it is applied).',
    topic: 'withdrawn',
  },
} as const;
