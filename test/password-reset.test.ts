import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from './helpers/admin.ts';
import { idp } from './helpers/cli.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let mailbox: Mailbox;
beforeAll(async () => {
  mailbox = await startMailbox();
  server = await startServer({ SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', MAIL_RETRY_SECONDS: '0.2', PRODUCT_NAME: 'Acme' });
});
afterAll(async () => {
  await server?.close();
  await mailbox?.close();
});

/** The login page of a fresh authorization, its "Forgot password?" form, and the answer to it. */
async function askForLink(ua: UserAgent, config: oidc.Configuration, email: string) {
  const started = await authorize(ua, config, { consent: false, prompt: 'login consent' });
  const loginHtml = await started.last.res.text();
  const forgotUrl = new URL(/href="(\/interaction\/[^"]+\/forgot)"/.exec(loginHtml)![1]!, started.last.url).href;
  const forgot = await ua.request(forgotUrl);
  expect(forgot.status).toBe(200);
  const forgotHtml = await forgot.text();
  const sent = await ua.submit(forgotUrl, forgotHtml, formAction(forgotHtml, '/forgot'), { email });
  return { started, sent, html: await sent.res.text() };
}

const normalize = (html: string, email: string) => html.replaceAll(email, 'EMAIL').replace(/\/interaction\/[^/"?]+/g, '/interaction/UID');

describe('forgot password', () => {
  it('sends a single-use link that sets a new password, ends every session and refresh token, announces it, and the sign-in goes on', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    // Signed in elsewhere before, with a refresh token.
    const before = await loginAndExchange(new UserAgent(), config, { login: { email: app.email, password: app.password }, scope: 'openid offline_access', prompt: 'consent' });
    expect(before.tokens.refresh_token).toBeTruthy();

    const ua = new UserAgent({ headers: { 'accept-language': 'en' } });
    const { started, sent, html } = await askForLink(ua, config, app.email);
    expect(sent.res.status).toBe(200);
    expect(html).toContain('Check your email');

    const mail = await mailbox.next(app.email);
    expect(mail.subject).toBe('Reset your password for Acme');
    expect(mail.html).toContain('Choose a new password');
    const [link] = mailbox.links(mail).filter((l) => l.includes('/password/reset/'));
    expect(link).toMatch(new RegExp(`^${server.issuer}/password/reset/[\\w-]{43}$`));
    // The database holds neither the link nor the message any more.
    const token = link!.split('/').pop()!;
    await expect.poll(() => server.current.db.prisma.outboxMessage.findMany({ where: { recipient: app.email }, select: { status: true, body: true } })).toEqual([{ status: 'sent', body: '' }]);
    expect(JSON.stringify(await server.current.db.prisma.accountToken.findMany({ where: { email: app.email } }))).not.toContain(token);

    const page = await ua.request(link!);
    expect(page.status).toBe(200);
    const resetHtml = await page.text();
    // A weak password is refused in words, and the link still works.
    const weak = await ua.submit(link!, resetHtml, formAction(resetHtml, `/password/reset/${token}`), { password: 'short' });
    expect(weak.res.status).toBe(400);
    expect(await weak.res.text()).toContain('The password must be at least 8 characters long.');

    const newPassword = 'a brand new passphrase';
    const done = await ua.submit(link!, resetHtml, formAction(resetHtml, `/password/reset/${token}`), { password: newPassword }, REDIRECT_URI);
    // Back to the sign-in it was asked from, which says so.
    expect(done.url).toBe(`${started.last.url}?notice=password_changed`);
    const loginHtml = await done.res.text();
    expect(loginHtml).toContain('Your password was changed. Sign in with your new password.');

    // The old password is gone, the new one signs in, and the app gets its code.
    const finished = await ua.submit(done.url, loginHtml, formAction(loginHtml, '/login'), { email: app.email, password: newPassword }, REDIRECT_URI);
    const consentHtml = finished.url.startsWith(REDIRECT_URI) ? '' : await finished.res.text();
    const landed = consentHtml ? await ua.submit(finished.url, consentHtml, formAction(consentHtml, '/confirm'), {}, REDIRECT_URI) : finished;
    expect(new URL(landed.url).searchParams.get('code')).toBeTruthy();

    // Every earlier session and refresh token ended.
    await expect(oidc.refreshTokenGrant(config, before.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The address is told.
    const notice = await mailbox.next(app.email);
    expect(notice.subject).toBe('Your Acme password was changed');

    // The link worked once.
    const again = await ua.request(link!);
    expect(again.status).toBe(410);
    expect(await again.text()).toContain('This link has expired');
  });

  it('answers an unknown address exactly as a known one, and sends it nothing', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const stranger = `nobody-${Date.now()}@example.com`;
    const unknown = await askForLink(new UserAgent(), config, stranger);
    const known = await askForLink(new UserAgent(), config, app.email);
    expect(unknown.sent.res.status).toBe(known.sent.res.status);
    expect(normalize(unknown.html, stranger).replace(/name="_csrf" value="[^"]+"/g, '')).toBe(normalize(known.html, app.email).replace(/name="_csrf" value="[^"]+"/g, ''));
    // The known address's mail arrives; the unknown one's request, made first, wrote nothing.
    await mailbox.next(app.email);
    expect(await server.current.db.prisma.outboxMessage.count({ where: { recipient: stranger } })).toBe(0);
    expect(mailbox.messages.some((m) => m.text?.includes(stranger) || JSON.stringify(m.to).includes(stranger))).toBe(false);
  });

  it('an expired link opens a page that says so and how to ask again; a made-up one is "not valid"', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    await askForLink(new UserAgent(), config, app.email);
    const link = mailbox.links(await mailbox.next(app.email)).find((l) => l.includes('/password/reset/'))!;
    await server.current.db.prisma.accountToken.updateMany({ where: { email: app.email, usedAt: null }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const expired = await fetch(link, { headers: { accept: 'text/html', 'accept-language': 'ko' } });
    expect(expired.status).toBe(410);
    const html = await expired.text();
    expect(html).toContain('링크가 만료되었습니다');
    expect(html).toContain('비밀번호를 잊으셨나요?');
    const madeUp = await fetch(`${server.issuer}/password/reset/not-a-real-link`, { headers: { accept: 'text/html' } });
    expect(madeUp.status).toBe(410);
    expect(await madeUp.text()).toContain('This link is not valid');
  });

  it('an admin sends a user a link (admin API and CLI); a disabled user gets none', async () => {
    const admin = await adminApi(server);
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    expect((await admin.call('POST', `/admin/v1/users/${app.userId}/password-reset`)).status).toBe(202);
    expect(mailbox.links(await mailbox.next(app.email)).some((l) => l.includes('/password/reset/'))).toBe(true);
    const cli = await idp(['users', 'send-password-reset', app.email, '--json'], server.env);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.json()).toEqual({ id: app.userId, resetLinkSent: true });
    expect((await mailbox.next(app.email)).subject).toBe('Reset your password for Acme');
    expect((await admin.call('POST', `/admin/v1/users/${app.userId}/disable`)).status).toBe(200);
    const refused = await admin.call<{ error: string }>('POST', `/admin/v1/users/${app.userId}/password-reset`);
    expect(refused.status).toBe(404);
  });
});
