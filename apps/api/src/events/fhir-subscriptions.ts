import { deepEquals } from '@medplum/core';
import type { Subscription } from '@medplum/fhirtypes';

/**
 * The FHIR Subscriptions a server needs so that the webhook (`/webhooks/fhir`) hears of what this service acts on at
 * once, rather than at the next poll or sweep: one per criteria, each what FhirWebhookController takes.
 */
export const SUBSCRIPTION_CRITERIA: readonly {
  criteria: string;
  why: string;
  deletions?: true;
  /**
   * Deletions only: Medplum's supported-interaction extension (and the embedded store's, which runs it). HAPI cannot
   * be asked for deletions alone: it is sent every change too (each a cheap job, one per resource at a time).
   */
  onlyDeletions?: true;
}[] = [
  {
    criteria: 'Procedure?status=completed,entered-in-error',
    why: 'an infusion done: its follow-ups are written; recorded in error (or deleted) since: its plan is held until a clinician puts it right',
    deletions: true,
  },
  {
    criteria: 'Task',
    why: 'a Task written (or deleted) by the EHR: the worklist and to-do list, a check completed there, what a deleted one authorised withdrawn',
    deletions: true,
  },
  { criteria: 'QuestionnaireResponse', why: 'answers to a check written without its Task (a patient portal)' },
  {
    criteria: 'Observation',
    why: 'a score (the booster timing), or a blood pressure or pregnancy status (the contraindication checks)',
  },
  { criteria: 'Condition', why: 'a condition that may contraindicate what is approved or awaits approval' },
  {
    criteria: 'CarePlan',
    why: 'a plan stopped, paused or deleted in the EHR: its Tasks awaiting approval are withdrawn',
    deletions: true,
  },
  {
    criteria: 'Appointment',
    why: "a session booked (or cancelled, or deleted) in the clinic's scheduling system: the approved session and its reminders take its time",
    deletions: true,
  },
  {
    // Closed orders only (the worker finds their sessions: this service's by their key, the EHR's a session was
    // approved on by the Task naming them). Not `identifier=<key system>|`: a server that
    // matches `Subscription?criteria=` by substring (Medplum's in-memory matcher, the embedded store) would find the
    // CarePlan Subscription in it ("ketamine-careplans"), and the conditional create that keeps them single fails.
    criteria: 'MedicationRequest?status=cancelled,stopped,entered-in-error',
    why: 'an approved session’s order closed in the EHR: the session goes back to a clinician when nothing replaced it',
  },
  {
    // Deleted while open, an order matches none of the closed statuses above (criteria are matched on the version
    // deleted), so its deletion is asked for on its own.
    criteria: 'MedicationRequest',
    why: 'an approved session’s order deleted in the EHR: taken as cancelled there',
    deletions: true,
    onlyDeletions: true,
  },
  {
    criteria: 'DetectedIssue',
    why: 'a contraindication resolved in the EHR (overridden, withdrawn or deleted there): the orders and Tasks it held are released',
    deletions: true,
  },
  {
    criteria: 'PlanDefinition',
    why: "an EHR's protocol changed or deleted: read again at once, and its plans checked (a deleted one's approved orders held)",
    deletions: true,
  },
  {
    criteria: 'Patient?deceased=true',
    why: 'a patient recorded as deceased: the plans this service follows for them end, their sessions withdrawn, their reminders revoked',
  },
  {
    criteria: 'MedicationAdministration?status=completed,in-progress,entered-in-error',
    why: 'a rate recorded at the pump after the follow-ups: the next session awaiting approval is proposed at it',
  },
];

/** Medplum's extension carrying the secret it signs notifications with (X-Signature, HMAC-SHA256 of the body). */
const MEDPLUM_SECRET = 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret';
/** Medplum's extension limiting a Subscription to some interactions (its URL has no `www.`, unlike the secret's). */
const MEDPLUM_INTERACTION = 'https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction';
/**
 * HAPI sends a deletion (`DELETE {endpoint}/{type}/{id}`) only to a Subscription whose channel carries this; Medplum
 * sends one to every Subscription without its interaction extension (a POST of `{}` naming the resource in
 * `X-Medplum-Deleted-Resource`).
 */
const HAPI_SEND_DELETES = 'http://hapifhir.io/fhir/StructureDefinition/subscription-send-delete-messages';

