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
  /** From now on it refuses every connection, as a mail server that is down (its port kept, so nothing else takes it). */
  goDown(): void;
  /** It takes mail again. */
  comeBack(): void;
  stop(): Promise<void>;
}

/**
 * A real SMTP server on a free local port (nodemailer's smtp-server) that keeps what it receives. Down, it keeps its
 * port and refuses: a server stopped and started again on its port could find the port taken meanwhile (CI did, by the
 * listeners and connections of the service started between).
 */
export async function startSmtpServer(): Promise<SmtpServer> {
  const received: ReceivedMail[] = [];
  let down = false;
  const refuseWhenDown = (callback: (err?: Error | null) => void) =>
    callback(down ? Object.assign(new Error('Mail server down'), { responseCode: 421 }) : null);
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    // A reverse lookup of 127.0.0.1 would hold every connection until it answers or times out.
    disableReverseLookup: true,
    onConnect: (_session, callback) => refuseWhenDown(callback),
    onMailFrom: (_address, _session, callback) => refuseWhenDown(callback),
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    goDown: () => (down = true),
    comeBack: () => (down = false),
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
 * A service emailing the clinic (oncall@clinic.test) through an SMTP server that is down, and that server (`comeBack()`
 * to take mail again; the caller stops both). `config`: more of the service's settings.
 */
export async function serviceWithMailDown(
  config: Partial<AppConfig> = {},
): Promise<{ mail: SmtpServer; cut: TestService }> {
  const mail = await startSmtpServer();
  mail.goDown();
  return { mail, cut: await serviceEmailingClinic(mail, config) };
}

/** A service emailing the clinic (oncall@clinic.test) through `smtp`. `config`: more of the service's settings. */
export function serviceEmailingClinic(smtp: SmtpServer, config: Partial<AppConfig> = {}): Promise<TestService> {
  return startTestService({
    smtp: { url: smtp.url, from: 'Careplans <careplans@clinic.test>' },
    clinicAlertEmails: ['oncall@clinic.test'],
    ...config,
  });
}
