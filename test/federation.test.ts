import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp, seed } from './helpers/cli.ts';
import { authorize, discover, REDIRECT_URI } from './helpers/flow.ts';
import { freePort, startServer, type TestServer } from './helpers/server.ts';
import { startForgingUpstream, startGoogleStandIn, type GoogleAccount, type Upstream } from './helpers/upstream.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let google: Upstream;
let admin: AdminApi;
let app: Awaited<ReturnType<typeof seed>>;
let config: oidc.Configuration;

const callback = (issuer: string, provider: string) => `${issuer}/interaction/callback/${provider}`;

beforeAll(async () => {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  google = await startGoogleStandIn([callback(issuer, 'google'), callback(issuer, 'workspace'), callback(issuer, 'second')]);
  server = await startServer({ GOOGLE_CLIENT_ID: google.clientId, GOOGLE_CLIENT_SECRET: google.clientSecret, GOOGLE_ISSUER: google.issuer }, { port });
  admin = await adminApi(server);
  app = await seed(server.env, { redirectUri: REDIRECT_URI });
  config = await discover(server.issuer, app.clientId, app.clientSecret);
});
afterAll(async () => {
  await server?.close();
  await google?.close();
});

let counter = 0;
const account = (extra: Partial<GoogleAccount> = {}): GoogleAccount => ({
  sub: `g-${++counter}-${Math.random().toString(36).slice(2)}`,
  email: `person${counter}@example.com`,
  email_verified: true,
  name: `Person ${counter}`,
  picture: 'https://example.com/p.png',
  ...extra,
});

/** Our login page for a fresh authorization request of the test app. */
async function loginPage(ua: UserAgent) {
  const started = await authorize(ua, config, { consent: false });
  const html = await started.last.res.text();
  return { url: started.last.url, html, state: started };
}

/** Presses a provider's button and follows every real redirect until we answer with a page or the app's callback. */
async function pressButton(ua: UserAgent, provider = 'google') {
  const { url, html, state } = await loginPage(ua);
  expect(html).toContain(`/federated/${provider}"`);
  const step = await ua.submit(url, html, formAction(html, `/federated/${provider}`), {}, REDIRECT_URI);
  return { step, pending: state };
}

/** Finishes our consent page and redeems the code, as the app would. */
async function finishAtApp(ua: UserAgent, step: { res: Response; url: string }, pending: Awaited<ReturnType<typeof authorize>>) {
  let current = step;
  if (!current.url.startsWith(REDIRECT_URI)) {
    const html = await current.res.text();
    expect(html).toContain('Allow access');
    current = await ua.submit(current.url, html, formAction(html, '/confirm'), {}, REDIRECT_URI);
  }
  return oidc.authorizationCodeGrant(config, new URL(current.url), {
    pkceCodeVerifier: pending.codeVerifier,
    expectedState: pending.state,
    expectedNonce: pending.nonce,
  });
}

async function auditCount(action: string) {
  return (await admin.call<{ total: number }>('GET', `/admin/v1/audit?action=${action}`)).body.total;
}

