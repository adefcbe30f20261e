import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp } from './helpers/cli.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let admin: AdminApi;
beforeAll(async () => {
  server = await startServer();
  admin = await adminApi(server);
});
afterAll(() => server?.close());

const grants = (accountId: string, clientId: string) => server.current.db.prisma.grant.count({ where: { accountId, clientId } });

/** A sign-in in a fresh browser; true when the consent page was shown (and allowed). */
async function signIn(config: Awaited<ReturnType<typeof discover>>, login: { email: string; password: string }, opts: { scope?: string; prompt?: string } = {}) {
  const ua = new UserAgent();
  const first = await authorize(ua, config, { login, prompt: opts.prompt ?? 'login', scope: opts.scope ?? 'openid profile', consent: false });
  if (first.callbackUrl.href.startsWith(REDIRECT_URI)) return { asked: false, callbackUrl: first.callbackUrl };
  const html = await first.last.res.text();
  expect(html).toContain('Allow access');
  return { asked: true, html };
}

describe('consent is remembered', () => {
  it('asks once per user and app: a new browser session reuses the grant, creates no new one, and gets a code at once', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const login = { email: app.email, password: app.password };
    await loginAndExchange(new UserAgent(), config, { login, scope: 'openid profile', prompt: 'login' });
    expect(await grants(app.userId, app.clientId)).toBe(1);

    for (let i = 0; i < 2; i++) {
      const again = await signIn(config, login);
      expect(again.asked).toBe(false);
      expect(again.callbackUrl?.searchParams.get('code')).toBeTruthy();
    }
    expect(await grants(app.userId, app.clientId)).toBe(1);

    // A new scope brings the page back; allowing it extends the same grant.
    expect((await signIn(config, login, { scope: 'openid profile email' })).asked).toBe(true);
    await loginAndExchange(new UserAgent(), config, { login, scope: 'openid profile email', prompt: 'login' });
    expect(await grants(app.userId, app.clientId)).toBe(1);
    expect((await signIn(config, login, { scope: 'openid email' })).asked).toBe(false);
  });

  it('first-party apps: their users never see a consent page; the grant is recorded and audited as implicit', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const created = await admin.call<{ client: { clientId: string; firstParty: boolean }; clientSecret: string }>('POST', '/admin/v1/clients', {
      name: 'Our own app',
      redirectUris: [REDIRECT_URI],
      firstParty: true,
    });
    expect(created.status).toBe(201);
    expect(created.body.client.firstParty).toBe(true);
    const config = await discover(server.issuer, created.body.client.clientId, created.body.clientSecret);
    const login = { email: app.email, password: app.password };

    // prompt=consent (what offline_access needs) included.
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login, consent: false, scope: 'openid profile email offline_access', prompt: 'consent' });
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.scope?.split(' ').sort()).toEqual(['email', 'offline_access', 'openid', 'profile']);
    expect(await grants(app.userId, created.body.client.clientId)).toBe(1);
    const audit = await admin.call<{ items: { action: string; actor: string; details: { implicit?: boolean } }[] }>('GET', `/admin/v1/audit?action=consent.granted&target=${created.body.client.clientId}`);
    expect(audit.body.items).toEqual([expect.objectContaining({ actor: `user:${app.userId}`, details: expect.objectContaining({ implicit: true }) })]);

    // Marked third-party again, the next new scope is asked for.
    expect((await admin.call('PATCH', `/admin/v1/clients/${created.body.client.clientId}`, { firstParty: false })).status).toBe(200);
    expect((await signIn(config, login, { scope: 'openid', prompt: 'consent' })).asked).toBe(true);
  });

  it('the CLI marks and unmarks a first-party app', async () => {
    const created = await idp(['clients', 'create', '--name', 'Portal', '--redirect-uri', REDIRECT_URI, '--first-party', '--json'], server.env);
    expect(created.code, created.stderr).toBe(0);
    const { client } = created.json<{ client: { clientId: string; firstParty: boolean } }>();
    expect(client.firstParty).toBe(true);
    const updated = await idp(['clients', 'update', client.clientId, '--first-party', 'false', '--json'], server.env);
    expect(updated.json<{ firstParty: boolean }>().firstParty).toBe(false);
    const refused = await idp(['clients', 'create', '--name', 'ops2', '--admin', '--first-party'], server.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--first-party does not apply');
  });
});
