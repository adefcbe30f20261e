// Sign-up, email verification and invitations: ASVS V6.3.7 and V6.4 (no enumeration of accounts,
// single-use expiring secrets sent out of band), V2.4 (anti-automation: throttled sign-ups and
// mail), V3.5 (CSRF on every form); OWASP Forgot Password and Authentication Cheat Sheets.
import { Writable } from 'node:stream';
import type { ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { authorize, discover, REDIRECT_URI } from '../helpers/flow.ts';
import { seed, withServices } from '../helpers/seed.ts';
import { startServer } from '../helpers/server.ts';
import { startMailbox, type Mailbox } from '../helpers/smtp.ts';
import { csrfToken, formAction, UserAgent } from '../helpers/user-agent.ts';
import { rowCounts, type SecurityContext } from './setup.ts';
import { stored } from '../helpers/stored.ts';

const ctx = {} as SecurityContext;
let mailbox: Mailbox;
let admin: AdminApi;
beforeAll(async () => {
  mailbox = await startMailbox();
  ctx.server = await startServer({ SIGNUP: 'open', SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', SIGNUP_IP_MAX_PER_HOUR: '1000' });
  ctx.app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
  ctx.config = await discover(ctx.server.issuer, ctx.app.clientId, ctx.app.clientSecret);
  admin = await adminApi(ctx.server);
});
afterAll(async () => {
  await ctx.server?.close();
  await mailbox?.close();
});

const prisma = () => ctx.server.current.db.prisma;
const newEmail = () => `someone-${Math.random().toString(36).slice(2)}@example.com`;
const PASSWORD = 'a long enough passphrase';

function verificationOf(mail: ParsedMail) {
  const link = mailbox.links(mail).find((l) => l.includes('/verify-email?token='))!;
  const code = /Or type this code: (\d{6})/.exec(String(mail.text))![1]!;
  return { link, token: new URL(link).searchParams.get('token')!, code };
}

/** A form post as another site (or a forger) would send it. */
const postForm = (ua: UserAgent, action: string | URL, fields: Record<string, string>, origin = ctx.server.issuer, site = 'same-origin') =>
  ua.request(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': site }, body: new URLSearchParams(fields) });

/** A browser at the sign-up page of a fresh authorization (prompt=create). */
async function atSignUp(ua = new UserAgent({ headers: { 'accept-language': 'en' } }), config = ctx.config) {
  const started = await authorize(ua, config, { prompt: 'create', consent: false, scope: 'openid email' });
  const html = await started.last.res.text();
  expect(html).toContain('/signup"');
  return { ua, started, url: started.last.url, html, action: new URL(formAction(html, '/signup'), started.last.url) };
}

/** Signs up and lands on the "check your email" page: the page and its forms. */
async function signedUp(email: string, password = PASSWORD) {
  const at = await atSignUp();
  const posted = await postForm(at.ua, at.action, { _csrf: csrfToken(at.html), email, name: 'Some One', password });
  const page = await at.ua.request(new URL(posted.headers.get('location')!, at.url));
  const html = await page.text();
  return { ...at, posted, page, html, form: (suffix: string) => new URL(formAction(html, suffix), at.url) };
}

/** What two pages have in common once what is theirs alone (address, sign-in id, CSRF token) is taken out. */
const normalized = (html: string, email: string) => html.replaceAll(email, 'EMAIL').replace(/\/interaction\/[^/"?]+/g, '/interaction/UID').replace(/name="_csrf" value="[^"]+"/g, '');

describe('sign-up', () => {
  it('SEC-SU-01 signing up with an address that has an account reads exactly like a new sign-up; no account is made or changed, and the owner is told by email', async () => {
    const owner = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const fresh = newEmail();
    const before = await prisma().user.findUniqueOrThrow({ where: { id: owner.userId } });
    const usersBefore = await prisma().user.count();
    const taken = await signedUp(owner.email, 'another long passphrase');
    const created = await signedUp(fresh);
    expect(taken.posted.status).toBe(303);
    expect(created.posted.status).toBe(303);
    expect(taken.posted.headers.getSetCookie().map((c) => c.split('=')[0])).toEqual(created.posted.headers.getSetCookie().map((c) => c.split('=')[0]));
    expect(taken.page.status).toBe(created.page.status);
    expect(normalized(taken.html, owner.email)).toBe(normalized(created.html, fresh));
    // One account more (the fresh one); the owner's is as it was (its password hash too).
    expect(await prisma().user.count()).toBe(usersBefore + 1);
    expect(await prisma().user.findUniqueOrThrow({ where: { id: owner.userId } })).toEqual(before);
    const notice = await mailbox.next(owner.email);
    expect(notice.subject).toMatch(/^Someone tried to create a .* account with your address$/);
    expect(mailbox.links(notice)).toEqual([]);
  });

  it('SEC-SU-02 the "check your email" page of an address that has an account completes nothing: no code, no continue, no resend signs anyone in', async () => {
    const owner = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    // The owner has a live code of their own (sent by an admin); the attacker somehow has it too.
    expect((await admin.call('POST', `/admin/v1/users/${owner.userId}/verification-email`)).status).toBe(202);
    const { code } = verificationOf(await mailbox.next(owner.email));
    const decoy = await signedUp(owner.email);
    const csrf = csrfToken(decoy.html);
    const typed = await postForm(decoy.ua, decoy.form('/verify'), { _csrf: csrf, code });
    expect(typed.status).toBe(400);
    expect(await typed.text()).toContain('This code is not right, or it has expired.');
    expect((await postForm(decoy.ua, decoy.form('/verify/continue'), { _csrf: csrf })).status).toBe(400);
    // "Sent", as for a new account; but nothing is.
    expect((await postForm(decoy.ua, decoy.form('/verify/resend'), { _csrf: csrf })).status).toBe(200);
    expect(await prisma().outboxMessage.count({ where: { recipient: owner.email, kind: 'verify_email' } })).toBe(1);
    expect(decoy.ua.cookies.has('_session')).toBe(false);
    expect((await prisma().user.findUniqueOrThrow({ where: { id: owner.userId } })).emailVerified).toBe(false);
  });

  it.each([
    ['without a CSRF token', {}, 'same-origin'],
    ['with a forged CSRF token', { _csrf: 'forged' }, 'same-origin'],
    ['from another origin, with the right token', null, 'cross-site'],
  ])('SEC-SU-03 a sign-up form posted %s: 403, no account', async (_name, fields, site) => {
    const at = await atSignUp();
    const before = await rowCounts(ctx);
    const res = await postForm(at.ua, at.action, { ...(fields ?? { _csrf: csrfToken(at.html) }), email: newEmail(), name: 'Forged', password: PASSWORD }, site === 'cross-site' ? 'https://evil.example' : ctx.server.issuer, site);
    expect(res.status).toBe(403);
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('SEC-SU-04 sign-ups from one client address are throttled (SIGNUP_IP_MAX_PER_HOUR), existing addresses counted too: 429, nothing made', async () => {
    const strict = await startServer({ SIGNUP: 'open', SIGNUP_IP_MAX_PER_HOUR: '2' });
    try {
      const app = await seed(strict.env, { redirectUri: REDIRECT_URI });
      const config = await discover(strict.issuer, app.clientId, app.clientSecret);
      const statuses = [];
      for (const email of [newEmail(), app.email, newEmail()]) {
        const at = await atSignUp(undefined, config);
        const res = await postForm(at.ua, at.action, { _csrf: csrfToken(at.html), email, name: 'Many', password: PASSWORD }, strict.issuer);
        statuses.push(res.status);
        if (res.status === 429) {
          expect(res.headers.get('retry-after')).toBe('3600');
          expect(await res.text()).toContain('Too many accounts were created from your network.');
        }
      }
      expect(statuses).toEqual([303, 303, 429]);
      expect(await strict.current.db.prisma.user.count()).toBe(2);
    } finally {
      await strict.close();
    }
  });

  it.each([
    ['another domain', 'someone@example.com', false],
    ['a subdomain', 'someone@mail.example.org', false],
    ['the domain as a prefix of another', 'someone@example.org.evil.com', false],
    ['the domain as a suffix of another', 'someone@evilexample.org', false],
    ['the domain in capitals (normalized)', 'Someone@EXAMPLE.ORG', true],
  ])('SEC-SU-05 SIGNUP_EMAIL_DOMAINS=example.org admits only that exact domain: %s (%s)', async (_name, email, allowed) => {
    const domains = await startServer({ SIGNUP: 'open', SIGNUP_EMAIL_DOMAINS: 'example.org' });
    try {
      const app = await seed(domains.env, { redirectUri: REDIRECT_URI });
      const at = await atSignUp(undefined, await discover(domains.issuer, app.clientId, app.clientSecret));
      const res = await postForm(at.ua, at.action, { _csrf: csrfToken(at.html), email, name: 'Domain', password: PASSWORD }, domains.issuer);
      expect(res.status).toBe(allowed ? 303 : 400);
      if (!allowed) expect(await res.text()).toContain('Accounts can only be created with an address at example.org.');
      expect(await domains.current.db.prisma.user.count()).toBe(allowed ? 2 : 1);
    } finally {
      await domains.close();
    }
  });

  it('SEC-SU-06 with sign-up closed, a sign-up form posted anyway is refused (404) and makes nothing', async () => {
    const closed = await startServer();
    try {
      const app = await seed(closed.env, { redirectUri: REDIRECT_URI });
      const ua = new UserAgent();
      const started = await authorize(ua, await discover(closed.issuer, app.clientId, app.clientSecret), { prompt: 'create', consent: false });
      const html = await started.last.res.text();
      expect(html).not.toContain('/signup');
      const res = await postForm(ua, `${started.last.url}/signup`, { _csrf: csrfToken(html), email: newEmail(), name: 'Closed', password: PASSWORD }, closed.issuer);
      expect(res.status).toBe(404);
      expect(await closed.current.db.prisma.user.count()).toBe(1);
    } finally {
      await closed.close();
    }
  });
});

describe('email verification', () => {
  it('SEC-EV-01 a used link confirms nothing more (the page says the address is confirmed); an expired or replaced one is refused with a way to ask again, which sends a new one', async () => {
    const email = newEmail();
    await signedUp(email);
    const first = verificationOf(await mailbox.next(email));
    // Replaced: an admin sends another message; the first link stops working.
    const user = await prisma().user.findUniqueOrThrow({ where: { email } });
    expect((await admin.call('POST', `/admin/v1/users/${user.id}/verification-email`)).status).toBe(202);
    const second = verificationOf(await mailbox.next(email));
    const stranger = new UserAgent({ headers: { 'accept-language': 'en' } });
    const replaced = await stranger.request(first.link);
    expect(replaced.status).toBe(410);
    const replacedHtml = await replaced.text();
    expect(replacedHtml).toContain('This link has expired');
    expect(await prisma().user.findUniqueOrThrow({ where: { email } })).toMatchObject({ emailVerified: false });

    // Expired (aged in the database): refused the same way; asking again sends a new link.
    await prisma().accountToken.updateMany({ where: { email, usedAt: null }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const expired = await stranger.request(second.link);
    expect(expired.status).toBe(410);
    const expiredHtml = await expired.text();
    const postExpired = await postForm(stranger, second.link, { _csrf: csrfToken(expiredHtml) });
    expect(postExpired.status).toBe(403); // the resend form's token is not the confirm form's
    await stored(ctx.server).forgetThrottle('verify-mail:');
    const again = await stranger.submit(second.link, expiredHtml, formAction(expiredHtml, '/verify-email/resend\\?token=[^"]+'), {});
    expect(again.res.status).toBe(200);
    expect(await again.res.text()).toContain('A new link is on its way.');
    const third = verificationOf(await mailbox.next(email));
    const page = await stranger.request(third.link);
    const pageHtml = await page.text();
    expect((await stranger.submit(third.link, pageHtml, formAction(pageHtml, '/verify-email\\?token=[^"]+'), {})).res.status).toBe(200);
    expect(await prisma().user.findUniqueOrThrow({ where: { email } })).toMatchObject({ emailVerified: true });

    // Used: the link confirms nothing more, and says the address is confirmed.
    const used = await stranger.submit(third.link, pageHtml, formAction(pageHtml, '/verify-email\\?token=[^"]+'), {});
    expect(used.res.status).toBe(200);
    expect(await used.res.text()).toContain('This email address is already confirmed.');
    expect(await prisma().auditEvent.count({ where: { action: 'user.email_verified', target: user.id } })).toBe(1);
  });

  it('SEC-EV-02 a link that is not ours, or cut short, is "not valid" (404) and changes nothing; opening a live link (as mail scanners do) confirms nothing', async () => {
    const email = newEmail();
    await signedUp(email);
    const { link, token } = verificationOf(await mailbox.next(email));
    const ua = new UserAgent({ headers: { 'accept-language': 'en' } });
    for (const bad of [token.slice(0, 20), 'x'.repeat(300), '']) {
      const res = await ua.request(`${ctx.server.issuer}/verify-email?token=${bad}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toContain('This link is not valid');
    }
    expect((await ua.request(link)).status).toBe(200);
    expect((await ua.request(link)).status).toBe(200);
    expect(await prisma().user.findUniqueOrThrow({ where: { email } })).toMatchObject({ emailVerified: false });
  });

  it('SEC-EV-03 an expired code is refused, and confirms nothing', async () => {
    const email = newEmail();
    const at = await signedUp(email);
    const { code } = verificationOf(await mailbox.next(email));
    await prisma().accountToken.updateMany({ where: { email }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const res = await postForm(at.ua, at.form('/verify'), { _csrf: csrfToken(at.html), code });
    expect(res.status).toBe(400);
    expect(at.ua.cookies.has('_session')).toBe(false);
    expect(await prisma().user.findUniqueOrThrow({ where: { email } })).toMatchObject({ emailVerified: false });
  });

  it("SEC-EV-04 another address's code is refused: neither address is confirmed, and its own code still works", async () => {
    const mine = newEmail();
    const theirs = newEmail();
    const at = await signedUp(mine);
    await signedUp(theirs);
    const myCode = verificationOf(await mailbox.next(mine)).code;
    const theirCode = verificationOf(await mailbox.next(theirs)).code;
    if (theirCode !== myCode) {
      const res = await postForm(at.ua, at.form('/verify'), { _csrf: csrfToken(at.html), code: theirCode });
      expect(res.status).toBe(400);
    }
    expect(await prisma().user.findMany({ where: { email: { in: [mine, theirs] } }, select: { emailVerified: true } })).toEqual([{ emailVerified: false }, { emailVerified: false }]);
    const ok = await postForm(at.ua, at.form('/verify'), { _csrf: csrfToken(at.html), code: myCode });
    expect(ok.status).toBe(303);
    expect(await prisma().user.findUniqueOrThrow({ where: { email: theirs } })).toMatchObject({ emailVerified: false });
  });

  it('SEC-EV-05 code guessing is limited: after five wrong codes the message takes none, not even the right one; a new message brings a new code', async () => {
    const email = newEmail();
    const at = await signedUp(email);
    const { code } = verificationOf(await mailbox.next(email));
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    const csrf = csrfToken(at.html);
    for (let i = 0; i < 5; i++) expect((await postForm(at.ua, at.form('/verify'), { _csrf: csrf, code: wrong })).status).toBe(400);
    expect((await postForm(at.ua, at.form('/verify'), { _csrf: csrf, code })).status).toBe(400);
    expect(await prisma().user.findUniqueOrThrow({ where: { email } })).toMatchObject({ emailVerified: false });
    // A minute later, a new message.
    await stored(ctx.server).forgetThrottle('verify-mail:');
    expect((await postForm(at.ua, at.form('/verify/resend'), { _csrf: csrf })).status).toBe(200);
    const fresh = verificationOf(await mailbox.next(email)).code;
    expect((await postForm(at.ua, at.form('/verify'), { _csrf: csrf, code: fresh })).status).toBe(303);
    expect(await prisma().user.findUniqueOrThrow({ where: { email } })).toMatchObject({ emailVerified: true });
  });

  it('SEC-EV-06 new messages are throttled: one a minute and five an hour per address (429), whoever asks', async () => {
    const email = newEmail();
    const at = await signedUp(email);
    await mailbox.next(email);
    const csrf = csrfToken(at.html);
    const resend = () => postForm(at.ua, at.form('/verify/resend'), { _csrf: csrf });
    const tooSoon = await resend();
    expect(tooSoon.status).toBe(429);
    expect(await tooSoon.text()).toContain('Wait a minute before asking for another one.');
    const minutePassed = () => stored(ctx.server).forgetThrottle('verify-mail:');
    for (let i = 0; i < 4; i++) {
      await minutePassed();
      expect((await resend()).status).toBe(200);
    }
    await minutePassed();
    expect((await resend()).status).toBe(429);
    expect(await prisma().outboxMessage.count({ where: { recipient: email, kind: 'verify_email' } })).toBe(5);
  });

  it('SEC-EV-07 the verification forms refuse a missing or forged CSRF token, another origin, and a token of another link: 403, nothing confirmed', async () => {
    const email = newEmail();
    const at = await signedUp(email);
    const { code, link } = verificationOf(await mailbox.next(email));
    const csrf = csrfToken(at.html);
    for (const [path, fields] of [['/verify', { code }], ['/verify/continue', {}], ['/verify/resend', {}], ['/verify/cancel', {}]] as const) {
      expect((await postForm(at.ua, at.form(path), { ...fields })).status, path).toBe(403);
      expect((await postForm(at.ua, at.form(path), { ...fields, _csrf: 'forged' })).status, path).toBe(403);
      expect((await postForm(at.ua, at.form(path), { ...fields, _csrf: csrf }, 'https://evil.example', 'cross-site')).status, path).toBe(403);
    }
    // The link's own page: its button's token is bound to this link.
    const ua = new UserAgent();
    const pageHtml = await (await ua.request(link)).text();
    expect((await postForm(ua, link, {})).status).toBe(403);
    expect((await postForm(ua, link, { _csrf: csrfToken(pageHtml) }, 'https://evil.example', 'cross-site')).status).toBe(403);
    const other = newEmail();
    await signedUp(other);
    const otherLink = verificationOf(await mailbox.next(other)).link;
    expect((await postForm(ua, otherLink, { _csrf: csrfToken(pageHtml) })).status).toBe(403);
    expect(await prisma().user.findMany({ where: { email: { in: [email, other] } }, select: { emailVerified: true } })).toEqual([{ emailVerified: false }, { emailVerified: false }]);
  });

  it('SEC-EV-08 an unverified address never reaches the app: going straight to the resume URL starts the sign-in over, no code is issued, no session signed in', async () => {
    const app = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(ctx.server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent({ headers: { 'accept-language': 'en' } });
    const started = await authorize(ua, config, { consent: false, prompt: 'login' });
    const html = await started.last.res.text();
    const waiting = await ua.submit(started.last.url, html, formAction(html, '/login'), { email: app.email, password: app.password }, REDIRECT_URI);
    expect(await waiting.res.text()).toContain('Check your email');
    const uid = new URL(started.last.url).pathname.split('/').pop()!;
    const resumed = await ua.follow(`${ctx.server.issuer}/authorize/${uid}`, REDIRECT_URI);
    expect(resumed.url.startsWith(REDIRECT_URI)).toBe(false);
    expect(await resumed.res.text()).toContain('Sign in');
    const silent = await authorize(ua, config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(silent.callbackUrl.searchParams.get('error')).toBe('login_required');
  });

  it("SEC-EV-10 a sign-in waiting for an address is void once the account's password changes: someone who signed up with another's address is not let in when its owner takes it back and verifies it", async () => {
    const email = newEmail();
    // Someone signs up with an address that is not theirs, and waits.
    const squatter = await signedUp(email);
    const { link } = verificationOf(await mailbox.next(email));
    // The address's owner takes the account over (a new password: a reset, or an admin), then confirms the address.
    const user = await prisma().user.findUniqueOrThrow({ where: { email } });
    expect((await admin.call('PUT', `/admin/v1/users/${user.id}/password`, { password: 'the owner’s own passphrase' })).status).toBe(204);
    const owner = new UserAgent();
    const pageHtml = await (await owner.request(link)).text();
    expect((await owner.submit(link, pageHtml, formAction(pageHtml, '/verify-email\\?token=[^"]+'), {})).res.status).toBe(200);
    expect(await prisma().user.findUniqueOrThrow({ where: { email } })).toMatchObject({ emailVerified: true });

    const csrf = csrfToken(squatter.html);
    const cont = await postForm(squatter.ua, squatter.form('/verify/continue'), { _csrf: csrf });
    expect(cont.status).toBe(400);
    expect(await cont.text()).toContain('The account changed since you signed in');
    // The wait is over for good: the sign-in opens on its first page again (sign-up, as the app
    // asked), and nothing signed in.
    const again = await squatter.ua.follow(squatter.url, REDIRECT_URI);
    expect(again.url.startsWith(REDIRECT_URI)).toBe(false);
    const html = await again.res.text();
    expect(html).toContain(`action="${new URL(squatter.url).pathname}/signup"`);
    expect(html).not.toContain('/verify"');
    expect(squatter.ua.cookies.has('_session')).toBe(false);
  });

  it("SEC-EV-11 logs never hold a sign-up's password, a verification link's token, its code, or an invitation's token", async () => {
    const lines: string[] = [];
    const capture = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logged = await startServer({ SIGNUP: 'open', SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', LOG_LEVEL: 'trace' }, { logDestination: capture });
    try {
      const app = await seed(logged.env, { redirectUri: REDIRECT_URI });
      const at = await atSignUp(undefined, await discover(logged.issuer, app.clientId, app.clientSecret));
      const email = newEmail();
      const password = 'my-secret-sign-up-passphrase';
      const posted = await postForm(at.ua, at.action, { _csrf: csrfToken(at.html), email, name: 'Logged', password }, logged.issuer);
      const waitingUrl = new URL(posted.headers.get('location')!, at.url);
      const waitingHtml = await (await at.ua.request(waitingUrl)).text();
      const { link, token, code } = verificationOf(await mailbox.next(email));
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
      await postForm(at.ua, new URL(formAction(waitingHtml, '/verify'), at.url), { _csrf: csrfToken(waitingHtml), code: wrong }, logged.issuer);
      await postForm(at.ua, new URL(formAction(waitingHtml, '/verify'), at.url), { _csrf: csrfToken(waitingHtml), code }, logged.issuer);
      await new UserAgent().request(link);
      const invitedEmail = newEmail();
      await withServices(logged.env, ({ invitations }) => invitations.invite({ email: invitedEmail }, { actor: 'test' }));
      const invitation = mailbox.links(await mailbox.next(invitedEmail)).find((l) => l.includes('/invitation?token='))!;
      await new UserAgent().request(invitation);
      const log = lines.join('\n');
      expect(log).toContain('/verify-email?token=[REDACTED]');
      for (const [name, secret] of Object.entries({ password, token, invitation: new URL(invitation).searchParams.get('token')! })) {
        expect(log.includes(secret), `${name} appears in the logs`).toBe(false);
      }
      // A code is six digits: only a number of its own counts (not a part of a timestamp).
      for (const [name, digits] of Object.entries({ code, wrong })) expect(new RegExp(`(?<![\\d.])${digits}(?![\\d.])`).test(log), `${name} appears in the logs`).toBe(false);
    } finally {
      await logged.close();
    }
  });

  it('SEC-EV-09 links and codes are stored only as hashes: neither the token nor the code is in the database, and a sent message is erased', async () => {
    const email = newEmail();
    await signedUp(email);
    const { token, code } = verificationOf(await mailbox.next(email));
    await expect.poll(() => prisma().outboxMessage.findMany({ where: { recipient: email }, select: { status: true, body: true } })).toEqual([{ status: 'sent', body: '' }]);
    const rows = JSON.stringify(await prisma().accountToken.findMany({ where: { email } }));
    expect(rows).not.toContain(token);
    expect(rows).not.toContain(code);
  });
});

describe('invitations', () => {
  /** Invites an address; its link, and the form the link opens. */
  async function invited(email = newEmail()) {
    expect((await admin.call('POST', '/admin/v1/invitations', { email })).status).toBe(201);
    const link = mailbox.links(await mailbox.next(email)).find((l) => l.includes('/invitation?token='))!;
    const ua = new UserAgent({ headers: { 'accept-language': 'en' } });
    const page = await ua.request(link);
    const html = await page.text();
    return { email, link, ua, page, html, csrf: page.status === 200 ? csrfToken(html) : '' };
  }

  it('SEC-IV-01 an invitation works once: a second acceptance (even in parallel) makes no second account', async () => {
    const inv = await invited();
    const [a, b] = await Promise.all([postForm(inv.ua, inv.link, { _csrf: inv.csrf, name: 'One', password: PASSWORD }), postForm(inv.ua, inv.link, { _csrf: inv.csrf, name: 'Two', password: PASSWORD })]);
    expect([a.status, b.status].sort()).toEqual([200, 410]);
    expect(await prisma().user.count({ where: { email: inv.email } })).toBe(1);
    const again = await postForm(inv.ua, inv.link, { _csrf: inv.csrf, name: 'Three', password: PASSWORD });
    expect(again.status).toBe(410);
    expect(await prisma().auditEvent.count({ where: { action: 'user.invitation_accepted' } })).toBeGreaterThan(0);
  });

  it('SEC-IV-02 an expired invitation is refused with a page that says to ask for a new one; no account', async () => {
    const inv = await invited();
    await prisma().accountToken.updateMany({ where: { email: inv.email }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const res = await postForm(inv.ua, inv.link, { _csrf: inv.csrf, name: 'Late', password: PASSWORD });
    expect(res.status).toBe(410);
    expect(await res.text()).toContain('Ask the person who invited you to send a new one.');
    expect(await prisma().user.count({ where: { email: inv.email } })).toBe(0);
  });

  it.each([
    ['without a CSRF token', () => ({}), 'same-origin'],
    ['with a forged CSRF token', () => ({ _csrf: 'forged' }), 'same-origin'],
    ['from another origin, with the right token', (csrf: string) => ({ _csrf: csrf }), 'cross-site'],
  ])('SEC-IV-03 an invitation form posted %s: 403, no account', async (_name, fields, site) => {
    const inv = await invited();
    const res = await postForm(inv.ua, inv.link, { ...fields(inv.csrf), name: 'Forged', password: PASSWORD }, site === 'cross-site' ? 'https://evil.example' : ctx.server.issuer, site);
    expect(res.status).toBe(403);
    expect(await prisma().user.count({ where: { email: inv.email } })).toBe(0);
  });

  it("SEC-IV-04 the form of one invitation cannot accept another (its CSRF token is bound to its link), and the address is the invitation's, whatever the form says", async () => {
    const mine = await invited();
    const other = await invited();
    expect((await postForm(mine.ua, other.link, { _csrf: mine.csrf, name: 'Swap', password: PASSWORD })).status).toBe(403);
    const done = await postForm(mine.ua, mine.link, { _csrf: mine.csrf, name: 'Mine', password: PASSWORD, email: other.email });
    expect(done.status).toBe(200);
    expect(await prisma().user.count({ where: { email: mine.email } })).toBe(1);
    expect(await prisma().user.count({ where: { email: other.email } })).toBe(0);
  });

  it('SEC-IV-05 only an admin invites: no token 401, a read-only token 403; nothing sent', async () => {
    const email = newEmail();
    expect((await admin.call('POST', '/admin/v1/invitations', { email }, null)).status).toBe(401);
    expect((await admin.call('POST', '/admin/v1/invitations', { email }, await admin.token('admin:read'))).status).toBe(403);
    expect(await prisma().outboxMessage.count({ where: { recipient: email } })).toBe(0);
    expect(await prisma().accountToken.count({ where: { email } })).toBe(0);
  });
});