describe('Continue with Google', () => {
  it('shows the button only when configured, and signs a new user in just in time with our own sub', async () => {
    const person = account({ hd: 'example.com' });
    google.signInAs(person);
    const ua = new UserAgent();
    const { step, pending } = await pressButton(ua);
    const tokens = await finishAtApp(ua, step, pending);
    const claims = tokens.claims()!;
    expect(claims.sub).not.toBe(person.sub);
    expect(claims.amr).toEqual(['fed']);
    expect(claims.acr).toBe('urn:idp:acr:federated');

    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(info).toMatchObject({ email: person.email, email_verified: true, name: person.name });
    const identities = await admin.call<{ items: { issuer: string; subject: string }[] }>('GET', `/admin/v1/users/${claims.sub}/identities`);
    expect(identities.body.items).toEqual([expect.objectContaining({ issuer: google.issuer, subject: person.sub })]);

    // The same Google account comes back: the same local user, no new account.
    const users = (await admin.call<{ total: number }>('GET', '/admin/v1/users')).body.total;
    google.signInAs(person);
    const again = new UserAgent();
    const second = await pressButton(again);
    const tokens2 = await finishAtApp(again, second.step, second.pending);
    expect(tokens2.claims()!.sub).toBe(claims.sub);
    expect((await admin.call<{ total: number }>('GET', '/admin/v1/users')).body.total).toBe(users);

    // Without GOOGLE_* there is no button.
    const plain = await startServer();
    const plainApp = await seed(plain.env, { redirectUri: REDIRECT_URI });
    const plainConfig = await discover(plain.issuer, plainApp.clientId, plainApp.clientSecret);
    const page = await authorize(new UserAgent(), plainConfig, { consent: false });
    expect(await page.last.res.text()).not.toContain('/federated/');
    await plain.close();
  });

  it('never links an unverified upstream email to an existing account', async () => {
    const victim = await idp(['users', 'create', '--email', 'victim@example.com', '--password', 'victim password', '--json'], server.env);
    const victimId = victim.json<{ id: string }>().id;
    google.signInAs(account({ email: 'victim@example.com', email_verified: false }));
    const ua = new UserAgent();
    const { step } = await pressButton(ua);
    expect(step.res.status).toBe(403);
    expect(await step.res.text()).toContain('An account with this email address already exists');
    expect(ua.cookies.has('_session')).toBe(false);
    expect((await admin.call<{ items: unknown[] }>('GET', `/admin/v1/users/${victimId}/identities`)).body.items).toEqual([]);
  });

  it('links a verified email to an existing password account only after the password is proven, then remembers the link', async () => {
    const local = await idp(['users', 'create', '--email', 'linda@example.com', '--password', 'linda password', '--json'], server.env);
    const lindaId = local.json<{ id: string }>().id;
    const person = account({ email: 'Linda@Example.com', email_verified: true });
    google.signInAs(person);
    const ua = new UserAgent();
    const { step, pending } = await pressButton(ua);
    let html = await step.res.text();
    expect(html).toContain('Link your account');

    const wrong = await ua.submit(step.url, html, formAction(html, '/link'), { link: /name="link" value="([^"]+)"/.exec(html)![1]!, password: 'not it at all' });
    expect(wrong.res.status).toBe(401);
    html = await wrong.res.text();
    expect(html).toContain('Incorrect password.');
    expect((await admin.call<{ items: unknown[] }>('GET', `/admin/v1/users/${lindaId}/identities`)).body.items).toEqual([]);
    // A wrong password here counts against the account like a failed sign-in.
    const throttle = () => server.current.db.prisma.loginThrottle.findUnique({ where: { key: 'account:linda@example.com' } });
    expect((await throttle())?.failures).toBe(1);

    const right = await ua.submit(step.url, html, formAction(html, '/link'), { link: /name="link" value="([^"]+)"/.exec(html)![1]!, password: 'linda password' }, REDIRECT_URI);
    const tokens = await finishAtApp(ua, right, pending);
    expect(tokens.claims()!.sub).toBe(lindaId);
    expect(tokens.claims()!.amr).toEqual(['fed', 'pwd']);
    expect(await throttle()).toBeNull();

    // Remembered: the next Google sign-in goes straight through.
    google.signInAs(person);
    const later = new UserAgent();
    const next = await pressButton(later);
    const tokens2 = await finishAtApp(later, next.step, next.pending);
    expect(tokens2.claims()!.sub).toBe(lindaId);

    // Linda has a password and Google: Google can be unlinked; a Google-only user's last identity cannot.
    const identities = await admin.call<{ items: { id: string }[] }>('GET', `/admin/v1/users/${lindaId}/identities`);
    expect((await admin.call('DELETE', `/admin/v1/users/${lindaId}/identities/${identities.body.items[0]!.id}`)).status).toBe(204);
    const onlyGoogle = account();
    google.signInAs(onlyGoogle);
    const ua3 = new UserAgent();
    const third = await pressButton(ua3);
    const sub = (await finishAtApp(ua3, third.step, third.pending)).claims()!.sub;
    const ids = await admin.call<{ items: { id: string }[] }>('GET', `/admin/v1/users/${sub}/identities`);
    const refused = await admin.call('DELETE', `/admin/v1/users/${sub}/identities/${ids.body.items[0]!.id}`);
    expect(refused.status).toBe(409);
    const cli = await idp(['users', 'unlink', sub, '--identity', ids.body.items[0]!.id], server.env);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('only way to sign in');
  });

  it('brings a cancelled upstream sign-in back to our login page, where the password still works', async () => {
    google.cancelNext();
    const ua = new UserAgent();
    const { step, pending } = await pressButton(ua);
    expect(step.res.status).toBe(200);
    const html = await step.res.text();
    expect(html).toContain('was cancelled');
    const signedIn = await ua.submit(step.url, html, formAction(html, '/login'), { email: app.email, password: app.password }, REDIRECT_URI);
    const tokens = await finishAtApp(ua, signedIn, pending);
    expect(tokens.claims()!.sub).toBe(app.userId);
    expect(tokens.claims()!.amr).toEqual(['pwd']);
  });

  it('refuses a forged state, a callback for another interaction and a replayed callback', async () => {
    const forged = await fetch(`${callback(server.issuer, 'google')}?state=forged&code=x`, { redirect: 'manual' });
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('This sign-in cannot be completed');

    // Stop at our callback, so the same URL can be presented twice.
    google.signInAs(account());
    const ua = new UserAgent();
    const { url, html } = await loginPage(ua);
    const atCallback = await ua.submit(url, html, formAction(html, '/federated/google'), {}, callback(server.issuer, 'google'));
    const callbackUrl = atCallback.url;
    expect(callbackUrl).toContain('code=');

    // Another browser (no interaction cookie) presenting it is refused.
    const thief = new UserAgent();
    const stolen = await thief.follow(callbackUrl);
    expect(stolen.res.status).toBe(400);
    expect(thief.cookies.has('_session')).toBe(false);

    // The first use by the right browser works, a replay does not.
    const first = await ua.follow(callbackUrl, REDIRECT_URI);
    expect(first.res.status).toBe(200);
    expect(await first.res.text()).toContain('Allow access');
    const replay = await ua.follow(callbackUrl);
    expect(replay.res.status).toBe(400);
  });

  it('keeps password login working when Google is unreachable', async () => {
    const deadPort = await freePort();
    const down = await startServer({ GOOGLE_CLIENT_ID: 'x', GOOGLE_CLIENT_SECRET: 'y', GOOGLE_ISSUER: `http://localhost:${deadPort}` });
    const downApp = await seed(down.env, { redirectUri: REDIRECT_URI });
    const downConfig = await discover(down.issuer, downApp.clientId, downApp.clientSecret);
    const ua = new UserAgent();
    const started = await authorize(ua, downConfig, { consent: false });
    const html = await started.last.res.text();
    const pressed = await ua.submit(started.last.url, html, formAction(html, '/federated/google'), {});
    expect(pressed.res.status).toBe(503);
    const page = await pressed.res.text();
    expect(page).toContain('Google cannot be reached right now');
    const signedIn = await ua.submit(pressed.url, page, formAction(page, '/login'), { email: downApp.email, password: downApp.password }, REDIRECT_URI);
    expect(signedIn.res.status).toBe(200);
    expect(await signedIn.res.text()).toContain('Allow access');
    await down.close();
  });
});

