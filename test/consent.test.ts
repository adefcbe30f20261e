import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp } from './helpers/cli.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';
import { stored } from './helpers/stored.ts';

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

describe('the consent page says what is being granted, in words', () => {
  /** The consent page of a fresh sign-in of a new user to a new app, asking for the API too. */
  async function consentPage(scope = 'openid profile email read write') {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const pending = await authorize(ua, config, { login: { email: app.email, password: app.password }, scope, resource: 'https://api.example.com', consent: false });
    expect(pending.callbackUrl.href.startsWith(REDIRECT_URI)).toBe(false);
    return { app, config, ua, pending, url: pending.last.url, html: await pending.last.res.text() };
  }

  it('names the API and describes its scopes as its admin registered them; OIDC scopes have built-in words', async () => {
    const apis = await admin.call<{ items: { id: string; identifier: string }[] }>('GET', '/admin/v1/resources?limit=100');
    const api = apis.body.items.find((r) => r.identifier === 'https://api.example.com')!;
    const updated = await admin.call('PATCH', `/admin/v1/resources/${api.id}`, { name: 'Documents', scopes: [{ name: 'read', description: 'Read your documents' }, 'write'] });
    expect(updated.status).toBe(200);

    const { html } = await consentPage();
    expect(html).toContain('<h1>Allow Test App access?</h1>');
    expect(html).toContain('<li>See your email address</li>');
    expect(html).toContain('<li>See your name</li>');
    expect(html).toContain('Use Documents on your behalf:');
    expect(html).toContain('<li>Read your documents</li>');
    // A scope without a description is shown by its name.
    expect(html).toContain('<li><code>write</code></li>');
  });

  it('shows the app’s logo and links to its privacy policy and terms when it registered them (https only)', async () => {
    const { app, html: before } = await consentPage('openid');
    expect(before).not.toContain('class="app-logo"');
    const links = { logoUri: 'https://app.example.com/logo.png', policyUri: 'https://app.example.com/privacy', tosUri: 'https://app.example.com/terms' };
    expect((await admin.call('PATCH', `/admin/v1/clients/${app.clientId}`, links)).status).toBe(200);
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const pending = await authorize(new UserAgent(), config, { login: { email: app.email, password: app.password }, scope: 'openid email', prompt: 'consent', consent: false });
    const html = await pending.last.res.text();
    expect(html).toContain('<img src="https://app.example.com/logo.png" alt="" class="app-logo">');
    expect(html).toContain('<a href="https://app.example.com/privacy" rel="noopener noreferrer">privacy policy</a>');
    expect(html).toContain('<a href="https://app.example.com/terms" rel="noopener noreferrer">terms of service</a>');
  });

  it('"Not you?" signs the person out and back to the sign-in page of the same authorization, which still reaches the app', async () => {
    const { app, config, ua, pending, url, html } = await consentPage('openid');
    const other = await seed(server.env, { redirectUri: REDIRECT_URI });
    const switched = await ua.submit(url, html, formAction(html, '/switch'), {}, REDIRECT_URI);
    const loginHtml = await switched.res.text();
    expect(loginHtml).toContain('Sign in');
    expect(loginHtml).toContain('name="password"');
    // The first person's session is gone.
    expect(await stored(server).count('Session', { accountId: app.userId })).toBe(0);
    const audit = await admin.call<{ items: { action: string; details: { reason?: string } }[] }>('GET', `/admin/v1/audit?action=session.ended&target=${app.userId}`);
    expect(audit.body.items).toEqual([expect.objectContaining({ details: expect.objectContaining({ reason: 'another_account' }) })]);

    // The other person signs in (the other app's user here is just another account) and the app gets its code.
    const signedIn = await ua.submit(switched.url, loginHtml, formAction(loginHtml, '/login'), { email: other.email, password: other.password }, REDIRECT_URI);
    const consentHtml = await signedIn.res.text();
    expect(consentHtml).toContain(other.email);
    const done = await ua.submit(signedIn.url, consentHtml, formAction(consentHtml, '/confirm'), {}, REDIRECT_URI);
    const callback = new URL(done.url);
    expect(callback.searchParams.get('state')).toBe(pending.state);
    const tokens = await oidcCodeGrant(config, callback, pending);
    expect(tokens.claims()?.sub).toBe(other.userId);
  });

  it('Deny answers access_denied, saying the user denied access', async () => {
    const { ua, url, html } = await consentPage('openid');
    const denied = await ua.submit(url, html, formAction(html, '/abort'), {}, REDIRECT_URI);
    const callback = new URL(denied.url);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('error_description')).toBe('The user denied access to the application.');
  });
});

async function oidcCodeGrant(config: Awaited<ReturnType<typeof discover>>, callback: URL, pending: { codeVerifier: string; state: string; nonce: string }) {
  return oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce });
}
