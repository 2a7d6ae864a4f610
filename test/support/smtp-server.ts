import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { AppConfig } from '@kc/config';
import { startTestService, type TestService } from './test-service';

export interface ReceivedMail {
  to: string[];
  /** The raw message (headers and body). */
  body: string;
}

export interface SmtpServer {
  url: string;
  received: ReceivedMail[];
  stop(): Promise<void>;
}

/**
 * A real SMTP server on a free local port (nodemailer's smtp-server) that keeps what it receives; on `port` when given
 * (a server started again where a stopped one was).
 */
export async function startSmtpServer(port = 0): Promise<SmtpServer> {
  const received: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          body: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: listening } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${listening}`,
    received,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A mail's raw text as read: quoted-printable soft line breaks joined, folded headers unfolded. */
export function readable(mail: ReceivedMail): ReceivedMail {
  return { ...mail, body: mail.body.replace(/=\r?\n/g, '').replace(/\r?\n[ \t]/g, ' ') };
}

/** The mails one address received (from the `since`-th received on), as read. */
export function mailsTo(smtp: SmtpServer, address: string, since = 0): ReceivedMail[] {
  return smtp.received
    .slice(since)
    .filter((m) => m.to.includes(address))
    .map(readable);
}

/**
 * A service emailing the clinic (oncall@clinic.test) through an SMTP server that does not answer (its port closed), and
 * that server, to start again on the same port (`startSmtpServer(port)`). `config`: more of the service's settings.
 */
export async function serviceWithMailDown(
  config: Partial<AppConfig> = {},
): Promise<{ down: SmtpServer; cut: TestService }> {
  const down = await startSmtpServer();
  await down.stop();
  return { down, cut: await serviceEmailingClinic(down, config) };
}

/** A service emailing the clinic (oncall@clinic.test) through `smtp`. `config`: more of the service's settings. */
export function serviceEmailingClinic(smtp: SmtpServer, config: Partial<AppConfig> = {}): Promise<TestService> {
  return startTestService({
    smtp: { url: smtp.url, from: 'Careplans <careplans@clinic.test>' },
    clinicAlertEmails: ['oncall@clinic.test'],
    ...config,
  });
}
