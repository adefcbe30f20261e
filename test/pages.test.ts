import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliActor } from '../src/audit/service.ts';
import { openDatabase } from '../src/db/index.ts';
import { axeViolations, haveBrowser, launchBrowser, screenshotPath } from './helpers/browser.ts';
import { discover } from './helpers/flow.ts';
import { seed, withServices } from './helpers/seed.ts';
import { freePort, startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { startGoogleStandIn, type Upstream } from './helpers/upstream.ts';
import { stored } from './helpers/stored.ts';

/**
 * Every page a person can land on, in English and Korean, in the light and the dark scheme:
 * axe-core finds no WCAG 2.2 A/AA violation (nor any of its best-practice rules), the page speaks
 * the language it says (<html lang>), nothing breaks the Content-Security-Policy, and a
 * screenshot of each is written to test-artifacts/pages/ for a reviewer.
 */
describe.skipIf(!haveBrowser)('every page is accessible in both languages and both colour schemes', () => {
  let server: TestServer;
  let app: Server;
  let appOrigin: string;
  let browser: Browser;
  let google: Upstream;
  let mailbox: Mailbox;

  beforeAll(async () => {
    app = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><html lang="en"><title>App</title><h1>Back at the app</h1></html>'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appOrigin = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
    const port = await freePort();
    mailbox = await startMailbox();
    google = await startGoogleStandIn([`http://127.0.0.1:${port}/interaction/callback/google`]);
    // Google (a stand-in on loopback) as an upstream, so that its button and the linking page show.
    server = await startServer(
      {
        PRODUCT_NAME: 'Acme',
        SUPPORT_URL: 'https://help.example.com/',
        TERMS_URL: 'https://example.com/terms',
        PRIVACY_URL: 'https://example.com/privacy',
        GOOGLE_CLIENT_ID: google.clientId,
        GOOGLE_CLIENT_SECRET: google.clientSecret,
        GOOGLE_ISSUER: google.issuer,
        SMTP_URL: mailbox.url,
        MAIL_POLL_SECONDS: '0.2',
        // Sign-up open (its link on the login page); the seeded people sign in without verifying first.
        SIGNUP: 'open',
        REQUIRE_VERIFIED_EMAIL: 'false',
        SIGNUP_IP_MAX_PER_HOUR: '1000',
        LOGIN_MAX_FAILURES: '2',
      },
      { port },
    );
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await google?.close();
    await mailbox?.close();
    await new Promise((resolve) => app?.close(resolve));
  });

  interface Visit {
    page: Page;
    /** An authorization request of a freshly seeded app and user. */
    authorizeUrl: string;
    user: { email: string; password: string };
  }

  const signIn = async (v: Visit, password = v.user.password, email = v.user.email) => {
    await v.page.locator('#email').fill(email);
    await v.page.locator('#password').fill(password);
    await v.page.locator('form[action$="/login"] button[type=submit]').click();
    await v.page.waitForLoadState();
  };

  const toConsent = async (v: Visit) => {
    await v.page.goto(v.authorizeUrl);
    await signIn(v);
    await v.page.locator('form[action$="/confirm"]').waitFor();
  };

  const toLoggedIn = async (v: Visit) => {
    await toConsent(v);
    await v.page.locator('form[action$="/confirm"] button').click();
    await v.page.waitForURL((u) => u.href.startsWith(appOrigin));
  };

  /** The sign-up page, from the login page's link; filled in with `email` (nothing sent yet). */
  const toSignUp = async (v: Visit, email?: string) => {
    await v.page.goto(v.authorizeUrl);
    await v.page.locator('a[href$="/signup"]').click();
    await v.page.locator('form[action$="/signup"]').waitFor();
    if (email === undefined) return;
    await v.page.locator('#email').fill(email);
    await v.page.locator('#name').fill('New Person');
    await v.page.locator('#password').fill('a long enough passphrase');
    await v.page.locator('#terms').check();
  };

  /** A new account signed up in another browser: the verification link from the mailbox. */
  const verificationLink = async (v: Visit) => {
    const email = `new-${Math.random().toString(36).slice(2)}@example.com`;
    const other = await browser.newPage();
    await toSignUp({ ...v, page: other }, email);
    await other.locator('form[action$="/signup"] button[type=submit]').click();
    await other.waitForURL((u) => !u.pathname.endsWith('/signup'));
    await other.close();
    return { email, link: mailbox.links(await mailbox.next(email)).find((l) => l.includes('/verify-email?token='))! };
  };

  /** An invitation (with a suggested name) from an admin: its link from the mailbox. */
  const invitationLink = async () => {
    const email = `invited-${Math.random().toString(36).slice(2)}@example.com`;
    await withServices(server.env, ({ invitations }) => invitations.invite({ email, name: 'Invited Person' }, cliActor()));
    return mailbox.links(await mailbox.next(email)).find((l) => l.includes('/invitation?token='))!;
  };

  /** A password reset link for the visit's user, asked for from another browser, from the mailbox. */
  const resetLink = async (v: Visit) => {
    const other = await browser.newPage();
    await other.goto(v.authorizeUrl);
    await other.locator('a[href$="/forgot"]').click();
    await other.locator('#email').fill(v.user.email);
    await other.locator('form[action$="/forgot"] button').click();
    await other.getByRole('status').waitFor();
    await other.close();
    return mailbox.links(await mailbox.next(v.user.email)).find((l) => l.includes('/password/reset/'))!;
  };

  /** Each page, reached as a person would. */
  const PAGES: Record<string, (v: Visit) => Promise<void>> = {
    landing: async ({ page }) => void (await page.goto(`${server.issuer}/`)),
    'not-found': async ({ page }) => void (await page.goto(`${server.issuer}/no-such-page`)),
    login: async ({ page, authorizeUrl }) => void (await page.goto(authorizeUrl)),
    'login-failed': async (v) => {
      await v.page.goto(v.authorizeUrl);
      await signIn(v, 'not the password');
      await v.page.getByRole('alert').waitFor();
      // The field that needs attention has the focus, and the error is tied to both fields.
      expect(await v.page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement?.id)).toBe('password');
      expect(await v.page.locator('#password').getAttribute('aria-invalid')).toBe('true');
      expect(await v.page.locator('#email').getAttribute('aria-describedby')).toBe('login-error');
    },
    throttled: async (v) => {
      await v.page.goto(v.authorizeUrl);
      const email = `locked-${Math.random().toString(36).slice(2)}@example.com`;
      for (let i = 0; i < 3; i++) await signIn(v, 'not the password', email);
      await v.page.getByRole('alert').waitFor();
    },
    consent: toConsent,
    // Google says the person owns the address of an account that signs in with a password.
    link: async (v) => {
      google.signInAs({ sub: `g-${Math.random()}`, email: v.user.email, email_verified: true, name: 'Someone' });
      await v.page.goto(v.authorizeUrl);
      await v.page.locator('button.google').click();
      await v.page.locator('form[action$="/link"]').waitFor();
    },
    forgot: async (v) => {
      await v.page.goto(v.authorizeUrl);
      await v.page.locator('a[href$="/forgot"]').click();
      await v.page.locator('form[action$="/forgot"]').waitFor();
    },
    'forgot-sent': async (v) => {
      await v.page.goto(v.authorizeUrl);
      await v.page.locator('a[href$="/forgot"]').click();
      await v.page.locator('#email').fill(v.user.email);
      await v.page.locator('form[action$="/forgot"] button').click();
      await v.page.getByRole('status').waitFor();
    },
    reset: async (v) => {
      await v.page.goto(await resetLink(v));
      await v.page.locator('#password').fill('short');
      await v.page.locator('form[action*="/password/reset/"] button[type=submit]').click();
      await v.page.getByRole('alert').waitFor();
    },
    'reset-done': async (v) => {
      // Asked for in another browser: the link's page says it is done (no sign-in waits here).
      await v.page.goto(await resetLink(v));
      await v.page.locator('#password').fill('a long new passphrase');
      await v.page.locator('form[action*="/password/reset/"] button[type=submit]').click();
      await v.page.getByRole('status').waitFor();
    },
    'reset-expired': async (v) => {
      const link = await resetLink(v);
      await v.page.goto(link);
      await v.page.locator('#password').fill('a long new passphrase');
      await v.page.locator('form[action*="/password/reset/"] button[type=submit]').click();
      await v.page.getByRole('status').waitFor();
      await v.page.goto(link);
    },
    signup: async (v) => toSignUp(v),
    'signup-failed': async (v) => {
      // The browser's own checks are set aside, so that the server's words show for each field.
      await toSignUp(v, 'not-an-address@');
      await v.page.locator('#name').fill('');
      await v.page.locator('#password').fill('short');
      await v.page.locator('#terms').uncheck();
      await v.page.locator('form[action$="/signup"]').evaluate((form) => form.setAttribute('novalidate', ''));
      await v.page.locator('form[action$="/signup"] button[type=submit]').click();
      await v.page.locator('#terms-error').waitFor();
      expect(await v.page.locator('#password').getAttribute('aria-describedby')).toBe('password-error password-hint');
    },
    // An address that has an account: the same "check your email" page as a new one.
    verify: async (v) => {
      await toSignUp(v, v.user.email);
      await v.page.locator('form[action$="/signup"] button[type=submit]').click();
      await v.page.locator('form[action$="/verify"]').waitFor();
    },
    'verify-email': async (v) => {
      await v.page.goto((await verificationLink(v)).link);
      await v.page.locator('form[action*="/verify-email?token="]').waitFor();
    },
    'verify-spent': async (v) => {
      const { email, link } = await verificationLink(v);
      const db = await openDatabase(server.databaseUrl);
      await db.prisma.accountToken.updateMany({ where: { email }, data: { expiresAt: new Date(Date.now() - 1000) } });
      await db.close();
      await v.page.goto(link);
      await v.page.locator('form[action*="/verify-email/resend?token="]').waitFor();
    },
    'email-verified': async (v) => {
      await v.page.goto((await verificationLink(v)).link);
      await v.page.locator('form[action*="/verify-email?token="] button').click();
      await v.page.getByRole('status').waitFor();
    },
    'error-link-not-valid': async ({ page }) => void (await page.goto(`${server.issuer}/verify-email?token=not-one-of-ours`)),
    invitation: async ({ page }) => {
      await page.goto(await invitationLink());
      await page.locator('form[action*="/invitation?token="]').waitFor();
    },
    'invitation-failed': async ({ page }) => {
      await page.goto(await invitationLink());
      await page.locator('#password').fill('short');
      await page.locator('#terms').check();
      await page.locator('form[action*="/invitation?token="] button[type=submit]').click();
      await page.locator('#password-error').waitFor();
    },
    'invitation-accepted': async ({ page }) => {
      await page.goto(await invitationLink());
      await page.locator('#password').fill('a long enough passphrase');
      await page.locator('#terms').check();
      await page.locator('form[action*="/invitation?token="] button[type=submit]').click();
      await page.getByRole('status').waitFor();
    },
    'federation-refused': async (v) => {
      google.signInAs({ sub: `g-${Math.random()}`, email: `unverified-${Math.random().toString(36).slice(2)}@example.com`, email_verified: false });
      await v.page.goto(v.authorizeUrl);
      await v.page.locator('button.google').click();
      await v.page.getByRole('alert').waitFor();
    },
    logout: async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/session/end`);
      await v.page.locator('button[name=logout]').waitFor();
    },
    'logged-out': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/session/end`);
      await v.page.locator('button[name=logout]').click();
      await v.page.waitForURL((u) => u.pathname.startsWith('/session/end/success'));
    },
    'error-unknown-sign-in': async ({ page }) => void (await page.goto(`${server.issuer}/interaction/no-such-sign-in`)),
    'error-expired-sign-in': async ({ page, authorizeUrl }) => {
      await page.goto(authorizeUrl);
      const uid = new URL(page.url()).pathname.split('/').pop()!;
      await stored(server).destroy('Interaction', uid);
      await page.reload();
    },
    'error-form-rejected': async (v) => {
      await v.page.goto(v.authorizeUrl);
      await v.page.locator('form[action$="/login"] input[name=_csrf]').evaluate((input) => input.setAttribute('value', 'forged'));
      await signIn(v);
    },
    'error-unknown-app': async ({ page }) => void (await page.goto(`${server.issuer}/authorize?client_id=no-such-app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`${appOrigin}/callback`)}`)),
    'error-unregistered-redirect': async ({ page, authorizeUrl }) => {
      const url = new URL(authorizeUrl);
      url.searchParams.set('redirect_uri', 'https://elsewhere.example.com/callback');
      await page.goto(url.href);
    },
    'error-bad-request': async ({ page }) => void (await page.goto(`${server.issuer}/authorize`)),
    // The account page (signed in: an app with an API holds the person's consent), each of its
    // pages, and what they say when something is refused.
    account: async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account`);
      await v.page.locator('#apps-heading').waitFor();
    },
    'account-notice': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account`);
      await v.page.locator('#name').fill('Someone Else');
      await v.page.locator('form[action="/account/profile"] button').click();
      await v.page.getByRole('status').waitFor();
    },
    'account-name-refused': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account`);
      await v.page.locator('#name').evaluate((input) => input.removeAttribute('maxlength'));
      await v.page.locator('#name').fill('x'.repeat(201));
      await v.page.locator('form[action="/account/profile"] button').click();
      await v.page.getByRole('alert').waitFor();
    },
    'account-email': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account/email`);
      await v.page.locator('#email').fill('not an address');
      await v.page.locator('#email').evaluate((input) => input.setAttribute('type', 'text'));
      await v.page.locator('form[action="/account/email"] button[type=submit]').click();
      await v.page.getByRole('alert').waitFor();
    },
    'account-email-confirm': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account/email`);
      const moved = `moved-${Math.random().toString(36).slice(2)}@example.com`;
      await v.page.locator('#email').fill(moved);
      await v.page.locator('form[action="/account/email"] button[type=submit]').click();
      await v.page.getByRole('status').waitFor();
      await v.page.goto(mailbox.links(await mailbox.next(moved)).find((l) => l.includes('/account/email/confirm/'))!);
      await v.page.locator('form[action*="/account/email/confirm/"]').waitFor();
    },
    'account-password': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account/password`);
      await v.page.locator('#current').waitFor();
    },
    'account-password-refused': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account/password`);
      await v.page.locator('#current').fill('not the password');
      await v.page.locator('#new-password').fill('a brand new passphrase');
      await v.page.locator('form[action="/account/password"] button[type=submit]').click();
      await v.page.getByRole('alert').waitFor();
    },
    'account-delete': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account/delete`);
      await v.page.locator('#confirm-email').waitFor();
    },
    'account-delete-refused': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account/delete`);
      await v.page.locator('#confirm-email').fill('someone.else@example.com');
      await v.page.locator('form[action="/account/delete"] button').click();
      await v.page.getByRole('alert').waitFor();
    },
    'account-deleted': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account/delete`);
      await v.page.locator('#confirm-email').fill(v.user.email);
      await v.page.locator('form[action="/account/delete"] button').click();
      await v.page.waitForURL(`${server.issuer}/account/deleted`);
    },
    // Google is the only way this person signs in: unlinking it is refused.
    'account-unlink': async (v) => {
      google.signInAs({ sub: `g-${Math.random()}`, email: `only-google-${Math.random().toString(36).slice(2)}@example.com`, email_verified: true, name: 'Someone' });
      await v.page.goto(`${server.issuer}/account`);
      await v.page.locator('button.google').click();
      await v.page.locator('#linked-heading').waitFor();
      await v.page.locator('a[href$="/unlink"]').click();
      await v.page.locator('form[action$="/unlink"]').waitFor();
    },
    'account-unlink-refused': async (v) => {
      await PAGES['account-unlink']!(v);
      await v.page.locator('form[action$="/unlink"] button').click();
      await v.page.getByRole('alert').waitFor();
    },
    'account-signed-out': async (v) => {
      await toLoggedIn(v);
      await v.page.goto(`${server.issuer}/account`);
      await v.page.locator('form[action="/account/sign-out"] button').click();
      await v.page.waitForURL(`${server.issuer}/account/signed-out`);
    },
    'account-error': async ({ page }) => void (await page.goto(`${server.issuer}/account/callback?state=not-started-here&code=x`)),
  };

  const COMBINATIONS = [
    { locale: 'en', colorScheme: 'light' },
    { locale: 'en', colorScheme: 'dark' },
    { locale: 'ko', colorScheme: 'light' },
    { locale: 'ko', colorScheme: 'dark' },
  ] as const;

  describe.each(COMBINATIONS)('$locale, $colorScheme', ({ locale, colorScheme }) => {
    it.each(Object.keys(PAGES))('%s', async (name) => {
      const redirectUri = `${appOrigin}/callback`;
      const seeded = await seed(server.env, { redirectUri });
      // The API's scopes have the words its admin registered, shown on the consent page.
      await withServices(server.env, async ({ resources, clients }) => {
        await clients.update(seeded.clientId, { policyUri: 'https://app.example.com/privacy', tosUri: 'https://app.example.com/terms' }, cliActor());
        const [api] = (await resources.list({ limit: 100, offset: 0 })).items.filter((r) => r.identifier === 'https://api.example.com');
        await resources.update(api!.id, { name: 'Documents API', scopes: [{ name: 'read', description: 'Read your documents' }, 'write'] }, cliActor());
      });
      const config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
      const authorizeUrl = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid email profile offline_access read write',
        resource: 'https://api.example.com',
        prompt: 'consent',
        state: oidc.randomState(),
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      }).href;

      const context = await browser.newContext({ locale: locale === 'ko' ? 'ko-KR' : 'en-US', colorScheme });
      const page = await context.newPage();
      page.setDefaultTimeout(8000);
      const cspViolations: string[] = [];
      page.on('console', (msg) => {
        if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
      });
      try {
        await PAGES[name]!({ page, authorizeUrl, user: seeded });
        await page.screenshot({ path: screenshotPath(`${name}.${locale}.${colorScheme}`), fullPage: true });
        expect(await page.getAttribute('html', 'lang')).toBe(locale);
        expect(await axeViolations(page)).toEqual([]);
        expect(cspViolations).toEqual([]);
      } finally {
        await context.close();
      }
    });
  });
});
