// Back-channel logout (OpenID Connect Back-Channel Logout 1.0 §2.4–2.6, §4): the server itself
// makes the request, so where it may send it is a server-side request forgery question (OWASP
// SSRF Prevention); the token is signed, short-lived, carries no nonce, and is never kept.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { seed } from '../helpers/seed.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';

let server: TestServer;
let api: AdminApi;
const calls: string[] = [];
const rp = createServer((req, res) => {
  calls.push(req.url ?? '');
  res.end();
});

beforeAll(async () => {
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  // Production: the settings it requires, on a loopback issuer (allowed for a local try-out).
  server = await startServer({
    NODE_ENV: 'production',
    COOKIE_SECRETS: 'a'.repeat(40),
    KEY_ENCRYPTION_SECRET: 'b'.repeat(40),
    SMTP_URL: 'smtp://127.0.0.1:9',
  });
  api = await adminApi(server);
});
afterAll(async () => {
  await server?.close();
  await new Promise<void>((resolve) => rp.close(() => resolve()));
});

describe('back-channel logout', () => {
  it('SEC-BL-01 in production the server never sends a logout token to a loopback host: a registrant cannot aim it at a service on the server’s own machine', async () => {
    const uri = `http://127.0.0.1:${(rp.address() as AddressInfo).port}/logout`;
    const created = await api.call<{ client: { clientId: string }; clientSecret: string }>('POST', '/admin/v1/clients', { name: 'Local', redirectUris: [REDIRECT_URI], backchannelLogoutUri: uri });
    expect(created.status).toBe(201);
    const { clientId } = created.body.client;
    const person = await seed(server.env, { redirectUri: REDIRECT_URI });
    await loginAndExchange(new UserAgent(), await discover(server.issuer, clientId, created.body.clientSecret), { login: person });

    const ended = await api.call('DELETE', `/admin/v1/users/${person.userId}/sessions`);
    expect(ended.status).toBeLessThan(300);
    // The session's end is told synchronously to the queue: nothing was queued for this client, so nothing can be sent.
    expect(await server.current.db.prisma.logoutDelivery.count({ where: { clientId } })).toBe(0);
    expect(calls).toEqual([]);
  });
});
