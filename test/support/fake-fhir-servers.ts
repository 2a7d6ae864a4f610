import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface FakeServer {
  baseUrl: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export type FakeHandler = (
  req: RecordedRequest,
  baseUrl: string,
) => { status: number; headers?: Record<string, string>; body?: unknown };

/**
 * A few lines of HTTP that answer the way HAPI or Medplum do in one situation. Real HAPI and Medplum servers
 * cannot run on the CI machine (no Docker engine), so their documented quirks are reproduced here.
 */
export async function startFakeServer(handler: FakeHandler, basePath = '/fhir'): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  let baseUrl = '';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      requests.push(recorded);
      const answer = handler(recorded, baseUrl);
      res.writeHead(answer.status, { 'content-type': 'application/fhir+json', ...answer.headers });
      res.end(
        answer.body === undefined
          ? undefined
          : typeof answer.body === 'string'
            ? answer.body
            : JSON.stringify(answer.body),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${basePath}`;
  return {
    baseUrl,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const outcome = (code: string, text: string) => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code, diagnostics: text }],
});
