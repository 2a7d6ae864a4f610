import { redisConnection, redisOptions } from './redis-connection';

describe('redisOptions: every Redis client reaches the same server the same way', () => {
  it('rediss:// connects with TLS (managed Redis services require it)', () => {
    expect(redisOptions('rediss://:secret@cache.example:6380')).toMatchObject({
      host: 'cache.example',
      port: 6380,
      password: 'secret',
      tls: {},
    });
  });

  it('a private CA (REDIS_TLS_CA_FILE) verifies the server; plain redis:// ignores it', () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    expect(redisOptions({ redisUrl: 'rediss://cache.example:6380', redisTlsCa: ca }).tls).toEqual({ ca });
    expect(redisOptions({ redisUrl: 'redis://cache.example:6379', redisTlsCa: ca }).tls).toBeUndefined();
  });

  it('Sentinel with rediss://: TLS to the sentinels and to the servers they name', () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    expect(
      redisOptions({
        redisUrl: 'rediss://ignored:6379',
        redisSentinel: { sentinels: [{ host: 's1', port: 26379 }], name: 'kc' },
        redisTlsCa: ca,
      }),
    ).toMatchObject({ tls: { ca }, sentinelTLS: { ca }, enableTLSForSentinelMode: true });
  });

  it('Sentinel: the sentinels and the master name, the URL still giving password and database', () => {
    const options = redisOptions({
      redisUrl: 'redis://:master-secret@ignored:6379/1',
      redisSentinel: {
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
        ],
        name: 'kc',
        password: 'sentinel-secret',
      },
    });
    expect(options).toEqual({
      username: undefined,
      password: 'master-secret',
      db: 1,
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      name: 'kc',
      sentinelPassword: 'sentinel-secret',
    });
  });

  it('REDIS_COMMAND_STACKS: errors name the code that sent the command (diagnosis); off unless asked', () => {
    expect(redisOptions({ redisUrl: 'redis://h:6379', redisCommandStacks: true }).showFriendlyErrorStack).toBe(true);
    expect(redisOptions({ redisUrl: 'redis://h:6379' })).not.toHaveProperty('showFriendlyErrorStack');
  });
});

describe('redisConnection', () => {
  it('defaults port and db', () => {
    expect(redisConnection('redis://127.0.0.1')).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 });
  });

  it('reads user, URL-encoded password, port and db; never gives up on blocking commands', () => {
    expect(redisConnection('redis://worker:p%40ss%3Aword@redis.internal:6380/3')).toEqual({
      host: 'redis.internal',
      port: 6380,
      username: 'worker',
      password: 'p@ss:word',
      db: 3,
      maxRetriesPerRequest: null,
    });
  });

  it('refuses what is not a URL', () => {
    expect(() => redisConnection('not a url')).toThrow();
    expect(() => redisConnection('')).toThrow();
  });
});
