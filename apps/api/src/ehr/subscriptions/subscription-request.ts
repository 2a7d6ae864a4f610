import type { Subscription } from '@medplum/fhirtypes';
import { scopesGranting, type Caller } from '@kc/auth';
import { badRequest, OutcomeException } from '@kc/common';
import { OWN_REASON_PREFIX, SUBSCRIPTION_OWNER } from '../../events/fhir-subscriptions';

export { SUBSCRIPTION_OWNER };
import { ADMIN_ONLY_TYPES, READABLE_TYPES, readableType, readSearchParams } from '../read-search-params';

/** Medplum's extension with the secret a notification is signed with (X-Signature), as the embedded store reads it. */
export const SUBSCRIPTION_SECRET = 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret';

const MAX_HEADERS = 5;
const HEADER = /^[A-Za-z0-9-]{1,64}: [^\r\n]{1,1024}$/;

/**
 * The Subscription to write on the FHIR server for an EHR integration's request, checked (400/403 with what is
 * wrong): a rest-hook to an allowed origin, on a search this API allows the caller (its type, parameters and scopes),
 * owned by the caller (`meta.tag`), active. The FHIR server then notifies the endpoint itself (Medplum, the embedded
 * store: signed with the secret given in Medplum's extension).
 */
export function subscriptionToWrite(posted: unknown, caller: Caller, allowedOrigins: readonly string[]): Subscription {
  const asked = posted as Partial<Subscription> | undefined;
  if (asked?.resourceType !== 'Subscription') throw badRequest('POST /fhir/Subscription takes a FHIR Subscription');
  if (!allowedOrigins.length)
    throw new OutcomeException(
      403,
      'forbidden',
      'No endpoint may be subscribed here: the operator allows endpoints with SUBSCRIPTION_ENDPOINT_ORIGINS',
    );
  const criteria = checkedCriteria(asked.criteria, caller);
  const channel = asked.channel;
  if (channel?.type !== 'rest-hook') throw badRequest('channel.type must be rest-hook', ['Subscription.channel.type']);
  const endpoint =
    typeof channel.endpoint === 'string' && URL.canParse(channel.endpoint) ? new URL(channel.endpoint) : undefined;
  if (!endpoint || !allowedOrigins.includes(endpoint.origin))
    throw badRequest(`channel.endpoint must be at an allowed origin (${allowedOrigins.join(', ')})`, [
      'Subscription.channel.endpoint',
    ]);
  if (channel.payload !== undefined && !['application/fhir+json', 'application/json'].includes(channel.payload))
    throw badRequest('channel.payload must be application/fhir+json, or absent (no body)', [
      'Subscription.channel.payload',
    ]);
  const headers = channel.header ?? [];
  if (
    !Array.isArray(headers) ||
    headers.length > MAX_HEADERS ||
    !headers.every((h) => typeof h === 'string' && HEADER.test(h))
  )
    throw badRequest(`channel.header: at most ${MAX_HEADERS}, each "Name: value"`, ['Subscription.channel.header']);
  const secret = asked.extension?.find((e) => e.url === SUBSCRIPTION_SECRET)?.valueString;
  if (secret !== undefined && (secret.length < 16 || secret.length > 256))
    throw badRequest('The subscription secret must be 16 to 256 characters', ['Subscription.extension']);
  // The service knows its own webhook Subscriptions by this reason (and would take one over at its next start).
  if (typeof asked.reason === 'string' && asked.reason.startsWith(OWN_REASON_PREFIX))
    throw badRequest(`reason may not begin "${OWN_REASON_PREFIX}": that marks this service's own`, [
      'Subscription.reason',
    ]);
  if (asked.end !== undefined && (typeof asked.end !== 'string' || Number.isNaN(Date.parse(asked.end))))
    throw badRequest('end must be an instant', ['Subscription.end']);
  return {
    resourceType: 'Subscription',
    status: 'active',
    reason:
      typeof asked.reason === 'string' && asked.reason ? asked.reason.slice(0, 500) : `EHR integration ${caller.id}`,
    criteria,
    channel: {
      type: 'rest-hook',
      endpoint: endpoint.toString(),
      ...(channel.payload && { payload: channel.payload }),
      ...(headers.length && { header: headers }),
    },
    ...(asked.end && { end: asked.end }),
    ...(secret && { extension: [{ url: SUBSCRIPTION_SECRET, valueString: secret }] }),
    meta: { tag: [{ system: SUBSCRIPTION_OWNER, code: caller.id }] },
  };
}

/** Whether the caller owns the Subscription (administrators see every one made here). */
export function isOwnedBy(subscription: Subscription, caller: Caller): boolean {
  const owner = subscription.meta?.tag?.find((t) => t.system === SUBSCRIPTION_OWNER)?.code;
  return owner !== undefined && (owner === caller.id || caller.roles.includes('admin'));
}

/** A Subscription as its owner reads it back: the secret and the headers' values (credentials) not shown. */
export function asShown(subscription: Subscription): Subscription {
  return {
    ...subscription,
    extension: subscription.extension?.map((e) =>
      e.url === SUBSCRIPTION_SECRET ? { url: e.url, valueString: '(set)' } : e,
    ),
    channel: {
      ...subscription.channel,
      header: subscription.channel.header?.map((h) => `${h.split(':')[0]}: (set)`),
    },
  };
}

/**
 * `Type?params`: a type this API reads (the audit trail for administrators only), parameters it allows for it (no
 * paging), each once with a plain value, and a search the caller's SMART scopes grant (user/ or system/).
 */
function checkedCriteria(criteria: unknown, caller: Caller): string {
  if (typeof criteria !== 'string' || criteria.length > 2000)
    throw badRequest('criteria must be a search such as Task?patient=Patient/123', ['Subscription.criteria']);
  const [typeName, query = ''] = criteria.split(/\?(.*)/s, 2);
  const type = readableType(typeName);
  if (ADMIN_ONLY_TYPES.has(type) && !caller.roles.includes('admin'))
    throw new OutcomeException(403, 'forbidden', `${type} is for administrators only`);
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of new URLSearchParams(query)) {
    if (!(READABLE_TYPES[type] as readonly string[]).includes(name.split(':')[0]))
      throw badRequest(`criteria cannot search ${type} by ${name.slice(0, 40)}`, ['Subscription.criteria']);
    if (Object.hasOwn(params, name)) throw badRequest(`criteria: ${name} must appear once`, ['Subscription.criteria']);
    params[name] = value;
  }
  readSearchParams(type, params);
  if (
    caller.scopes &&
    !scopesGranting(caller.scopes, { resourceType: type, interaction: 's', params }, ['user', 'system']).length
  )
    throw new OutcomeException(403, 'forbidden', `This token may not search ${type} (a user/ or system/ scope does)`);
  const normalized = new URLSearchParams(Object.entries(params)).toString();
  return normalized ? `${type}?${normalized}` : type;
}
