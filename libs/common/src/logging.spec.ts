import type { Server } from 'node:http';
import { PassThrough } from 'node:stream';
import { Controller, Get, Logger as NestLogger, Post, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import { LoggingModule } from './logging';

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

describe('request log context (LoggingModule)', () => {
  let app: INestApplication;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const out = new PassThrough();
    out.on('data', (chunk: Buffer) =>
      chunk
        .toString()
        .split('\n')
        .filter(Boolean)
        .forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
    );
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
