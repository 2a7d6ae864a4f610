import type { Server } from 'node:http';
import { PassThrough } from 'node:stream';
import { Controller, Get, Logger as NestLogger, Post, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import { createLogger, LoggingModule, pinoLevel } from './logging';

@Controller('probe')
class ProbeController {
  private readonly log = new NestLogger('Probe');

  @Post()
  async write(): Promise<string> {
    this.log.log('before await');
    await new Promise((resolve) => setImmediate(resolve));
    this.log.log('after await');
    return 'ok';
  }

  @Get()
  read(): string {
    this.log.log('read');
    return 'ok';
  }
}

/** A stream that collects the JSON object of each line written to it. */
function jsonLines(): { out: PassThrough; lines: Record<string, unknown>[] } {
  const out = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  out.on('data', (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter(Boolean)
      .forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
  );
  return { out, lines };
}

describe('the pino logger', () => {
  function capture(level: string) {
    const { out, lines } = jsonLines();
    return { logger: createLogger(level, out), lines };
  }
  const flushed = () => new Promise((resolve) => setImmediate(resolve));

  it('writes one JSON object per line with an ISO time, the level by name and the fields', async () => {
    const { logger, lines } = capture('info');
    logger.info({ context: 'Worker', jobId: '1' }, 'job done');
    logger.warn('plain text');
    await flushed();
    expect(lines).toEqual([
      {
        time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/) as string,
        level: 'info',
        context: 'Worker',
        jobId: '1',
        msg: 'job done',
      },
      expect.objectContaining({ level: 'warn', msg: 'plain text' }),
    ]);
  });

  it('redacts patient fields, at the top and one level down, and authorization headers', async () => {
    const { logger, lines } = capture('info');
    logger.info({
      subject: { reference: 'Patient/1' },
      patient: 'Patient/1',
      resource: { resourceType: 'Patient', name: [{ family: 'Doe' }], birthDate: '1980-01-01' },
      task: { for: { reference: 'Patient/1' }, status: 'requested' },
      req: { headers: { authorization: 'Bearer secret', accept: 'application/json' }, body: { a: 1 } },
      procedureId: 'p1',
    });
    await flushed();
    const text = JSON.stringify(lines[0]);
    for (const secret of ['Patient/1', 'Doe', '1980-01-01', 'Bearer secret', '"a":1'])
      expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({
      subject: '[redacted]',
      patient: '[redacted]',
      resource: { resourceType: 'Patient', name: '[redacted]', birthDate: '[redacted]' },
      task: { for: '[redacted]', status: 'requested' },
      req: { headers: { authorization: '[redacted]', accept: 'application/json' }, body: '[redacted]' },
      procedureId: 'p1',
    });
  });

  it('drops what is below LOG_LEVEL; Nest names map to pino levels, an unknown one means info', async () => {
    const warn = capture('warn');
    warn.logger.info('hidden');
    warn.logger.debug('hidden');
    warn.logger.error('shown');
    await flushed();
    expect(warn.lines.map((l) => l.msg)).toEqual(['shown']);
    expect([pinoLevel('log'), pinoLevel('verbose'), pinoLevel('loud'), pinoLevel('error')]).toEqual([
      'info',
      'trace',
      'info',
      'error',
    ]);
  });
});

describe('request log context (LoggingModule)', () => {
  let app: INestApplication;
  let lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const captured = jsonLines();
    lines = captured.lines;
    const out = captured.out;
    const moduleRef = await Test.createTestingModule({
      imports: [LoggingModule.forRoot('info', out)],
      controllers: [ProbeController],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    await app.init();
  });

  afterAll(() => app.close());

  const server = () => app.getHttpServer() as Server;
  const flushed = () => new Promise((resolve) => setImmediate(resolve));

  it("gives each write request's lines one request id of their own, across awaits, and nothing of the request", async () => {
    await request(server()).post('/probe').set('authorization', 'Bearer secret').expect(201);
    await request(server()).post('/probe').expect(201);
    await flushed();
    const written = lines.filter((l) => String(l.msg).endsWith('await'));
    expect(written).toHaveLength(4);
    const [first, second] = [written.slice(0, 2), written.slice(2)];
    expect(first.map((l) => l.reqId)).toEqual([first[0].reqId, first[0].reqId]);
    expect(second.map((l) => l.reqId)).toEqual([second[0].reqId, second[0].reqId]);
    expect(first[0].reqId).toEqual(expect.any(Number));
    expect(second[0].reqId).not.toEqual(first[0].reqId);
    // No request (headers, url, body) rides along on a line.
    for (const line of written) expect(Object.keys(line).filter((k) => ['req', 'res'].includes(k))).toEqual([]);
    expect(JSON.stringify(written)).not.toContain('secret');
  });

  it('leaves reads without a request id (the high-volume path)', async () => {
    await request(server()).get('/probe').expect(200);
    await flushed();
    const read = lines.find((l) => l.msg === 'read');
    expect(read).toBeDefined();
    expect(read).not.toHaveProperty('reqId');
  });
});