describe('Workspace domains (hd)', () => {
  it('admits only accounts of the allowed domains', async () => {
    const created = await admin.call('POST', '/admin/v1/providers', {
      id: 'workspace', name: 'Acme Google', issuer: google.issuer, clientId: google.clientId, clientSecret: google.clientSecret, hostedDomains: ['acme.example'],
    });
    expect(created.status).toBe(201);
    google.signInAs(account({ hd: 'other.example' }));
    const ua = new UserAgent();
    const refused = await pressButton(ua, 'workspace');
    expect(refused.step.res.status).toBe(403);
    expect(await refused.step.res.text()).toContain('not from an allowed organization');
    expect(await auditCount('federation.domain_refused')).toBe(1);

    google.signInAs(account({ hd: 'acme.example' }));
    const ok = new UserAgent();
    const admitted = await pressButton(ok, 'workspace');
    const tokens = await finishAtApp(ok, admitted.step, admitted.pending);
    expect(tokens.claims()!.amr).toEqual(['fed']);
    await admin.call('DELETE', '/admin/v1/providers/workspace');
  });
});

describe('upstream ID tokens that fail validation', () => {
  it.each([['bad-signature'], ['wrong-audience']] as const)('refuses an ID token with a %s, signs no one in, and records an audit event', async (mode) => {
    const forger = await startForgingUpstream(mode);
    const id = `forged-${mode}`;
    await admin.call('POST', '/admin/v1/providers', { id, name: 'Forger', issuer: forger.issuer, clientId: forger.clientId, clientSecret: forger.clientSecret });
    const before = await auditCount('federation.id_token_rejected');
    const users = (await admin.call<{ total: number }>('GET', '/admin/v1/users')).body.total;
    const ua = new UserAgent();
    const { step } = await pressButton(ua, id);
    expect(step.res.status).toBe(400);
    expect(await step.res.text()).toContain('This sign-in cannot be completed');
    expect(ua.cookies.has('_session')).toBe(false);
    expect(await auditCount('federation.id_token_rejected')).toBe(before + 1);
    expect((await admin.call<{ total: number }>('GET', '/admin/v1/users')).body.total).toBe(users);
    await admin.call('DELETE', `/admin/v1/providers/${id}`);
    await forger.close();
  });
});

