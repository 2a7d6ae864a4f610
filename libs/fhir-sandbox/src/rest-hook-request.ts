import { createHmac } from 'node:crypto';
import { ContentType, getExtensionValue } from '@medplum/core';
import type { Subscription } from '@medplum/fhirtypes';
import type { StoreChange } from './store-change';

/** Medplum's extension holding the secret a notification's body is signed with (`X-Signature`). */
export const SUBSCRIPTION_SECRET = 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret';
/** The extension's first URL, which Medplum still reads. */
const LEGACY_SUBSCRIPTION_SECRET = 'https://www.medplum.com/fhir/StructureDefinition-subscriptionSecret';

/**
 * The POST that tells a rest-hook Subscription of a change, as Medplum's server sends it (its subscription worker's
 * sendRestHook and buildRestHookHeaders): the version written as the body, or `{}` with the resource named in
 * `X-Medplum-Deleted-Resource` for a deletion; `X-Medplum-Subscription` and `X-Medplum-Interaction`; the channel's
 * fixed headers; and `X-Signature`, the HMAC-SHA256 (hex) of the body with the Subscription's secret.
 */
export function restHookRequest(
  subscription: Subscription & { id: string },
  change: StoreChange,
): { url: string; method: 'POST'; headers: Record<string, string>; body: string } {
  const body = change.interaction === 'delete' ? '{}' : change.content;
  const headers: Record<string, string> = {
    'Content-Type': ContentType.FHIR_JSON,
    'X-Medplum-Subscription': subscription.id,
    'X-Medplum-Interaction': change.interaction,
  };
  if (change.interaction === 'delete') headers['X-Medplum-Deleted-Resource'] = `${change.resourceType}/${change.id}`;
  for (const header of subscription.channel.header ?? []) {
    // At the first colon: Medplum splits at every one, losing the rest of a value such as a URL.
    const colon = header.indexOf(':');
    if (colon > 0) headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
  }
  const secret =
    getExtensionValue(subscription, SUBSCRIPTION_SECRET) ?? getExtensionValue(subscription, LEGACY_SUBSCRIPTION_SECRET);
  if (typeof secret === 'string' && secret)
    headers['X-Signature'] = createHmac('sha256', secret).update(body).digest('hex');
  return { url: subscription.channel.endpoint ?? '', method: 'POST', headers, body };
}
