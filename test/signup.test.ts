import type { ParsedMail } from 'mailparser';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveBrowser, launchBrowser } from './helpers/browser.ts';
import { authorize, discover, REDIRECT_URI } from './helpers/flow.ts';
import { seed, withServices } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let mailbox: Mailbox;
beforeAll(async () => {
  mailbox = await startMailbox();
  server = await startServer({ SIGNUP: 'open', SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', PRODUCT_NAME: 'Acme', SIGNUP_IP_MAX_PER_HOUR: '1000' });
});
afterAll(async () => {
  await server?.close();
  await mailbox?.close();
});

const newEmail = () => `new-${Math.random().toString(36).slice(2)}@example.com`;
const PASSWORD = 'a long enough passphrase';

/** The verification link and the code of a verification message. */
function verificationOf(mail: ParsedMail) {
  const link = mailbox.links(mail).find((l) => l.includes('/verify-email?token='));
  const code = /Or type this code: (\d{6})/.exec(String(mail.text))?.[1];
  if (!link || !code) throw new Error(`no link or code in: ${mail.text}`);
  return { link, code };
}

/** The action of the first form on a page that posts to a path starting with `path`. */
const actionOf = (html: string, path: string) => {
  const m = new RegExp(`action="(${path.replace(/[?]/g, '\\?')}[^"]*)"`).exec(html);
  if (!m) throw new Error(`no form posting to ${path}`);
  return m[1]!.replaceAll('&amp;', '&');
};

/** An app asks for the sign-up page (prompt=create); the page it opens on. */
async function atSignUp(ua: UserAgent, config: oidc.Configuration) {
  const started = await authorize(ua, config, { prompt: 'create', consent: false, scope: 'openid email profile' });
  const html = await started.last.res.text();
  expect(started.last.res.status).toBe(200);
  expect(html).toContain('Create your Acme account');
  return { started, html };
}

/** What userinfo says of the person the tokens are for. */
const userinfo = async (config: oidc.Configuration, tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers) => oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);

/** Allows the consent page, if one shows, and redeems the code. */
async function finishAtApp(ua: UserAgent, config: oidc.Configuration, step: { res: Response; url: string }, started: Awaited<ReturnType<typeof authorize>>) {
  let landed = step;
  if (!landed.url.startsWith(REDIRECT_URI)) {
    const html = await landed.res.text();
    expect(html).toContain('Allow access');
    landed = await ua.submit(landed.url, html, formAction(html, '/confirm'), {}, REDIRECT_URI);
  }
  expect(landed.url.startsWith(REDIRECT_URI)).toBe(true);
  return oidc.authorizationCodeGrant(config, new URL(landed.url), { pkceCodeVerifier: started.codeVerifier, expectedState: started.state, expectedNonce: started.nonce });
}

describe('sign-up (SIGNUP=open): prompt=create, then the address is verified before the app gets a code', () => {
  it('discovery lists create among the prompt values', async () => {
    const discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as { prompt_values_supported: string[] };
    expect(discovery.prompt_values_supported).toEqual(expect.arrayContaining(['none', 'login', 'consent', 'create']));
  });

  it('signs up, types the emailed code, and lands in the app with email_verified: true', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent({ headers: { 'accept-language': 'en' } });
    const { started, html } = await atSignUp(ua, config);
    const email = newEmail();
    const signedUp = await ua.submit(started.last.url, html, formAction(html, '/signup'), { email, name: 'New Person', password: PASSWORD });
    const verifyHtml = await signedUp.res.text();
    expect(signedUp.url).toBe(started.last.url);
    expect(verifyHtml).toContain('Check your email');
    expect(verifyHtml).toContain(email);

    const mail = await mailbox.next(email);
    expect(mail.subject).toBe('Confirm your email address for Acme');
    const { code } = verificationOf(mail);
    // The account exists, unverified, with the name and audit trail.
    const user = await server.current.db.prisma.user.findUniqueOrThrow({ where: { email } });
    expect(user).toMatchObject({ name: 'New Person', emailVerified: false, termsAcceptedAt: null });
    expect(await server.current.db.prisma.auditEvent.count({ where: { action: 'user.signed_up', target: user.id } })).toBe(1);

    const verified = await ua.submit(signedUp.url, verifyHtml, formAction(verifyHtml, '/verify'), { code }, REDIRECT_URI);
    const tokens = await finishAtApp(ua, config, verified, started);
    expect(tokens.claims()).toMatchObject({ sub: user.id, amr: ['pwd'] });
    const info = await oidc.fetchUserInfo(config, tokens.access_token, user.id);
    expect(info).toMatchObject({ email, email_verified: true, name: 'New Person' });
    expect(await server.current.db.prisma.auditEvent.count({ where: { action: 'user.email_verified', target: user.id } })).toBe(1);
  });

  it('the link followed in another browser verifies the address; the first browser then continues to the app', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const { started, html } = await atSignUp(ua, config);
    const email = newEmail();
    const signedUp = await ua.submit(started.last.url, html, formAction(html, '/signup'), { email, name: 'Two Devices', password: PASSWORD });
    const verifyHtml = await signedUp.res.text();

    // Not yet: the button says so.
    const early = await ua.submit(signedUp.url, verifyHtml, formAction(verifyHtml, '/verify/continue'), {});
    expect(early.res.status).toBe(400);
    expect(await early.res.text()).toContain('Your address is not confirmed yet.');

    // The phone: the link opens a page whose button confirms (a mail scanner's fetch confirms nothing).
    const { link } = verificationOf(await mailbox.next(email));
    const phone = new UserAgent();
    const page = await phone.request(link);
    expect(page.status).toBe(200);
    const pageHtml = await page.text();
    expect(pageHtml).toContain(`Confirm that ${email} is your address.`);
    expect((await server.current.db.prisma.user.findUniqueOrThrow({ where: { email } })).emailVerified).toBe(false);
    const confirmed = await phone.submit(link, pageHtml, actionOf(pageHtml, '/verify-email?token='), {});
    expect(confirmed.res.status).toBe(200);
    expect(await confirmed.res.text()).toContain('Your email address is confirmed.');

    const done = await ua.submit(signedUp.url, verifyHtml, formAction(verifyHtml, '/verify/continue'), {}, REDIRECT_URI);
    const tokens = await finishAtApp(ua, config, done, started);
    expect(await userinfo(config, tokens)).toMatchObject({ email, email_verified: true });
  });

  it('the link followed in the browser that signed up goes straight on to the app', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const { started, html } = await atSignUp(ua, config);
    const email = newEmail();
    await ua.submit(started.last.url, html, formAction(html, '/signup'), { email, name: 'Same Browser', password: PASSWORD });
    const { link } = verificationOf(await mailbox.next(email));
    const pageHtml = await (await ua.request(link)).text();
    const confirmed = await ua.submit(link, pageHtml, actionOf(pageHtml, '/verify-email?token='), {}, REDIRECT_URI);
    const tokens = await finishAtApp(ua, config, confirmed, started);
    expect(await userinfo(config, tokens)).toMatchObject({ email, email_verified: true });
  });

  it('an unverified person who signs in with the right password on the login page verifies first; the claim follows', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    expect((await server.current.db.prisma.user.findUniqueOrThrow({ where: { id: app.userId } })).emailVerified).toBe(false);
    const ua = new UserAgent();
    const started = await authorize(ua, config, { consent: false, prompt: 'login', scope: 'openid email' });
    const loginHtml = await started.last.res.text();
    // The login page offers to sign up.
    expect(loginHtml).toContain('Create an account');
    const signedIn = await ua.submit(started.last.url, loginHtml, formAction(loginHtml, '/login'), { email: app.email, password: app.password });
    const verifyHtml = await signedIn.res.text();
    expect(verifyHtml).toContain('Check your email');
    // No code was issued to the app meanwhile.
    expect(signedIn.url).toBe(started.last.url);

    const { code } = verificationOf(await mailbox.next(app.email));
    const done = await ua.submit(signedIn.url, verifyHtml, formAction(verifyHtml, '/verify'), { code }, REDIRECT_URI);
    const tokens = await finishAtApp(ua, config, done, started);
    expect(tokens.claims()?.sub).toBe(app.userId);
    expect(await userinfo(config, tokens)).toMatchObject({ email: app.email, email_verified: true });
  });

  it("a link that is not ours is 'not valid', in the reader's language", async () => {
    const res = await fetch(`${server.issuer}/verify-email?token=not-a-token`, { headers: { 'accept-language': 'ko' } });
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('유효하지 않은 링크입니다');
  });
});

