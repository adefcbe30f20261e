import net from 'node:net';

/** A TCP proxy in front of a server (PostgreSQL, Redis) that a test can cut and restore, like a network failure. */
export async function startCuttableProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  const listen = (port = 0) =>
    new Promise<number>((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect(Number(target.port || (target.protocol.startsWith('redis') ? 6379 : 5432)), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  const port = await listen();
  return {
    port,
    /** Every connection dies and new ones are refused. */
    async cut() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
    async restore() {
      await listen(port);
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
