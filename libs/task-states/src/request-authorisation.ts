import type { CommunicationRequest, MedicationRequest, Reference, Resource, ServiceRequest } from '@medplum/fhirtypes';

/** Requests a Task can authorise. Appointments are booked by the scheduling system, not ordered here. */
export type AuthorisableRequest = MedicationRequest | ServiceRequest | CommunicationRequest;

export function isAuthorisable(resource: Resource | undefined): resource is AuthorisableRequest {
  return (
    resource?.resourceType === 'MedicationRequest' ||
    resource?.resourceType === 'ServiceRequest' ||
    resource?.resourceType === 'CommunicationRequest'
  );
}

/** Medication and service orders need a prescriber; a communication may be sent on the clinic's behalf. */
export function needsRequester(request: AuthorisableRequest): boolean {
  return request.resourceType !== 'CommunicationRequest';
}

export interface OrderInput {
  proposal: AuthorisableRequest & { id: string };
  carePlan?: Reference;
  /** The approving practitioner (the token's fhirUser). */
  requester?: Reference;
  now: Date;
  /** Deterministic identifier so a retried approval writes one order. */
  key: { system: string; value: string };
}

/**
 * CPG's proposal -> order step: a new request, active and authorised, based on the CarePlan and on the proposal
 * it came from. The proposal itself is left as it was (intent is immutable); an EHR reading status and intent
 * finds exactly one active order.
 */
export function orderFromProposal(input: OrderInput): AuthorisableRequest {
  const { proposal, now } = input;

  const { id: _id, meta: _meta, identifier: _identifier, ...body } = proposal;
  const basedOn = [
    ...(input.carePlan ? [input.carePlan] : []),
    { reference: `${proposal.resourceType}/${proposal.id}` },
  ];
  const common = { identifier: [input.key], authoredOn: now.toISOString(), requester: input.requester, basedOn };
  if (body.resourceType === 'CommunicationRequest') {
    return { ...body, ...common, status: 'active' } as CommunicationRequest;
  }
  return { ...body, ...common, status: 'active', intent: 'order' } as MedicationRequest | ServiceRequest;
}

/** A rejected proposal, closed with the clinician's reason in the fields each type has. */
export function cancelledProposal(proposal: AuthorisableRequest, reason: string): AuthorisableRequest {
  switch (proposal.resourceType) {
    case 'MedicationRequest':
      return { ...proposal, status: 'cancelled', statusReason: { text: reason } };
    case 'CommunicationRequest':
      return { ...proposal, status: 'revoked', statusReason: { text: reason } };
    case 'ServiceRequest':
      return { ...proposal, status: 'revoked', note: [...(proposal.note ?? []), { text: `Rejected: ${reason}` }] };
  }
}