describe('sign-up policies', () => {
  it('SIGNUP=closed (the default): no sign-up page, no link to it, and prompt=create shows the login page', async () => {
    const closed = await startServer();
    try {
      const app = await seed(closed.env, { redirectUri: REDIRECT_URI });
      const config = await discover(closed.issuer, app.clientId, app.clientSecret);
      const ua = new UserAgent();
      const started = await authorize(ua, config, { prompt: 'create', consent: false });
      const html = await started.last.res.text();
      expect(html).toContain('Sign in');
      expect(html).not.toContain('/signup');
      const page = await ua.request(`${started.last.url}/signup`);
      expect(page.status).toBe(404);
      expect(await page.text()).toContain('Sign-up is not open');
    } finally {
      await closed.close();
    }
  });

  it('SIGNUP=invite: no sign-up page; an invited person creates their account from the invitation', async () => {
    const invite = await startServer({ SIGNUP: 'invite', SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2' });
    try {
      const app = await seed(invite.env, { redirectUri: REDIRECT_URI });
      const config = await discover(invite.issuer, app.clientId, app.clientSecret);
      const ua = new UserAgent();
      const started = await authorize(ua, config, { prompt: 'create', consent: false });
      const html = await started.last.res.text();
      expect(html).not.toContain('/signup');
      const refused = await ua.submit(started.last.url, html, `${new URL(started.last.url).pathname}/signup`, { email: newEmail(), name: 'X', password: PASSWORD });
      expect(refused.res.status).toBe(404);
      expect(await invite.current.db.prisma.user.count()).toBe(1);

      const email = newEmail();
      await withServices(invite.env, ({ invitations }) => invitations.invite({ email }, { actor: 'test' }));
      const link = mailbox.links(await mailbox.next(email)).find((l) => l.includes('/invitation?token='))!;
      const form = await ua.request(link);
      const formHtml = await form.text();
      const accepted = await ua.submit(link, formHtml, actionOf(formHtml, '/invitation?token='), { name: 'Invited', password: PASSWORD });
      expect(accepted.res.status).toBe(200);
      expect(await invite.current.db.prisma.user.findUniqueOrThrow({ where: { email } })).toMatchObject({ emailVerified: true, name: 'Invited' });
    } finally {
      await invite.close();
    }
  });

  it('SIGNUP_EMAIL_DOMAINS: an address of another domain is refused in plain words, and no account is made', async () => {
    const domains = await startServer({ SIGNUP: 'open', SIGNUP_EMAIL_DOMAINS: 'example.org, Example.NET', SMTP_URL: mailbox.url });
    try {
      const app = await seed(domains.env, { redirectUri: REDIRECT_URI });
      const config = await discover(domains.issuer, app.clientId, app.clientSecret);
      const ua = new UserAgent();
      const started = await authorize(ua, config, { prompt: 'create', consent: false });
      const html = await started.last.res.text();
      const refused = await ua.submit(started.last.url, html, formAction(html, '/signup'), { email: newEmail(), name: 'Elsewhere', password: PASSWORD });
      expect(refused.res.status).toBe(400);
      expect(await refused.res.text()).toContain('Accounts can only be created with an address at example.org, example.net.');
      expect(await domains.current.db.prisma.user.count()).toBe(1);
      const allowed = await ua.submit(started.last.url, html, formAction(html, '/signup'), { email: `someone-${Date.now()}@example.org`, name: 'Allowed', password: PASSWORD });
      expect(await allowed.res.text()).toContain('Check your email');
      expect(await domains.current.db.prisma.user.count()).toBe(2);
    } finally {
      await domains.close();
    }
  });

  it('TERMS_URL: the terms must be accepted, and the acceptance is recorded; REQUIRE_VERIFIED_EMAIL=false signs in at once', async () => {
    const terms = await startServer({ SIGNUP: 'open', REQUIRE_VERIFIED_EMAIL: 'false', TERMS_URL: 'https://example.com/terms', SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2' });
    try {
      const app = await seed(terms.env, { redirectUri: REDIRECT_URI });
      const config = await discover(terms.issuer, app.clientId, app.clientSecret);
      const ua = new UserAgent();
      const started = await authorize(ua, config, { prompt: 'create', consent: false, scope: 'openid email' });
      const html = await started.last.res.text();
      expect(html).toContain('I accept the terms of use');
      const email = newEmail();
      const refused = await ua.submit(started.last.url, html, formAction(html, '/signup'), { email, name: 'Terms', password: PASSWORD });
      expect(refused.res.status).toBe(400);
      expect(await refused.res.text()).toContain('To create an account, accept the terms of use.');
      const done = await ua.submit(started.last.url, html, formAction(html, '/signup'), { email, name: 'Terms', password: PASSWORD, terms: 'yes' }, REDIRECT_URI);
      const tokens = await finishAtApp(ua, config, done, started);
      // Signed in before the address is verified (which the claim says); a verification email went out all the same.
      expect(await userinfo(config, tokens)).toMatchObject({ email, email_verified: false });
      expect((await terms.current.db.prisma.user.findUniqueOrThrow({ where: { email } })).termsAcceptedAt).toBeInstanceOf(Date);
      expect(verificationOf(await mailbox.next(email)).code).toMatch(/^\d{6}$/);
    } finally {
      await terms.close();
    }
  });
});

describe.skipIf(!haveBrowser)('sign-up in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('an app sends prompt=create; the person signs up, follows the emailed link and lands in the app with email_verified: true', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      prompt: 'create',
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    const cspViolations: string[] = [];
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
    // The redirect URI is not served: the browser's request to it is caught instead.
    const landed = new Promise<string>((resolve) => {
      void context.route(`${REDIRECT_URI}**`, (route) => {
        resolve(route.request().url());
        void route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>App</title><h1>Back at the app</h1>' });
      });
    });
    try {
      await page.goto(url.href);
      await page.getByRole('heading', { name: 'Create your Acme account' }).waitFor();
      const email = newEmail();
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Name').fill('Browser Person');
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('heading', { name: 'Check your email' }).waitFor();

      const { link } = verificationOf(await mailbox.next(email));
      await page.goto(link);
      await page.getByRole('button', { name: 'Confirm my address' }).click();
      await page.getByRole('button', { name: 'Allow' }).click();
      const callback = new URL(await landed);
      expect(callback.searchParams.get('state')).toBe(state);
      const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state });
      expect(await userinfo(config, tokens)).toMatchObject({ email, email_verified: true });
      expect(cspViolations).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
