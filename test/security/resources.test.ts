// Bounded resources: a client cannot hold connections, fill tables or the audit trail at will.
// OWASP API Security Top 10 API4:2023 (unrestricted resource consumption); CWE-400; RFC 9110 §15.5.9.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ REQUEST_TIMEOUT_SECONDS: '1', MAX_CONNECTIONS: '4' });
});
afterAll(() => server?.close());

/** Opens a connection; resolves with everything the server sent once it closes it. */
function openConnection(): Promise<{ socket: Socket; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(server.issuer).port), '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += d));
    const closed = new Promise<string>((done) => socket.on('close', () => done(received)));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

/** Writes `text` one character every `ms` milliseconds until the socket closes. */
function trickle(socket: Socket, text: string, ms: number) {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) return clearInterval(timer);
    socket.write(text[i++]!);
  }, ms);
  socket.on('close', () => clearInterval(timer));
}

describe('connections', () => {
  it.each([
    ['a token request whose body trickles in', 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n', 'grant_type=client_credentials&client_id=x'],
    ['a login post whose body trickles in', 'POST /interaction/abc/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n', 'email=a%40example.com&password=xxxxxxxxxxxxxxxx'],
    ['a request whose headers trickle in', 'GET /healthz HTTP/1.1\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
  ])('SEC-RS-01 %s gets 408 and its connection is closed within the request timeout', async (_name, head, slow) => {
    const { socket, closed } = await openConnection();
    socket.write(head);
    trickle(socket, slow, 150);
    const answer = await closed;
    expect(answer.startsWith('HTTP/1.1 408')).toBe(true);
  });

  it('SEC-RS-02 connections past MAX_CONNECTIONS are closed at once, without an answer; the open ones are still served', async () => {
    const held = await Promise.all(Array.from({ length: 4 }, () => openConnection()));
    const extra = await openConnection();
    expect(await extra.closed).toBe('');
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(await held[0]!.closed).toMatch(/^HTTP\/1\.1 200/);
    for (const c of held.slice(1)) c.socket.destroy();
    await Promise.all(held.slice(1).map((c) => c.closed));
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
  });
});
