import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actions, ageAccountSignIn, openAccount, postAccount } from './helpers/account.ts';
import { haveBrowser, launchBrowser } from './helpers/browser.ts';
import { account, callback } from './helpers/federation.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { freePort, startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { startGoogleStandIn, type Upstream } from './helpers/upstream.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';
import { stored } from './helpers/stored.ts';

const FIREFOX = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:130.0) Gecko/20100101 Firefox/130.0';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

let server: TestServer;
let google: Upstream;
let mailbox: Mailbox;

beforeAll(async () => {
  const port = await freePort();
  google = await startGoogleStandIn([callback(`http://127.0.0.1:${port}`, 'google')]);
  mailbox = await startMailbox();
  server = await startServer(
    { GOOGLE_CLIENT_ID: google.clientId, GOOGLE_CLIENT_SECRET: google.clientSecret, GOOGLE_ISSUER: google.issuer, SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.1' },
    { port },
  );
});

afterAll(async () => {
  await server?.close();
  await google?.close();
  await mailbox?.close();
});

/** A person with a password, and an app they signed in to (its refresh token in hand), in the browser `ua`. */
async function personWithApp(ua: UserAgent) {
  const person = await seed(server.env, { redirectUri: REDIRECT_URI });
  const config = await discover(server.issuer, person.clientId, person.clientSecret);
  const { tokens } = await loginAndExchange(ua, config, { login: person, scope: 'openid email offline_access' });
  expect(tokens.refresh_token).toBeTruthy();
  return { person, config, refreshToken: tokens.refresh_token! };
}

const pathOf = (url: string) => new URL(url).pathname;

const refreshFails = async (config: oidc.Configuration, refreshToken: string) => {
  await expect(oidc.refreshTokenGrant(config, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
};

describe.skipIf(!haveBrowser)('in a real browser', () => {
  it('a person signs in to /account and sees every section: profile, password, two-step verification, sessions, apps, linked services, data, deletion', async () => {
    // An app holds the person's consent, and Google is linked to the account (with the password, once).
    const ua = new UserAgent();
    const { person } = await personWithApp(ua);
    google.signInAs(account({ email: person.email }));
    const config = await discover(server.issuer, person.clientId, person.clientSecret);
    const linking = new UserAgent();
    const login = (await authorize(linking, config, { consent: false })).last;
    const loginHtml = await login.res.text();
    const linkPage = await linking.submit(login.url, loginHtml, formAction(loginHtml, '/federated/google'), {}, REDIRECT_URI);
    const linkHtml = await linkPage.res.text();
    const link = /name="link" value="([^"]+)"/.exec(linkHtml)![1]!;
    const linked = await linking.submit(linkPage.url, linkHtml, formAction(linkHtml, '/link'), { link, password: person.password }, REDIRECT_URI);
    expect(linked.url.startsWith(REDIRECT_URI) || (await linked.res.text()).includes('Allow access')).toBe(true);

    const browser = await launchBrowser();
    try {
      const page = await (await browser.newContext({ locale: 'en-US' })).newPage();
      page.setDefaultTimeout(8000);
      await page.goto(`${server.issuer}/account`);
      await page.locator('#email').fill(person.email);
      await page.locator('#password').fill(person.password);
      await page.locator('form[action$="/login"] button[type=submit]').click();
      await page.waitForURL(`${server.issuer}/account`);
      expect(await page.locator('h1').textContent()).toBe('Your account');
      expect(await page.locator('h2').allTextContents()).toEqual(['Profile', 'Password', 'Two-step verification', 'Sessions and devices', 'Connected apps', 'Linked sign-in services', 'Your data', 'Delete your account']);
      // This browser's session, named by its browser and system, and the app's session.
      await page.getByText('This browser').waitFor();
      expect(await page.locator('#sessions-heading + p + ul > li').count()).toBeGreaterThanOrEqual(2);
      expect(await page.locator('#session-0').textContent()).toMatch(/^Chrome \d+ on Linux/);
      // The app, with what it may do in the consent page's words; Google, with the address it holds.
      await page.getByRole('heading', { name: 'Test App' }).waitFor();
      await page.getByText('Stay connected and access your data while you are away').waitFor();
      await page.getByRole('heading', { name: 'Google' }).waitFor();
      await page.getByRole('link', { name: 'Unlink Google' }).waitFor();
      // The name is saved from the page.
      await page.locator('#name').fill('Renamed Person');
      await page.getByRole('button', { name: 'Save name' }).click();
      await page.getByRole('status').filter({ hasText: 'Your name was saved.' }).waitFor();
      expect(await page.locator('#name').inputValue()).toBe('Renamed Person');
      // The data download is a file.
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download your data' }).click()]);
      expect(download.suggestedFilename()).toBe('account-data.json');
    } finally {
      await browser.close();
    }
  });
});

describe('connected apps', () => {
  it('revoking an app makes its refresh token fail, and the app is no longer listed', async () => {
    const ua = new UserAgent();
    const { config, refreshToken } = await personWithApp(ua);
    // The same browser: already signed in, the account page opens without asking again.
    const page = await openAccount(server, ua);
    expect(pathOf(page.url)).toBe('/account');
    expect(page.html).toContain('Test App');
    expect(page.html).toContain('See your email address');
    const [revoke] = actions(page.html, /^\/account\/apps\/[^/]+\/revoke$/);
    const res = await postAccount(server, ua, page, revoke!);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/account?done=app_revoked');
    await refreshFails(config, refreshToken);
    const after = await openAccount(server, ua, undefined, '/account?done=app_revoked');
    expect(after.html).toContain('The app no longer has access to your account.');
    expect(after.html).not.toContain('Test App');
  });
});

describe('sessions and devices', () => {
  it('lists each browser with its browser and system; signing out another session makes that browser sign in again', async () => {
    const person = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, person.clientId, person.clientSecret);
    const mac = new UserAgent({ headers: { 'user-agent': FIREFOX } });
    const windows = new UserAgent({ headers: { 'user-agent': CHROME } });
    expect((await openAccount(server, windows, person)).status).toBe(200);
    const page = await openAccount(server, mac, person);
    expect(page.html).toContain('Firefox 130 on macOS <span class="badge">This browser</span>');
    expect(page.html).toContain('Chrome 131 on Windows');
    expect(page.html).toContain('<dd>127.0.0.1</dd>');

    // Only the other browser can be signed out from here.
    const forms = actions(page.html, /^\/account\/sessions\/[^/]+\/sign-out$/);
    expect(forms).toHaveLength(1);
    const res = await postAccount(server, mac, page, forms[0]!);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/account?done=session_ended');

    // The other browser must sign in again, on the account page and in any app.
    const again = await openAccount(server, windows);
    expect(pathOf(again.url)).toMatch(/^\/interaction\//);
    expect(again.html).toContain('Sign in');
    const silent = await authorize(windows, config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(silent.callbackUrl.searchParams.get('error')).toBe('login_required');
    // This one stays.
    const still = await openAccount(server, mac);
    expect(pathOf(still.url)).toBe('/account');
    expect(still.html).not.toContain('Chrome 131 on Windows');
  });

  it('"Sign out of every other session" ends every session but this one', async () => {
    const person = await seed(server.env, { redirectUri: REDIRECT_URI });
    const others = [new UserAgent(), new UserAgent()];
    for (const other of others) expect((await openAccount(server, other, person)).status).toBe(200);
    const me = new UserAgent();
    const page = await openAccount(server, me, person);
    expect(actions(page.html, /^\/account\/sessions\/[^/]+\/sign-out$/)).toHaveLength(2);
    const res = await postAccount(server, me, page, '/account/sessions/sign-out-others');
    expect(res.headers.get('location')).toBe('/account?done=sessions_ended');
    for (const other of others) expect(pathOf((await openAccount(server, other)).url)).toMatch(/^\/interaction\//);
    const after = await openAccount(server, me);
    expect(pathOf(after.url)).toBe('/account');
    expect(actions(after.html, /^\/account\/sessions\/[^/]+\/sign-out$/)).toHaveLength(0);
  });
});

describe('password', () => {
  it('a change with the wrong current password is refused; with the right one, every other session ends, this browser stays, the address is told', async () => {
    const other = new UserAgent();
    const { person, config, refreshToken } = await personWithApp(other);
    const me = new UserAgent();
    const form = await openAccount(server, me, person, '/account/password');
    expect(pathOf(form.url)).toBe('/account/password');
    expect(form.html).toContain('Current password');
    const next = 'a brand new passphrase for this test';

    const wrong = await postAccount(server, me, form, '/account/password', { current: 'not the password', password: next });
    expect(wrong.status).toBe(401);
    const wrongHtml = await wrong.text();
    expect(wrongHtml).toContain('The current password is not right.');
    expect(wrongHtml).toMatch(/id="current"[^>]*aria-invalid="true"/);
    // Nothing changed: the other browser and the app are still signed in.
    expect(pathOf((await openAccount(server, other)).url)).toBe('/account');
    const refreshed = await oidc.refreshTokenGrant(config, refreshToken);

    const weak = await postAccount(server, me, form, '/account/password', { current: person.password, password: 'short' });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toContain('The password must be at least 8 characters long.');

    const right = await postAccount(server, me, form, '/account/password', { current: person.password, password: next });
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('/account?done=password_changed');
    expect(pathOf((await openAccount(server, other)).url)).toMatch(/^\/interaction\//);
    await refreshFails(config, refreshed.refresh_token!);
    const mine = await openAccount(server, me);
    expect(pathOf(mine.url)).toBe('/account');

    // Only the new password signs in now.
    const oldTry = await authorize(new UserAgent(), config, { login: person, consent: false });
    expect(oldTry.last.res.status).toBe(401);
    const newTry = await authorize(new UserAgent(), config, { login: { email: person.email, password: next }, scope: 'openid' });
    expect(newTry.callbackUrl.searchParams.get('code')).toBeTruthy();

    const mail = await mailbox.next(person.email);
    expect(mail.subject).toContain('password was changed');
    expect(mail.text).toContain('Every other browser was signed out');
  });
});

describe('linked sign-in services', () => {
  it('unlinking the last way to sign in is refused; with a password set, it goes through', async () => {
    const person = account();
    google.signInAs(person);
    const ua = new UserAgent();
    // Signs in to the account page with Google (a new account, just in time).
    const start = await ua.follow(`${server.issuer}/account`);
    const loginHtml = await start.res.text();
    const signedIn = await ua.submit(start.url, loginHtml, formAction(loginHtml, '/federated/google'), {});
    expect(pathOf(signedIn.url)).toBe('/account');
    const page = await signedIn.res.text();
    expect(page).toContain('Your account has no password');
    const unlink = /href="(\/account\/linked\/[^"]+\/unlink)"/.exec(page)![1]!;

    const confirm = await openAccount(server, ua, undefined, unlink);
    expect(confirm.html).toContain('Unlink Google?');
    const refused = await postAccount(server, ua, confirm, unlink);
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain('This is your only way to sign in.');
    expect((await openAccount(server, ua)).html).toContain(unlink);

    // A first password (no current one to give), then the same unlink works.
    const form = await openAccount(server, ua, undefined, '/account/password');
    expect(form.html).toContain('Set a password');
    expect(form.html).not.toContain('Current password');
    const set = await postAccount(server, ua, form, '/account/password', { password: 'a passphrase of my own' });
    expect(set.headers.get('location')).toBe('/account?done=password_changed');
    const unlinked = await postAccount(server, ua, await openAccount(server, ua, undefined, unlink), unlink);
    expect(unlinked.headers.get('location')).toBe('/account?done=unlinked');
    const after = await openAccount(server, ua);
    expect(after.html).toContain('You have not linked another sign-in service.');
  });
});

describe('deleting the account', () => {
  it('is refused with the wrong confirmation; with the right one, removes the person and everything of theirs', async () => {
    const ua = new UserAgent();
    const { person, config, refreshToken } = await personWithApp(ua);
    const form = await openAccount(server, ua, undefined, '/account/delete');
    expect(form.html).toContain(`type your email address (${person.email})`);

    const wrong = await postAccount(server, ua, form, '/account/delete', { email: 'someone.else@example.com' });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain('That is not your email address.');
    const prisma = server.current.db.prisma;
    expect(await prisma.user.count({ where: { id: person.userId } })).toBe(1);

    // The address typed in capitals is the same address.
    const right = await postAccount(server, ua, form, '/account/delete', { email: person.email.toUpperCase() });
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('/account/deleted');
    expect(await prisma.user.count({ where: { id: person.userId } })).toBe(0);
    expect(await prisma.grant.count({ where: { accountId: person.userId } })).toBe(0);
    expect(await stored(server).countOf(person.userId)).toBe(0);
    expect(await prisma.federatedIdentity.count({ where: { userId: person.userId } })).toBe(0);
    expect(await prisma.accountToken.count({ where: { userId: person.userId, usedAt: null } })).toBe(0);
    await refreshFails(config, refreshToken);
    const signIn = await authorize(new UserAgent(), config, { login: person, consent: false });
    expect(signIn.last.res.status).toBe(401);
    expect(await signIn.last.res.text()).toContain('Incorrect email or password.');
    expect(pathOf((await openAccount(server, ua)).url)).toMatch(/^\/interaction\//);

    // The audit keeps what happened, under the account's id, without the address.
    const events = await prisma.auditEvent.findMany({ where: { OR: [{ target: person.userId }, { actor: `user:${person.userId}` }] } });
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(['user.created', 'login.succeeded', 'user.deleted']));
    expect(events.find((e) => e.action === 'user.deleted')).toMatchObject({ actor: `user:${person.userId}`, details: JSON.stringify({ self: true }) });
    expect(JSON.stringify(events)).not.toContain(person.email);
    const mail = await mailbox.next(person.email);
    expect(mail.subject).toContain('account was deleted');
  });
});

describe('downloading my data', () => {
  it('is a JSON file with the profile, linked services, apps, sessions, recent sign-ins and second factors', async () => {
    const ua = new UserAgent({ headers: { 'user-agent': FIREFOX } });
    const { person } = await personWithApp(ua);
    const page = await openAccount(server, ua);
    const res = await postAccount(server, ua, page, '/account/data');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="account-data.json"');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    const data = JSON.parse(text) as Record<string, unknown>;
    expect(data).toEqual({
      exportedAt: expect.any(String),
      profile: { id: person.userId, email: person.email, emailVerified: false, name: 'Test User', attributes: {}, hasPassword: true, createdAt: expect.any(String), updatedAt: expect.any(String) },
      linkedSignInServices: [],
      connectedApps: [{ clientId: person.clientId, name: 'Test App', scopes: ['openid', 'email', 'offline_access'], apis: {}, grantedAt: expect.any(String), expiresAt: expect.any(String) }],
      sessions: [{ browser: 'Firefox 130', os: 'macOS', userAgent: FIREFOX, ip: '127.0.0.1', signedInAt: expect.any(String), lastSeenAt: expect.any(String) }],
      recentSignIns: [{ at: expect.any(String), ip: '127.0.0.1', app: 'Test App', method: 'password' }],
      secondFactors: { items: [], recoveryCodesLeft: 0 },
    });
    expect(text).not.toContain('argon2');
  });
});

describe('recent authentication', () => {
  it('a sensitive action after the window asks for the password again, then comes back to it', async () => {
    const person = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const page = await openAccount(server, ua, person);
    expect(await ageAccountSignIn(server, person.userId, 301)).toBe(1);

    // The form is not shown, and a post changes nothing: both send the browser to sign in again.
    const get = await ua.request(`${server.issuer}/account/password`);
    expect(get.status).toBe(303);
    expect(get.headers.get('location')).toBe('/account/sign-in?return=%2Faccount%2Fpassword&reauth=1');
    const post = await postAccount(server, ua, page, '/account/delete', { email: person.email });
    expect(post.headers.get('location')).toBe('/account/sign-in?return=%2Faccount%2Fdelete&reauth=1');
    expect(await server.current.db.prisma.user.count({ where: { id: person.userId } })).toBe(1);

    // The sign-in page asks for the password although this browser is signed in, and names the person.
    const again = await ua.follow(new URL(get.headers.get('location')!, server.issuer));
    expect(pathOf(again.url)).toMatch(/^\/interaction\//);
    const html = await again.res.text();
    expect(html).toContain(`value="${person.email}"`);
    const back = await ua.submit(again.url, html, formAction(html, '/login'), { email: person.email, password: person.password });
    expect(pathOf(back.url)).toBe('/account/password');
    expect(await back.res.text()).toContain('Current password');
  });

  it('a new sign-in in the window needs nothing more', async () => {
    const person = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    await openAccount(server, ua, person);
    const res = await ua.request(`${server.issuer}/account/delete`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Delete my account');
  });
});

describe('signing out of the account page', () => {
  it('ends its session, then offers to sign out of this browser completely (RP-initiated logout)', async () => {
    const person = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const page = await openAccount(server, ua, person);
    const out = await postAccount(server, ua, page, '/account/sign-out');
    expect(out.headers.get('location')).toBe('/account/signed-out');
    const signedOut = await ua.follow(`${server.issuer}/account/signed-out`);
    const html = await signedOut.res.text();
    expect(html).toContain('You have signed out of your account page.');
    const logout = /href="(\/session\/end\?[^"]+)"/.exec(html)![1]!.replaceAll('&amp;', '&');
    // The account page's session is gone; the browser session of the provider is not (yet).
    const prisma = server.current.db.prisma;
    const accountSessions = await prisma.oidcPayload.findMany({ where: { model: 'AccountSession' } });
    expect(accountSessions.filter((r) => r.payload.includes(person.userId))).toEqual([]);
    expect(pathOf((await openAccount(server, ua)).url)).toBe('/account');

    // The provider asks, then signs this browser out and comes back.
    const confirm = await ua.follow(`${server.issuer}${logout}`);
    const confirmHtml = await confirm.res.text();
    expect(confirmHtml).toContain('Do you want to sign out of Your account and of this sign-in service?');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirmHtml)![1]!;
    const done = await ua.request(`${server.issuer}/session/end/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.issuer },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    expect(done.headers.get('location')).toBe(`${server.issuer}/account/signed-out?state=done`);
    const end = await (await ua.follow(done.headers.get('location')!)).res.text();
    expect(end).not.toContain('/session/end?');
    expect(await stored(server).count('Session', { accountId: person.userId })).toBe(0);
  });
});
