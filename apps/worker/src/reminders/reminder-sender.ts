import type { CommunicationRequest, Patient } from '@medplum/fhirtypes';

/** What a sender needs to deliver one reminder. */
export interface ReminderMessage {
  request: CommunicationRequest & { id: string };
  /** The recipient, when the channel needs their contact details (email). */
  patient?: Patient;
}

/**
 * A channel a reminder goes out on before its FHIR record (the Communication, always written last:
 * FhirCommunicationRecord), e.g. email.
 * `send` answers false when the channel does not apply to this patient (e.g. no email address on record).
 */
export interface ReminderSender {
  readonly channel: string;
  send(message: ReminderMessage): Promise<boolean>;
}

/** Nest token for the configured senders (an array; empty when only the FHIR record is kept). */
export const REMINDER_SENDERS = Symbol('REMINDER_SENDERS');
