import type { Communication } from '@medplum/fhirtypes';
import { CLINIC_ALERT_KEY_SYSTEM, type ClinicAlertChannel } from './clinic-alert';

/** An alert the clinic was told about a patient, as their timeline shows it: what, when, how, and whether dealt with. */
export interface AlertTold {
  /** The alert's key, whatever the channel (`infusion-not-followed-up:Procedure/<id>`). */
  key: string;
  /** What it said, in a line (the message's subject). */
  subject: string;
  sent?: string;
  channels: ClinicAlertChannel[];
  /** When the notice that it is dealt with was sent, if it was. */
  dealtWith?: string;
  /** Whether a notice follows it once dealt with (not for alerts that ask one thing once: a death taken back...). */
  noticed: boolean;
  /** The first record of it (`Communication/<id>`). */
  reference: string;
}

/**
 * The alerts among these records of messages to the clinic (alertCommunication: keyed, one record per channel), each
 * once whatever the channels it went by, with when its notice came (a record keyed `resolved:<its key>`). Records
 * that are no clinic alert are left out.
 */
export function alertsTold(records: Communication[]): AlertTold[] {
  const alerts = new Map<string, AlertTold>();
  const notices = new Map<string, string | undefined>();
  for (const record of records) {
    const key = record.identifier?.find((i) => i.system === CLINIC_ALERT_KEY_SYSTEM)?.value;
    if (!key) continue;
    const channel: ClinicAlertChannel = key.startsWith('inbox:') ? 'inbox' : 'email';
    const alertKey = channel === 'inbox' ? key.slice('inbox:'.length) : key;
    if (alertKey.startsWith('resolved:')) {
      const of = alertKey.slice('resolved:'.length);
      notices.set(of, earliest(notices.get(of), record.sent));
      continue;
    }
    const known = alerts.get(alertKey);
    if (known) {
      if (!known.channels.includes(channel)) known.channels.push(channel);
      known.sent = earliest(known.sent, record.sent);
      continue;
    }
    alerts.set(alertKey, {
      key: alertKey,
      subject: (record.topic?.text ?? 'Alert to the clinic').replace(/^Ketamine care plans: /, ''),
      sent: record.sent,
      channels: [channel],
      noticed: !ALERTS_WITH_NO_NOTICE.some((prefix) => alertKey.startsWith(prefix)),
      reference: `Communication/${record.id}`,
    });
  }
  return [...alerts.values()].map((alert) =>
    notices.has(alert.key) ? { ...alert, dealtWith: notices.get(alert.key) } : alert,
  );
}

/** Alerts no notice answers: each asks one thing of the clinic once (ClinicAlerts' kinds and the others have one). */
const ALERTS_WITH_NO_NOTICE = ['infusion-under-closed-plan:', 'death-taken-back:'];

function earliest(a: string | undefined, b: string | undefined): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(a) <= Date.parse(b) ? a : b;
}
