import type { CodeableConcept, Coding, Extension } from '@medplum/fhirtypes';
import type { AuthorisableRequest } from './request-authorisation';

/**
 * Why an order this service put on hold is on hold, in the field its type has: `statusReason` (MedicationRequest,
 * CommunicationRequest) or, on a ServiceRequest (no statusReason in R4), R4's standard request-statusReason extension.
 * A hold is told by the coding of its reason (the contraindication's, the paused plan's), never by anything else.
 */
const REQUEST_STATUS_REASON = 'http://hl7.org/fhir/StructureDefinition/request-statusReason';

/** The order on hold, with why. */
export function onHoldWith(order: AuthorisableRequest, reason: CodeableConcept): AuthorisableRequest {
  if (order.resourceType === 'ServiceRequest')
    return {
      ...order,
      status: 'on-hold',
      extension: [...(order.extension ?? []), { url: REQUEST_STATUS_REASON, valueCodeableConcept: reason }],
    };
  return { ...order, status: 'on-hold', statusReason: reason };
}

/** The order's status reason when it carries `coding` (a hold of this kind); undefined otherwise. */
export function reasonCoded(order: AuthorisableRequest, coding: Coding): CodeableConcept | undefined {
  if (order.resourceType === 'ServiceRequest')
    return order.extension?.find((e) => isReasonCoded(e, coding))?.valueCodeableConcept;
  return order.statusReason?.coding?.some((c) => sameCoding(c, coding)) ? order.statusReason : undefined;
}

/** On hold for the reason `coding` names (not a hold somebody else placed, nor another kind of this service's). */
export function isHeldFor(order: AuthorisableRequest, coding: Coding): boolean {
  return order.status === 'on-hold' && reasonCoded(order, coding) !== undefined;
}

/** The order active again, its hold reason (`coding`) removed. */
export function activeAgain(order: AuthorisableRequest, coding: Coding): AuthorisableRequest {
  if (order.resourceType === 'ServiceRequest') {
    const extension = (order.extension ?? []).filter((e) => !isReasonCoded(e, coding));
    return { ...order, status: 'active', extension: extension.length ? extension : undefined };
  }
  const { statusReason: _held, ...rest } = order;
  return { ...rest, status: 'active' };
}

export function sameCoding(a: Coding, b: Coding): boolean {
  return a.system === b.system && a.code === b.code;
}

function isReasonCoded(extension: Extension, coding: Coding): boolean {
  return (
    extension.url === REQUEST_STATUS_REASON &&
    Boolean(extension.valueCodeableConcept?.coding?.some((c) => sameCoding(c, coding)))
  );
}
