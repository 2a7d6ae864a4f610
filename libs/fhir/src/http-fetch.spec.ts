import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpFetch } from './http-fetch';

describe('httpFetch (the FHIR client transport)', () => {
  let server: http.Server;
  let base: string;
  const seen: { method?: string; headers: http.IncomingHttpHeaders; body: string; socket: unknown }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
          socket: req.socket,
        });
        if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000).unref();
        if (req.url === '/gone') return void res.writeHead(204).end();
        if (req.url === '/big') {
          // Written in pieces that split the two bytes of each "é": the client must decode the whole, not each piece.
          const bytes = Buffer.from(JSON.stringify({ note: 'é'.repeat(100_000) }));
          res.writeHead(200, { 'content-type': 'application/fhir+json' });
          for (let at = 0; at < bytes.length; at += 4097) res.write(bytes.subarray(at, at + 4097));
          return void res.end();
        }
        res.writeHead(req.url === '/missing' ? 404 : 201, {
          'content-type': 'application/fhir+json',
          etag: 'W/"3"',
          location: 'http://x/fhir/R4/Task/1/_history/3',
        });
        res.end(JSON.stringify({ resourceType: 'Task', id: '1', note: 'é' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("sends method, headers and body, and answers status, headers and body as fetch's Response does", async () => {
    const res = await httpFetch()(`${base}/Task`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', authorization: 'Bearer t' },
      body: JSON.stringify({ resourceType: 'Task', note: 'é' }),
    });
    expect(res.status).toBe(201);
    expect(res.ok).toBe(true);
    expect(res.headers.get('etag')).toBe('W/"3"');
    expect(res.headers.get('location')).toContain('Task/1');
    expect(await res.json()).toEqual({ resourceType: 'Task', id: '1', note: 'é' });
    const request = seen.at(-1)!;
    expect(request.method).toBe('POST');
    expect(request.headers.authorization).toBe('Bearer t');
    expect(JSON.parse(request.body)).toEqual({ resourceType: 'Task', note: 'é' });
    expect(request.headers['content-length']).toBe(String(Buffer.byteLength(request.body)));
  });

  it('answers error statuses (not a rejection) and empty 204s, as fetch does', async () => {
    const missing = await httpFetch()(`${base}/missing`);
    expect(missing.status).toBe(404);
    expect(missing.ok).toBe(false);
    const gone = await httpFetch()(`${base}/gone`, { method: 'DELETE' });
    expect(gone.status).toBe(204);
    expect(await gone.text()).toBe('');
  });

  it('reads a body that arrives in many pieces whole, multi-byte characters split across them included', async () => {
    const res = await httpFetch()(`${base}/big`);
    expect(await res.json()).toEqual({ note: 'é'.repeat(100_000) });
  });

  it('keeps the connection alive between requests', async () => {
    const fetchOnce = httpFetch();
    await (await fetchOnce(`${base}/a`)).text();
    await (await fetchOnce(`${base}/b`)).text();
    expect(seen.at(-1)!.socket).toBe(seen.at(-2)!.socket);
  });

  it('rejects with the signal reason when the timeout fires, and with a TypeError when nothing listens', async () => {
    const started = Date.now();
    await expect(httpFetch()(`${base}/slow`, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(Date.now() - started).toBeLessThan(1500);
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(httpFetch()(`http://127.0.0.1:${port}/x`)).rejects.toBeInstanceOf(TypeError);
  });

  describe("a kept-alive connection near the server's idle timeout", () => {
    // Node's server answers `Keep-Alive: timeout=2` for a keepAliveTimeout of 2 s, and (Node 24) closes the idle
    // connection a second later. A request after 1 s idle (the hint less 1 s) should go on a new connection.
    const SERVER = `
      const http = require('node:http');
      let connections = 0;
      let received = 0;
      const server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          received++;
          res.writeHead(201, { 'content-type': 'application/fhir+json' }).end(JSON.stringify({ received, connections }));
        });
      });
      server.keepAliveTimeout = 2000;
      server.on('connection', () => connections++);
      server.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + server.address().port + '\\n'));`;
    let child: ChildProcess;
    let hintedBase: string;

    // Its own process: a server in this one would stall with the test's blocked event loop, and close nothing.
    beforeEach(async () => {
      child = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
      hintedBase = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.once('exit', (code) => reject(new Error(`the test's FHIR stand-in exited (${code})`)));
        child.stdout!.on('data', (data: Buffer) => {
          out += data.toString();
          for (const line of out.split('\n').slice(0, -1)) {
            const port = /^PORT (\d+)$/.exec(line)?.[1];
            if (port) resolve(`http://127.0.0.1:${port}`);
          }
          out = out.slice(out.lastIndexOf('\n') + 1);
        });
      });
    });
    afterEach(() => {
      child.kill();
    });

    /**
     * The answer's status, with how many requests the server had received and how many connections it had accepted
     * when it answered: read from the answer itself, which cannot arrive before the server counted.
     */
    const post = async (fetchOverHttp: ReturnType<typeof httpFetch>) => {
      const res = await fetchOverHttp(`${hintedBase}/Task`, { method: 'POST', body: '{}' });
      return { status: res.status, ...((await res.json()) as { received: number; connections: number }) };
    };

    it("sends a request on a new connection once the last one was idle for the server's hint less a second", async () => {
      const fetchOverHttp = httpFetch();
      expect(await post(fetchOverHttp)).toEqual({ status: 201, received: 1, connections: 1 });
      await sleep(1300);
      expect(await post(fetchOverHttp)).toEqual({ status: 201, received: 2, connections: 2 });
    });

    it('sends a POST on a new connection when the event loop was blocked past that limit, once', async () => {
      const fetchOverHttp = httpFetch();
      expect(await post(fetchOverHttp)).toEqual({ status: 201, received: 1, connections: 1 });
      const freedAt = Date.now();
      await sleep(900);
      // Blocked past the server's close (3 s): nothing ran to close the connection meanwhile.
      while (Date.now() - freedAt < 3400);
      // The POST reached the server once, over a second connection.
      expect(await post(fetchOverHttp)).toEqual({ status: 201, received: 2, connections: 2 });
    }, 15_000);
  });

  describe('a kept-alive connection the server closed while idle', () => {
    // A server that keeps connections open after answering (no Keep-Alive hint), and resets one when a second
    // request arrives on it: what a client sees when its pooled connection lost a race with the server's idle
    // timeout, or a proxy dropped it silently.
    let staleServer: net.Server;
    let staleBase: string;
    const received: string[] = [];
    const sockets = new Set<net.Socket>();
    // A server per test: the agents pool connections per host and port, for the whole process.
    beforeEach(async () => {
      received.length = 0;
      staleServer = net.createServer((socket) => {
        sockets.add(socket);
        let requests = 0;
        socket.on('data', (data) => {
          received.push(data.toString().split(' ')[0]);
          if (++requests > 1) return void socket.resetAndDestroy();
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
        });
        socket.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => staleServer.listen(0, '127.0.0.1', resolve));
      staleBase = `http://127.0.0.1:${(staleServer.address() as AddressInfo).port}`;
    });
    afterEach(async () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise((resolve) => staleServer.close(resolve));
    });

    it('sends a GET (or a PUT) once more on a new connection', async () => {
      const fetchOverHttp = httpFetch();
      expect((await fetchOverHttp(`${staleBase}/Task/1`)).status).toBe(200);
      expect((await fetchOverHttp(`${staleBase}/Task/1`)).status).toBe(200);
      expect(received).toEqual(['GET', 'GET', 'GET']);
      const put = await fetchOverHttp(`${staleBase}/Task/1`, { method: 'PUT', body: '{}' });
      expect(put.status).toBe(200);
    });

    it('does not send a POST twice: it fails like fetch, and the caller decides', async () => {
      const fetchOverHttp = httpFetch();
      expect((await fetchOverHttp(`${staleBase}/Task`, { method: 'POST', body: '{}' })).status).toBe(200);
      await expect(fetchOverHttp(`${staleBase}/Task`, { method: 'POST', body: '{}' })).rejects.toThrow('fetch failed');
      expect(received).toEqual(['POST', 'POST']);
    });
  });
});