describe('generic providers configured through the admin API', () => {
  it('appear on the login page and work; secrets are encrypted and never shown', async () => {
    const second = await admin.call<Record<string, unknown>>('POST', '/admin/v1/providers', {
      id: 'second', name: 'Second IdP', issuer: google.issuer, clientId: google.clientId, clientSecret: google.clientSecret, buttonLabel: 'Sign in with Second',
    });
    expect(second.status).toBe(201);
    expect(second.body).not.toHaveProperty('clientSecret');
    const row = await server.current.db.prisma.identityProvider.findUniqueOrThrow({ where: { id: 'second' } });
    expect(row.clientSecretEnc).toMatch(/^v1\./);
    expect(row.clientSecretEnc).not.toContain(google.clientSecret);

    const ua = new UserAgent();
    const { html } = await loginPage(ua);
    expect(html).toContain('Sign in with Second');
    expect(html).toContain('Continue with Google');

    google.signInAs(account());
    const pressed = await pressButton(new UserAgent(), 'second');
    expect(await pressed.step.res.text()).toContain('Allow access');

    // Disabled: the button disappears at once.
    await admin.call('PATCH', '/admin/v1/providers/second', { enabled: false });
    expect((await loginPage(new UserAgent())).html).not.toContain('Sign in with Second');
    expect((await admin.call('POST', '/admin/v1/providers', { id: 'google', preset: 'google', clientId: 'a', clientSecret: 'b' })).status).toBe(409);
    expect((await admin.call('POST', '/admin/v1/providers', { id: 'bad', name: 'Bad', issuer: 'http://idp.example.com', clientId: 'a', clientSecret: 'b' })).status).toBe(400);
  });
});
