import { createTransport, type Transporter } from 'nodemailer';
import type { ClinicAlertMessage } from '@kc/protocols';

/** Sends the clinic's alerts; absent (null) when nobody is to be emailed (no CLINIC_ALERT_EMAIL). */
export interface ClinicAlertSender {
  /** The addresses every alert goes to. */
  readonly to: string[];
  send(message: ClinicAlertMessage): Promise<void>;
}

export const CLINIC_ALERT_SENDER = Symbol('CLINIC_ALERT_SENDER');

/** The clinic's alerts by email over SMTP (nodemailer), to CLINIC_ALERT_EMAIL. */
export class EmailClinicAlertSender implements ClinicAlertSender {
  private readonly transport: Transporter;

  constructor(
    private readonly smtp: { url: string; from: string },
    readonly to: string[],
  ) {
    this.transport = createTransport(smtp.url);
  }

  async send({ subject, text }: ClinicAlertMessage): Promise<void> {
    await this.transport.sendMail({ from: this.smtp.from, to: this.to, subject, text });
  }
}
