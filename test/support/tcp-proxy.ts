import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /**
   * Data from a client containing this text (any case: `subscribe` for a Redis SUBSCRIBE) is swallowed, never
   * forwarded (a command whose reply never comes); resolves once it has happened.
   */
  withhold(text: string): Promise<void>;
  /** Drops every connection through the proxy now (a network cut): clients see their connection close. */
  dropConnections(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of a server (Redis), byte for byte, that a test can cut or make swallow a command: a connection
 * that fails at a moment of the test's choosing, where a killed server fails at the server's.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let withheld: { text: string; done: () => void } | undefined;
  const server = createServer((client) => {
    const upstream = createConnection(target);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (withheld && chunk.toString('latin1').toLowerCase().includes(withheld.text)) {
        withheld.done();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    for (const socket of pair) socket.on('end', end).on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the TCP proxy has no port');
  return {
    port: address.port,
    withhold: (text) =>
      new Promise<void>((resolve) => {
        withheld = { text: text.toLowerCase(), done: resolve };
      }),
    dropConnections: () => {
      for (const pair of [...pairs]) for (const socket of pair) socket.destroy();
      pairs.clear();
    },
    close: async () => {
      for (const pair of [...pairs]) for (const socket of pair) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