export type SubscriptionFlavour = 'medplum' | 'hapi';

/** How this service's Subscriptions begin their `reason`: those it wrote, which it may replace. */
export const OWN_REASON_PREFIX = 'ketamine-careplans: ';
/**
 * Whose an EHR integration's Subscription is (created through /fhir/Subscription, apps/api/src/ehr/subscriptions): the
 * `meta.tag` naming the token's subject that created it. Such a Subscription is never the service's own.
 */
export const SUBSCRIPTION_OWNER = 'https://ketamine-careplans.example/fhir/NamingSystem/subscription-owner';

/**
 * The Subscriptions for one server, as it authenticates them: Medplum signs each body with the secret (its
 * extension); HAPI can only add a fixed header, so it sends `X-Webhook-Token: <secret>`. Both post the resource
 * (`payload` application/fhir+json). HAPI activates a `requested` Subscription; Medplum takes it `active`.
 */
export function subscriptionsFor(input: {
  endpoint: string;
  secret: string;
  flavour: SubscriptionFlavour;
}): Subscription[] {
  const { endpoint, secret, flavour } = input;
  return SUBSCRIPTION_CRITERIA.map(({ criteria, why, deletions, onlyDeletions }) => ({
    resourceType: 'Subscription',
    status: flavour === 'medplum' ? 'active' : 'requested',
    reason: `${OWN_REASON_PREFIX}${why}`,
    criteria,
    channel: {
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      ...(flavour === 'hapi' ? { header: [`X-Webhook-Token: ${secret}`] } : {}),
      ...(flavour === 'hapi' && deletions ? { extension: [{ url: HAPI_SEND_DELETES, valueBoolean: true }] } : {}),
    },
    ...(flavour === 'medplum'
      ? {
          extension: [
            { url: MEDPLUM_SECRET, valueString: secret },
            ...(onlyDeletions ? [{ url: MEDPLUM_INTERACTION, valueCode: 'delete' }] : []),
          ],
        }
      : {}),
  }));
}

/**
 * The search that finds one of these already on the server (conditional create: run again, nothing is doubled). A
 * comma in a search value means "or" (`status=completed,in-progress`), so the criteria's own commas are escaped (`\,`):
 * unescaped, `entered-in-error` alone would match another Subscription's criteria and the create would fail. `:exact`,
 * since a string search matches by prefix (Medplum, HAPI): `MedicationRequest` would find the closed orders' one too.
 */
export function existingSubscriptionSearch(subscription: Subscription): { 'criteria:exact': string; url: string } {
  return {
    'criteria:exact': subscription.criteria.replace(/[\\,]/g, '\\$&'),
    url: (subscription.channel.endpoint ?? '').replace(/[\\,]/g, '\\$&'),
  };
}

/**
 * What brings a store the service alone writes to (the embedded one) to exactly the Subscriptions wanted: one per
 * criteria. Its own from an earlier start (another port, another secret, criteria since dropped, a second copy) are
 * changed or deleted; anyone else's (an EHR's own Subscriptions) are left alone.
 */
export function ownSubscriptionChanges(
  existing: readonly Subscription[],
  wanted: readonly Subscription[],
): { create: Subscription[]; update: Subscription[]; remove: string[] } {
  // An EHR integration's (created through /fhir/Subscription, tagged with its owner) is never the service's own.
  const own = existing.filter(
    (s): s is Subscription & { id: string } =>
      !!s.id && !!s.reason?.startsWith(OWN_REASON_PREFIX) && !s.meta?.tag?.some((t) => t.system === SUBSCRIPTION_OWNER),
  );
  const kept = new Set<string>();
  const create: Subscription[] = [];
  const update: Subscription[] = [];
  for (const subscription of wanted) {
    const found = own.find((s) => s.criteria === subscription.criteria && !kept.has(s.id));
    if (!found) {
      create.push(subscription);
      continue;
    }
    kept.add(found.id);
    const written = { ...subscription, id: found.id };
    if (!sameSubscription(found, written)) update.push(written);
  }
  return { create, update, remove: own.filter((s) => !kept.has(s.id)).map((s) => s.id) };
}

/** The same as written, the server's meta aside (Medplum's deepEquals: key order and empty values do not count). */
function sameSubscription(stored: Subscription, written: Subscription): boolean {
  const { meta: _meta, ...rest } = stored;
  return deepEquals(rest, written);
}
