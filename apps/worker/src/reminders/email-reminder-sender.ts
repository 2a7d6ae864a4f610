import type { ContactPoint } from '@medplum/fhirtypes';
import { createTransport, type Transporter } from 'nodemailer';
import type { ReminderMessage, ReminderSender } from './reminder-sender';

/** Patient reminders by email over SMTP (nodemailer), to the patient's email on record (Patient.telecom). */
export class EmailReminderSender implements ReminderSender {
  readonly channel = 'email';
  private readonly transport: Transporter;

  constructor(private readonly smtp: { url: string; from: string }) {
    this.transport = createTransport(smtp.url);
  }

  async send({ request, patient }: ReminderMessage): Promise<boolean> {
    const to = emailOf(patient?.telecom);
    const text = request.payload
      ?.map((p) => p.contentString)
      .filter(Boolean)
      .join('\n\n');
    if (!to || !text) return false;
    await this.transport.sendMail({
      from: this.smtp.from,
      to,
      subject:
        request.category?.[0]?.coding?.[0]?.display ?? request.category?.[0]?.text ?? 'A message from your clinic',
      text,
    });
    return true;
  }
}

function emailOf(telecom: ContactPoint[] | undefined): string | undefined {
  const emails = (telecom ?? []).filter((t) => t.system === 'email' && t.value && !t.period?.end);
  return (emails.find((t) => t.use !== 'old') ?? emails[0])?.value;
}
